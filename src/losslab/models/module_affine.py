"""Which parameter groups the output of a traced ``nn.Module`` is affine in: a proof from the graph.

Abstract interpretation over the ``torch.fx`` graph (Cousot & Cousot 1977) gives every node a
*degree* in a set S of parameter groups, everything else held fixed:

* 0: the value does not depend on S;
* 1: the value is affine in S;
* N (= 2): anything else.

Rules, each exact for the operation's formula:

* a parameter of S → 1; other parameters, buffers and inputs → 0;
* sums and reshapes (add, sub, neg, cat, stack, sum, mean, view, permute, getitem, pad, avg-pool,
  eval-mode dropout, ...) → the max of their inputs' degrees (index and shape arguments 0);
* products (mul, matmul, mm, bmm, einsum, linear and conv layers): input degree + weight degree,
  then max with the bias degree; a sum above 1 is N (``Sequential(Linear, Linear)`` is degree 2
  in both layers' weights jointly);
* division: the numerator's degree when the denominator's is 0, else N;
* ``Embedding``: the weight's degree when the indices do not depend on S;
* eval-mode ``BatchNorm`` (running statistics): affine in its input, times its weight, plus its
  bias; batch statistics (train mode), ``LayerNorm``, ``GroupNorm``: nonlinear in the input;
* anything else (tanh, relu, softmax, exp, unknown functions and modules): 0 when all its inputs
  are 0, else N.

The output is affine in S jointly when its degree is at most 1. An in-place operation is
followed only when no other node can see the tensor it changes; otherwise nothing is proven.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Iterable

import torch
from torch import nn
from torch.fx import GraphModule, Node

F = torch.nn.functional
N = 2

_ADDITIVE_FN = {
    operator.add, operator.sub, operator.neg, operator.pos, operator.iadd, operator.isub,
    torch.add, torch.sub, torch.subtract, torch.neg, torch.negative, torch.cat, torch.concat, torch.stack,
    torch.hstack, torch.vstack, torch.sum, torch.mean, torch.cumsum,
}
_SHAPE_FN = {
    operator.getitem, torch.reshape, torch.flatten, torch.permute, torch.transpose, torch.swapaxes, torch.squeeze,
    torch.unsqueeze, torch.t, torch.narrow, torch.chunk, torch.split, torch.unbind, torch.roll, torch.flip, torch.movedim,
    torch.select, torch.clone, torch.diagonal, F.pad, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d,
    F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, F.interpolate, F.pixel_shuffle, F.pixel_unshuffle,
}
_PRODUCT_FN = {
    operator.mul, operator.imul, operator.matmul, torch.mul, torch.multiply, torch.matmul, torch.mm, torch.bmm, torch.mv,
    torch.einsum, torch.outer, torch.dot, torch.inner, torch.tensordot, torch.kron,
}
_LINEAR_FN = {F.linear, F.conv1d, F.conv2d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d}
_ADDMM_FN = {torch.addmm, torch.baddbmm, torch.addmv, torch.addbmm}
_DIV_FN = {operator.truediv, operator.itruediv, torch.div, torch.true_divide, torch.divide}
_NORM_FN = {F.layer_norm, F.group_norm, *([F.rms_norm] if hasattr(F, "rms_norm") else [])}
_DROPOUT_FN = {F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout}
_SIZE_FN = {torch.numel, len}

_ADDITIVE_M = {"add", "sub", "neg", "sum", "mean", "cumsum", "__add__", "__sub__", "__neg__"}
_SHAPE_M = {
    "view", "reshape", "flatten", "unflatten", "permute", "transpose", "swapaxes", "squeeze", "unsqueeze", "contiguous",
    "expand", "expand_as", "repeat", "t", "clone", "chunk", "split", "narrow", "flip", "roll", "unbind", "select", "movedim",
    "view_as", "reshape_as", "diagonal", "float", "double", "to", "type_as", "detach", "__getitem__",
}
_PRODUCT_M = {"mul", "matmul", "mm", "bmm", "mv", "outer", "dot", "__mul__", "__matmul__"}
_DIV_M = {"div", "true_divide", "divide", "__truediv__"}
_SIZE_M = {"size", "dim", "numel", "nelement", "stride", "element_size", "get_device"}
_META_ATTRS = {"shape", "ndim", "dtype", "device", "is_cuda", "requires_grad", "layout"}

_LINEAR_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORM_MODULES = (nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm, *([nn.RMSNorm] if hasattr(nn, "RMSNorm") else []))
_DROPOUT_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)
_PASS_MODULES = (
    nn.Identity, nn.Flatten, nn.Unflatten, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d, nn.ReflectionPad1d,
    nn.ReflectionPad2d, nn.ReplicationPad1d, nn.ReplicationPad2d, nn.PixelShuffle, nn.PixelUnshuffle, nn.Upsample,
)


def _cap(d: int) -> int:
    return min(d, N)


class _Analysis:
    """The static facts of a graph (parameter names, submodules) shared by every candidate set."""

    def __init__(self, root: nn.Module, gm: GraphModule):
        self.gm = gm
        canonical: dict[int, str] = {}
        self.canon: dict[str, str] = {}  # every name of a parameter (tied ones too) → its first name
        for name, p in root.named_parameters(remove_duplicate=False):
            self.canon[name] = canonical.setdefault(id(p), name)
        self.modules: dict[str, nn.Module] = {}
        self.module_params: dict[str, dict[str, str]] = {}
        for node in gm.graph.nodes:
            if node.op == "call_module" and node.target not in self.modules:
                m = root.get_submodule(node.target)
                self.modules[node.target] = m
                self.module_params[node.target] = {
                    local: self.canon[f"{node.target}.{local}"] for local, _ in m.named_parameters(remove_duplicate=False)
                }

    # ---- the degree of every node in S -------------------------------------------------------
    def degrees(self, S: frozenset[str]) -> dict[Node, int]:
        deg: dict[Node, int] = {}

        def d(a: object) -> int:
            if isinstance(a, Node):
                return deg[a]
            if isinstance(a, (tuple, list)):
                return max((d(x) for x in a), default=0)
            if isinstance(a, dict):
                return max((d(x) for x in a.values()), default=0)
            if isinstance(a, slice):
                return max(d(a.start), d(a.stop), d(a.step))
            return 0

        for node in self.gm.graph.nodes:
            deg[node] = _cap(self._rule(node, d, S))
        return deg

    def _rule(self, node: Node, d, S: frozenset[str]) -> int:
        args, kwargs, op, t = node.args, node.kwargs, node.op, node.target
        every = max(d(args), d(kwargs))
        unknown = 0 if every == 0 else N
        if op == "placeholder":
            return 0
        if op == "output":
            return every
        if op == "get_attr":
            if t in self.canon:
                return int(self.canon[t] in S)
            return N if any(k.startswith(f"{t}.") and c in S for k, c in self.canon.items()) else 0
        first = d(args[0]) if args else 0
        rest = max(d(args[1:]), d(kwargs))
        shaped = first if rest == 0 else N
        if op == "call_module":
            return self._module_rule(node, d, S, first, rest, unknown)
        name = t if op == "call_method" else None
        if op == "call_method" and name.endswith("_") and not name.startswith("_"):
            name = name[:-1]  # an in-place method: same formula (its safety is checked separately)
        if t in _ADDITIVE_FN or name in _ADDITIVE_M:
            return every
        if t in _SHAPE_FN or name in _SHAPE_M:
            return shaped
        if t in _PRODUCT_FN or name in _PRODUCT_M:
            return sum(d(a) for a in (*args, *kwargs.values()))
        if t in _DIV_FN or name in _DIV_M:
            if kwargs.get("rounding_mode") is not None:
                return unknown
            return first if d(args[1:]) == 0 and d(kwargs) == 0 else N
        if t in _SIZE_FN or name in _SIZE_M:
            return 0
        if t is getattr:
            return 0 if args[1] in _META_ATTRS else first
        if op == "call_function":
            return self._function_rule(node, d, unknown)
        return unknown

    def _function_rule(self, node: Node, d, unknown: int) -> int:
        t = node.target
        arg = lambda i, name, default=None: _arg(node, i, name, default)
        deg = lambda i, name: d(arg(i, name))
        if t in _LINEAR_FN:  # (input, weight, bias, stride, ...)
            if d(node.args[3:]) or any(d(v) for k, v in node.kwargs.items() if k not in ("input", "weight", "bias")):
                return N
            return max(deg(0, "input") + deg(1, "weight"), deg(2, "bias"))
        if t in _ADDMM_FN:  # (input, a, b, *, beta, alpha)
            a, b = node.args[1:3] if len(node.args) >= 3 else (None, None)
            return max(deg(0, "input"), d(a) + d(b)) if a is not None else unknown
        if t is F.embedding:  # (input, weight, padding_idx, max_norm, ...)
            renorm = arg(3, "max_norm") is not None
            return N if deg(0, "input") or (renorm and deg(1, "weight")) else deg(1, "weight")
        if t in _NORM_FN:  # (input, shape or groups, weight, bias, eps); rms_norm has no bias
            xhat = 0 if deg(0, "input") == 0 else N
            bias = 0 if t is getattr(F, "rms_norm", None) else deg(3, "bias")
            return max(xhat + deg(2, "weight"), bias)
        if t is F.batch_norm:  # (input, running_mean, running_var, weight, bias, training, momentum, eps)
            fixed = arg(5, "training", False) is False and arg(1, "running_mean") is not None
            fixed = fixed and deg(1, "running_mean") == 0 and deg(2, "running_var") == 0
            xhat = deg(0, "input") if fixed or deg(0, "input") == 0 else N
            return max(xhat + deg(3, "weight"), deg(4, "bias"))
        if t in _DROPOUT_FN:  # (input, p, training, inplace)
            default = inspect.signature(t).parameters["training"].default
            return deg(0, "input") if arg(2, "training", default) is False else unknown
        if t is torch.where and len(node.args) == 3:
            return max(d(node.args[1]), d(node.args[2])) if d(node.args[0]) == 0 else N
        return unknown

    def _module_rule(self, node: Node, d, S: frozenset[str], x: int, rest: int, unknown: int) -> int:
        m = self.modules[node.target]
        sel = {local for local, c in self.module_params[node.target].items() if c in S}
        w, b = int("weight" in sel), int("bias" in sel)
        if isinstance(m, (*_LINEAR_MODULES, nn.Embedding, nn.modules.batchnorm._BatchNorm, *_NORM_MODULES)):
            if sel - {"weight", "bias"} or rest:
                return N
            if isinstance(m, _LINEAR_MODULES):
                return max(x + w, b)
            if isinstance(m, nn.Embedding):
                return N if x or (m.max_norm is not None and w) else w
            batch_stats = isinstance(m, _NORM_MODULES) or m.training or m.running_mean is None
            xhat = 0 if x == 0 else (N if batch_stats else x)
            return max(xhat + w, b)
        if sel:
            return N
        if isinstance(m, _PASS_MODULES) or (isinstance(m, _DROPOUT_MODULES) and not m.training):
            return x if rest == 0 else N
        return unknown

    # ---- in-place operations -------------------------------------------------------------------
    def unsafe_inplace(self) -> Node | None:
        """The first node changed in place where another node could see the change, or None."""
        for node in self.gm.graph.nodes:
            changed = self._changed(node)
            if changed is not None and not self._private(changed):
                return changed
        return None

    def _changed(self, node: Node) -> Node | None:
        target = None
        if node.op == "call_method" and node.target.endswith("_") and not node.target.startswith("_"):
            target = node.args[0]
        elif node.op == "call_module" and getattr(self.modules[node.target], "inplace", False) is True:
            target = node.args[0] if node.args else None
        elif node.op == "call_function":
            name = getattr(node.target, "__name__", "")
            bound = _bind(node.target, node.args, node.kwargs) or {}
            if (name.endswith("_") and not name.startswith("_")) or node.target in (operator.iadd, operator.isub, operator.imul,
                                                                                   operator.itruediv) or bound.get("inplace") is True:
                target = node.args[0] if node.args else None
        return target if isinstance(target, Node) else None

    def _private(self, node: Node) -> bool:
        """Whether ``node`` (and every tensor it is a view of) is used by one node only."""
        while True:
            if node.op == "get_attr" or len(node.users) != 1:
                return False
            alias = (
                (node.op == "call_method" and node.target in _SHAPE_M)
                or (node.op == "call_function" and (node.target in _SHAPE_FN or node.target is getattr))
                or (node.op == "call_module" and isinstance(self.modules[node.target], (*_PASS_MODULES, *_DROPOUT_MODULES)))
            )
            if not alias:
                return True
            node = node.args[0]
            if not isinstance(node, Node):
                return True


def _arg(node: Node, i: int, name: str, default: object = None) -> object:
    """The call's argument at position ``i`` or keyword ``name``."""
    return node.args[i] if len(node.args) > i else node.kwargs.get(name, default)


def _bind(fn: object, args: tuple, kwargs: dict) -> dict | None:
    """The call's arguments by parameter name (defaults included), or None when unknown."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return None
    bound.apply_defaults()
    return dict(bound.arguments)


def affine_sets(root: nn.Module, gm: GraphModule, out: Node, groups: Iterable[str]) -> tuple[tuple[frozenset[str], ...], str]:
    """The maximal candidate sets of ``groups`` in which ``out`` is jointly affine, and a note.

    Candidates: each submodule's own parameters together, each single group, and all groups.
    The note is empty, or says why nothing is proven (an in-place change another node sees).
    """
    try:
        return _affine_sets(root, gm, out, tuple(groups))
    except Exception as err:  # a graph shape the rules do not expect: prove nothing rather than fail
        first = (str(err).strip().splitlines() or [""])[0][:200]
        return (), f"the degree analysis of the traced graph failed ({type(err).__name__}: {first}), so nothing is proven from it"


def _affine_sets(root: nn.Module, gm: GraphModule, out: Node, G: tuple[str, ...]) -> tuple[tuple[frozenset[str], ...], str]:
    analysis = _Analysis(root, gm)
    bad = analysis.unsafe_inplace()
    if bad is not None:
        return (), f"the traced graph changes {bad.name} in place where other nodes see it, so nothing is proven from it"
    groups = set(G)
    candidates: dict[frozenset[str], None] = {frozenset(G): None}  # ordered and without repeats
    for prefix, m in root.named_modules():
        own = {analysis.canon[f"{prefix}.{k}" if prefix else k] for k, _ in m.named_parameters(recurse=False, remove_duplicate=False)}
        candidates[frozenset(own & groups)] = None
    affine = [s for s in candidates if s and analysis.degrees(s)[out] <= 1]
    # degrees only grow with S, so a group inside an affine set is affine alone: test the others
    affine += [s for s in (frozenset({g}) for g in G) if not any(s <= a for a in affine) and analysis.degrees(s)[out] <= 1]
    return tuple(s for s in affine if not any(s < other for other in affine)), ""
