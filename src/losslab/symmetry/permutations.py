"""Hidden-unit permutations of a chain of affine layers with elementwise activations.

For a model whose forward is h_{l+1} = σ_l(W_l h_l + b_l), l = 0 … L−1 (a layer spec,
:mod:`losslab.models.layers`), reordering the units of a hidden layer l < L−1 by a permutation π_l —
the rows of W_l and entries of b_l, and the columns of W_{l+1} —

    W_l ← P_l W_l P_{l−1}ᵀ,   b_l ← P_l b_l,   (P_l)_{ij} = [j = π_l(i)],   P_{−1} = P_{L−1} = I,

leaves the function unchanged on every input, because an elementwise σ commutes with a permutation
(Hecht-Nielsen 1990; Ainsworth, Hayase & Srinivasa 2023, §2). The output units are never permuted.

Which models: a :class:`~losslab.models.TwoLayer` or :class:`~losslab.models.MLP` (their own layer spec), or a
:class:`~losslab.models.Module` wrapping an ``nn.Sequential`` (nested allowed) of ``nn.Linear`` layers and the
parameter-free elementwise activations of :data:`ELEMENTWISE` (any number after a layer, or none), with an
``nn.Flatten`` allowed before the first ``nn.Linear`` and ``nn.Dropout`` in eval mode (the identity there). The
fast kernels' spec (:func:`~losslab.models.layers.sequential_layers`) covers fewer activations, those it can
evaluate; when it declines, :func:`permutable_layers` reads the chain itself, since a permutation needs only the
layers' weight and bias groups, not what σ computes. Anything else (a convolution, a normalisation layer, a
softmax over the units, ``nn.PReLU``, which has parameters) is refused, the error naming the first such layer by
its index in the Sequential and its class.
Reused by :mod:`losslab.symmetry.weight_matching`; the random single-symmetry witnesses of the
convexity search live in :mod:`losslab.convexity.symmetry` (through each model's ``symmetries``).
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import LosslabError
from ..landscape.fast import layer_spec
from ..models.base import Params
from ..models.layers import Layer
from ..models.torch_module import Module, _hooked
from ..problem import Problem

__all__ = ["ELEMENTWISE", "SUPPORTED", "moved_groups", "permutable_layers", "permute_hidden_units"]

# Parameter-free activation modules that act on each unit alone: σ(Ph) = Pσ(h) for every permutation matrix P.
ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Softplus, nn.Softsign,
    nn.Sigmoid, nn.LogSigmoid, nn.Hardsigmoid, nn.Hardswish, nn.Hardtanh, nn.Hardshrink, nn.Softshrink, nn.Tanh,
    nn.Tanhshrink, nn.Threshold, nn.Identity,
)
SUPPORTED = ("TwoLayer, MLP, or a Module wrapping an nn.Sequential of nn.Linear and the elementwise activations "
             + ", ".join(c.__name__ for c in ELEMENTWISE) + " (nn.Flatten allowed before the first nn.Linear, nn.Dropout in eval mode)")


def permutable_layers(problem: Problem, what: str = "weight matching") -> tuple[Layer, ...]:
    """The layer spec of ``problem``'s model, checked to be permutable: every group a permutation moves is free in θ.

    Raises:
        LosslabError: a model that is not such a chain (a convolution, a normalisation or attention layer, a
            custom forward: the message names the first unsupported layer, its index and class, and lists what is
            supported), or a group the permutations move held fixed (``problem.restrict``, a frozen parameter); the
            output layer's bias may be fixed.
    """
    if not isinstance(problem, Problem):
        raise LosslabError(f"expected a losslab Problem for {what}, got {type(problem).__name__}")
    spec = layer_spec(problem)
    if spec is None:
        spec = _sequential_chain(problem.model, what)
    held = [g for g in moved_groups(spec) if g not in problem.free]
    if held:
        raise LosslabError(f"expected every group a hidden-unit permutation moves to be free in θ for {what}, got {held} "
                           "held fixed; use problem.full() (or un-freeze those parameters)")
    return spec


def _refuse(what: str, got: str) -> LosslabError:
    return LosslabError(f"expected for {what} a model that is a chain of affine layers with elementwise activations, got "
                        f"{got}; supported: {SUPPORTED}")


def _leaves(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """The modules of a (nested) ``nn.Sequential`` in call order, named by their index path ("2", "1.0")."""
    out = []
    for name, child in module._modules.items():
        if child is None:
            continue
        path = f"{prefix}.{name}" if prefix else name
        out += _leaves(child, path) if type(child) is nn.Sequential else [(path, child)]
    return out


def _sequential_chain(model, what: str) -> tuple[Layer, ...]:
    """The layer spec of a Module wrapping an ``nn.Sequential`` of ``nn.Linear`` and :data:`ELEMENTWISE` activations,
    for permutations only (its activation names are the modules' class names, not names :func:`forward` evaluates)."""
    if not isinstance(model, Module):
        raise _refuse(what, model.describe())
    forward = model._forward
    if model.output is not None or model._stripped:
        raise _refuse(what, f"{model.describe()} with an output selected from its graph")
    if type(forward) is not nn.Sequential:
        raise _refuse(what, f"{model.describe()}, whose forward is its own, not an nn.Sequential's")
    hooked = _hooked(forward)
    if hooked or any(nn.utils.parametrize.is_parametrized(m) for m in forward.modules()):
        raise _refuse(what, f"{model.describe()} with forward hooks or parametrizations ({hooked or 'parametrized'})")
    spec: list[Layer] = []
    for name, m in _leaves(forward):
        if type(m) is nn.Linear:
            spec.append(Layer(f"{name}.weight", f"{name}.bias" if m.bias is not None else None, None))
        elif type(m) in ELEMENTWISE:
            if spec:
                act = type(m).__name__.lower()
                spec[-1] = spec[-1]._replace(activation=f"{spec[-1].activation}+{act}" if spec[-1].activation else act)
        elif type(m) is nn.Dropout and model.mode == "eval":
            continue  # the identity in eval mode
        elif not (type(m) is nn.Flatten and not spec):
            raise _refuse(what, f"layer {name} ({type(m).__name__}) of {model.describe()}")
    if not spec:
        raise _refuse(what, f"{model.describe()} without an nn.Linear layer")
    named = [g for layer in spec for g in (layer.weight, layer.bias) if g is not None]
    if not set(named) <= set(model.shapes) | set(model.frozen) or len(set(named)) != len(named):
        raise _refuse(what, f"{model.describe()} whose layers share (tie) parameters")
    return tuple(spec)


def moved_groups(spec: tuple[Layer, ...]) -> list[str]:
    """The groups a permutation of hidden units changes: every hidden layer's weight and bias, and every later layer's weight."""
    hidden = [g for layer in spec[:-1] for g in (layer.weight, layer.bias) if g is not None]
    return [*hidden, spec[-1].weight] if len(spec) > 1 else []


def permute_hidden_units(spec: tuple[Layer, ...], params: Params, perms: list[torch.Tensor]) -> Params:
    """``params`` with the units of hidden layer l reordered by ``perms[l]``: new unit i is old unit ``perms[l][i]``.

    Args:
        spec: the layer spec, L layers.
        params: every group the spec names (others are copied unchanged).
        perms: L − 1 int64 tensors, ``perms[l]`` a permutation of range(width of hidden layer l).

    Returns:
        A new dict; the model computes the same function with it, to rounding (exactly, in exact arithmetic).
    """
    if len(perms) != len(spec) - 1:
        raise LosslabError(f"expected {len(spec) - 1} permutations (one per hidden layer), got {len(perms)}")
    out = dict(params)
    for layer, perm in zip(spec[:-1], perms, strict=True):
        out[layer.weight] = out[layer.weight][perm]
        if layer.bias is not None:
            out[layer.bias] = out[layer.bias][perm]
    for layer, perm in zip(spec[1:], perms, strict=True):
        out[layer.weight] = out[layer.weight][..., perm]
    return out
