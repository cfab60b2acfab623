"""Any ``torch.nn.Module`` as a pure model, through ``torch.func.functional_call``.

The user's module is analysed as they train it: its trainable parameters are the groups (frozen
ones are held fixed, like buffers), its train/eval mode is kept and stated, its inputs keep
their dtype (int64 token ids stay int64), and what it is affine in is proven from its traced
graph (:mod:`losslab.models.module_affine`) or declared by the user.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
import torch.nn.utils.parametrize

from .._checks import LosslabError, choice, float_dtype, positive_int, seed_int
from .base import Model, Params
from .layers import Layer, sequential_layers
from .module_affine import affine_sets as prove_affine_sets
from .module_init import InitFn, reinit
from .module_io import Inputs, call_args, check_selector, map_tensors, select_output, tensors_of
from .module_trace import output_node, sigmoid_input, strip_graph, strip_sequential, trace

__all__ = ["Module"]


class Module(Model):
    """Wrap ``nn_module`` (deep-copied) as f(params, inputs) = ``functional_call(module, params, inputs)``.

    ``logit(params, inputs)`` calls the module as ``module(x)`` for a tensor, ``module(*x)`` for
    a tuple and ``module(**x)`` for a dict (``input_ids``, ``attention_mask``); the leading
    dimension of every tensor is the batch, and inputs are never cast. Buffers and frozen
    parameters are cast to the dtype, and moved to the device, of the parameters passed in
    (floating ones only: ``num_batches_tracked`` stays int64). Outputs of shape (n, 1) are
    squeezed to (n,).

    Args:
        nn_module: the module; it is copied, never changed.
        d_in: give it to have 2-D tensor inputs checked to be (n, d_in).
        output: which returned value is the output: None (forward returns a tensor), a dict key
            or attribute name (``"logits"`` of a Hugging Face ``ModelOutput``), or a tuple index.
        params: the groups analysed: ``"trainable"`` (``requires_grad=True``; the others are
            frozen, held fixed and never in θ), ``"all"``, or a list of parameter names.
        mode: ``"eval"`` (running statistics, no dropout), or ``"train"``: BatchNorm uses the
            statistics of the batch it is given, without updating running statistics
            (``torch.func.replace_all_batch_norm_modules_``), and dropout is active, which makes
            the loss random (a Problem refuses a non-deterministic loss).
        init: ``fn(module, generator)`` that re-initialises ``module`` (a copy) in place from
            ``generator`` (the CPU generator ``losslab.random_streams.generator(seed, "init")``), used by ``init(seed=...)``;
            e.g. ``lambda m, g: [torch.nn.init.normal_(p, std=0.1, generator=g) for p in m.parameters()]``.
            Default: every submodule's ``reset_parameters()`` with the CPU generator seeded with
            ``child_seed(seed, "init")``.
        affine_sets: sets of group names the output is affine in, declared by the user, added to
            those proven from the traced graph (a wrong declaration is caught by the proof's
            float64 guard and blamed on it).
        link: ``"auto"``: when the module's last operation is a sigmoid, ``link`` is
            ``"sigmoid"`` and ``logit`` is the output without it, so that ``apply`` = σ(logit) is
            the module's forward and bce is computed stably from the logit; ``None``: no link;
            ``"sigmoid"``: as auto, but a final sigmoid must be found.

    Attributes:
        module: the wrapped copy, in ``mode``.
        frozen: names of the parameters held fixed (not analysed).
        trace_note: None, or one line saying why nothing is proven from the traced graph.
        proven_affine_sets, declared_affine_sets: the two sources of ``affine_sets``.

    Example:
        >>> net = Module(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)))
        >>> net.groups
        ('0.weight', '0.bias', '2.weight', '2.bias')
        >>> [sorted(s) for s in net.affine_sets]
        [['2.bias', '2.weight']]
        >>> net.describe()
        'Module(Sequential, 13 parameters, eval mode, no frozen tensors)'
    """

    float_inputs = False  # the Problem casts only floating inputs: int64 token ids stay int64

    def __init__(
        self,
        nn_module: torch.nn.Module,
        *,
        d_in: int | None = None,
        output: str | int | None = None,
        params: str | Iterable[str] = "trainable",
        mode: str = "eval",
        init: InitFn | None = None,
        affine_sets: Iterable[Iterable[str]] | None = None,
        link: str | None = "auto",
    ):
        if not isinstance(nn_module, torch.nn.Module):
            raise LosslabError(f"expected a torch.nn.Module, got {type(nn_module).__name__}")
        self.d_in = None if d_in is None else positive_int("d_in", d_in)
        self.output = check_selector(output)
        self.mode = choice("mode", mode, ("eval", "train"))
        if init is not None and not callable(init):
            raise LosslabError(f"expected init to be None or a function fn(module, generator), got init={init!r}")
        if link not in ("auto", "sigmoid", None):
            raise LosslabError(f"expected link to be 'auto', 'sigmoid' or None, got link={link!r}")
        self.link_declared = link != "auto"  # link=None: the user says the outputs are logits
        self._init_fn = init
        lazy = [k for k, v in nn_module.named_parameters() if isinstance(v, torch.nn.parameter.UninitializedParameter)]
        if lazy:
            raise LosslabError(
                f"expected a module with materialised parameters, got uninitialised (lazy) {lazy[:3]}; run one forward first"
            )
        try:
            module = copy.deepcopy(nn_module)
        except Exception as err:
            first = (str(err).strip().splitlines() or [""])[0]
            raise LosslabError(
                f"expected a module that can be copied (losslab analyses a private copy), got {type(err).__name__}: {first}; "
                "for weight norm use torch.nn.utils.parametrizations.weight_norm"
            ) from None
        module.train(mode == "train")
        if mode == "train":
            torch.func.replace_all_batch_norm_modules_(module)
        self.module = module
        every = dict(module.named_parameters())
        if not every:
            raise LosslabError(f"expected a module with parameters, got {type(nn_module).__name__} with none")
        selected = _selected(params, every, type(nn_module).__name__)
        self.shapes = {k: tuple(every[k].shape) for k in selected}
        self.frozen: tuple[str, ...] = tuple(k for k in every if k not in self.shapes)
        self.declared_affine_sets = _declared(affine_sets, self.shapes, self.frozen)
        self._own = {k: every[k].detach() for k in selected}  # the copy is private: no clone needed
        self._constants = {**{k: v.detach() for k, v in module.named_buffers()}, **{k: every[k].detach() for k in self.frozen}}
        self._cast: dict[tuple[torch.dtype, torch.device], dict[str, torch.Tensor]] = {}
        self._activation_count: int | None = None

        gm, note = trace(module)
        node = output_node(gm, self.output) if gm is not None else None
        if gm is not None and node is None:
            note = f"the selected output (output={self.output!r}) is not a node of the traced graph, so nothing is proven from it"
        self._forward, self._stripped, self.link = module, False, None
        if link is not None:
            seq = strip_sequential(module) if self.output is None else None
            inner = sigmoid_input(gm, node) if node is not None else None
            graph = strip_graph(module, gm, inner) if inner is not None and seq is None else None
            if seq is not None or graph is not None:
                self.link = "sigmoid"
                self._forward, self._stripped = (seq, False) if seq is not None else (graph, True)
                node = inner
            elif link == "sigmoid":
                raise LosslabError(
                    f"expected a module whose last operation is a sigmoid for link='sigmoid', got {type(nn_module).__name__} "
                    f"without one found{f' ({note})' if note else ''}; pass link=None or link='auto'"
                )
        self._aliases = _aliases(self._forward)
        proven: tuple[frozenset[str], ...] = ()
        hooked = _hooked(module)
        if hooked:
            note = f"the module has forward hooks or a replaced forward ({hooked}), which the traced graph does not see"
        elif node is not None:
            proven, note = prove_affine_sets(module, gm, node, self.groups)
        self.trace_note: str | None = note or None
        self.proven_affine_sets = proven
        self.affine_sets = proven + tuple(s for s in self.declared_affine_sets if s not in proven)

    # ---- parameters ------------------------------------------------------------------------
    def init(self, *, seed: int | None = None, dtype: torch.dtype = torch.float64) -> Params:
        """The module's own weights (``seed=None``), or fresh ones drawn from the ``"init"`` stream of ``seed``.

        A seed re-initialises a copy with ``init=fn`` or with every submodule's
        ``reset_parameters()`` (:mod:`losslab.models.module_init`); a selected parameter that
        no reset draws makes the seed an error rather than a silent copy of the weights.
        """
        dtype = float_dtype(dtype)
        if seed is None:
            return {k: (v.to(dtype) if v.is_floating_point() else v).clone() for k, v in self._own.items()}
        return reinit(self.module, self.groups, seed_int("seed", seed), self._init_fn, dtype)

    def default_params(self, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> Params:
        """The module's own weights (the seed is not used)."""
        return self.init(seed=None, dtype=dtype)

    # ---- evaluation ------------------------------------------------------------------------
    def held(self, dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
        """Buffers and frozen parameters, as the forward holds them for parameters of ``dtype`` on ``device``: held constants,
        floating ones in ``dtype`` (cached per dtype and device)."""
        key = (dtype, device)
        if key not in self._cast:
            self._cast[key] = {
                k: v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device) for k, v in self._constants.items()
            }
        return self._cast[key]

    def logit(self, params: Params, inputs: Inputs) -> torch.Tensor:
        """The pre-link output, (n,) or (n, k, ...): the forward (without a final sigmoid when ``link``)."""
        ref = next((v for v in params.values() if isinstance(v, torch.Tensor) and v.is_floating_point()), None)
        if ref is None:
            raise LosslabError(f"expected params as a dict of floating tensors with groups {list(self.groups)}, got {list(params)}")
        args, kwargs = call_args(inputs)
        full = {**params, **self.held(ref.dtype, ref.device)}
        full |= {alias: full[name] for alias, name in self._aliases.items() if name in full}
        out = torch.func.functional_call(self._forward, full, args, kwargs, tie_weights=False)
        z = select_output(out, None if self._stripped else self.output)
        return z[..., 0] if z.ndim == 2 and z.shape[-1] == 1 else z

    def layers(self) -> tuple[Layer, ...] | None:
        """The forward as affine layers with elementwise activations (see :mod:`losslab.models.layers`), or None.

        Given for a plain ``nn.Sequential`` of ``nn.Linear`` and activation modules (after a final
        sigmoid link is stripped) with no output selector; the names are the module's parameter names
        (frozen ones are among the held constants, :meth:`held`). None when the module's forward is
        not just its layers: forward hooks or pre-hooks (``spectral_norm`` is one), parametrizations,
        an instance-level ``forward``, or a parameter shared between layers (tied weights).
        """
        if self.output is not None or self._stripped or _hooked(self._forward) or any(
                torch.nn.utils.parametrize.is_parametrized(m) for m in self._forward.modules()):
            return None
        spec = sequential_layers(self._forward)
        names = set(self.shapes) | set(self.frozen) | {n for n, _ in self._forward.named_buffers()}
        named = [g for layer in spec or () for g in (layer.weight, layer.bias) if g is not None]
        return spec if spec is not None and set(named) <= names and len(set(named)) == len(named) else None

    def check_float64(self, inputs: Inputs) -> None:
        """Raise unless the module re-evaluates in float64 (every witness is re-checked in float64).

        Catches a floating tensor attribute that is not a parameter or buffer (it is not cast
        with the parameters), and a cast in forward (``x.float()``) that fails on float64
        parameters or returns a non-float64 output. ``inputs`` is one small batch; its floating
        tensors are cast to float64.
        """
        x64 = map_tensors(inputs, lambda t: t.to(torch.float64) if t.is_floating_point() else t)
        tensors = tensors_of(x64)
        device = tensors[0].device if tensors else next(iter(self._own.values())).device
        params = {k: v.to(device) for k, v in self.init(seed=None, dtype=torch.float64).items()}
        fix = "the forward casts (x.float() or .to(torch.float32)): drop the cast or use x.to(weight.dtype)"
        try:
            with torch.no_grad():
                z = self.logit(params, x64)
        except LosslabError:
            raise
        except Exception as err:
            first = (str(err).strip().splitlines() or [""])[0]
            self._blame_attributes()
            hint = fix if "type" in first.lower() else "fix the forward for float64 parameters"
            raise LosslabError(f"expected {self.describe()} to run in float64, got {type(err).__name__}: {first}; {hint}") from None
        if z.dtype != torch.float64:
            self._blame_attributes()
            raise LosslabError(f"expected float64 outputs from float64 parameters, got {z.dtype} from {self.describe()}; {fix}")

    def _blame_attributes(self) -> None:
        """Raise naming a plain floating tensor attribute (not a parameter or buffer), if the module has one."""
        for prefix, sub in self.module.named_modules():
            for attr, value in vars(sub).items():
                if isinstance(value, torch.Tensor) and value.is_floating_point() and not attr.startswith("_tensor_constant"):
                    raise LosslabError(
                        f"expected every tensor of the module to be a parameter or buffer (cast with the parameters), got a plain "
                        f"{value.dtype} tensor attribute {f'{prefix}.{attr}' if prefix else attr}; register it in __init__ with "
                        f"self.register_buffer({attr!r}, tensor)"
                    )

    # ---- descriptions ------------------------------------------------------------------------
    def affine_reason(self, groups: Iterable[str] | None = None) -> str:
        """How ``affine_sets`` are known: proven from the traced graph or declared by the user.

        With ``groups``, the reason for the set that contains them; else for every set.
        """
        wanted = None if groups is None else frozenset(groups)
        proven = [s for s in self.proven_affine_sets if wanted is None or wanted <= s]
        declared = [s for s in self.declared_affine_sets if (wanted is None or wanted <= s) and s not in self.proven_affine_sets]
        if wanted is not None and proven:
            declared = []
        parts = []
        if proven:
            sets = ", ".join(_braced(s, self.groups) for s in proven)
            parts.append(f"traced graph (torch.fx): the output depends on {'each of ' if len(proven) > 1 else ''}{sets} "
                         "only through linear operations")
        if declared:
            parts.append("declared by the user: affine in " + ", ".join(_braced(s, self.groups) for s in declared))
        if parts:
            return "; ".join(parts)
        return f"none: {self.trace_note}" if self.trace_note else "none: the traced graph (torch.fx) proves no set affine"

    def activations_per_example(self, x: Inputs | None = None) -> int:
        """Twice the number of values all submodules output per example, measured once on ``x``.

        ``x`` is structured as the inputs are (a tensor, tuple or dict), each tensor with a few rows
        (the count is divided by them; BatchNorm in train mode needs at least 2).
        """
        if self._activation_count is None and x is not None:
            total = 0

            def count(_module, _inputs, output):
                nonlocal total
                if isinstance(output, torch.Tensor):
                    total += output.numel()

            tensors = tensors_of(x)
            rows = max(1, tensors[0].shape[0]) if tensors and tensors[0].ndim else 1  # a few rows: BatchNorm in train mode needs 2
            ref = next((t for t in tensors if t.is_floating_point()), None)
            own = next(iter(self._own.values()))
            device = tensors[0].device if tensors else own.device
            dtype = ref.dtype if ref is not None else own.dtype if own.is_floating_point() else torch.float64
            params = {k: v.to(device) for k, v in self.init(seed=None, dtype=dtype).items()}
            hooks = [m.register_forward_hook(count) for m in self.module.modules()]
            try:
                with torch.no_grad():
                    self.logit(params, x)
            finally:
                for h in hooks:
                    h.remove()
            self._activation_count = max(1, -(-2 * total // rows))
        return self._activation_count or 4 * self.n_params

    def describe(self) -> str:
        k = len(self.frozen)
        frozen = f"{k} frozen tensor{'s' if k != 1 else ''}" if k else "no frozen tensors"
        return f"Module({type(self.module).__name__}, {self.n_params} parameters, {self.mode} mode, {frozen})"


def _listed(names: list[str], limit: int = 12) -> str:
    """``names`` for an error message, cut after ``limit``."""
    return str(names) if len(names) <= limit else f"{names[:limit]} … ({len(names)} in all)"


def _braced(s: frozenset[str], order: tuple[str, ...]) -> str:
    return "{" + ", ".join(g for g in order if g in s) + "}"


def _selected(params: object, every: dict[str, torch.nn.Parameter], cls: str) -> list[str]:
    """The analysed parameter names, in the module's order, for the ``params`` argument."""
    if isinstance(params, str):
        choice("params", params, ("trainable", "all"))
        names = [k for k, p in every.items() if p.requires_grad or params == "all"]
        if not names:
            raise LosslabError(
                f"expected a module with trainable parameters, got {cls} whose {len(every)} parameters all have "
                "requires_grad=False; pass Module(net, params='all') to analyse them all, or a list of names"
            )
        return names
    if not isinstance(params, (list, tuple)):
        raise LosslabError(f"expected params='trainable', 'all' or a list of parameter names, got params={params!r}")
    if not params:
        raise LosslabError(f"expected params to name at least one parameter, got an empty list; valid names: {_listed(list(every))}")
    bad = [n for n in params if not isinstance(n, str) or n not in every]
    if bad:
        raise LosslabError(f"unknown parameter name(s) {bad} in params: expected names among {_listed(list(every))}")
    if len(set(params)) != len(params):
        raise LosslabError(f"expected distinct parameter names in params, got {list(params)}")
    return [k for k in every if k in params]


def _declared(sets: object, shapes: dict[str, tuple[int, ...]], frozen: tuple[str, ...]) -> tuple[frozenset[str], ...]:
    """The user's ``affine_sets``, checked: an iterable of non-empty iterables of analysed group names."""
    if sets is None:
        return ()
    example = "e.g. affine_sets=[{'2.weight', '2.bias'}]"
    if isinstance(sets, (str, bytes)) or not isinstance(sets, Iterable):
        raise LosslabError(f"expected affine_sets as a list of sets of group names, {example}, got affine_sets={sets!r}")
    out: list[frozenset[str]] = []
    for s in sets:
        if isinstance(s, (str, bytes)) or not isinstance(s, Iterable):
            raise LosslabError(f"expected each of affine_sets to be a set of group names, {example}, got {s!r}")
        names = list(s)
        if not names:
            raise LosslabError(f"expected each of affine_sets to be a non-empty set of group names, {example}, got {s!r}")
        bad = [n for n in names if n not in shapes]
        if bad:
            held = [n for n in bad if n in frozen]
            why = f" ({held} are frozen: held fixed, not analysed)" if held else ""
            raise LosslabError(f"unknown group(s) {bad} in affine_sets{why}: expected names among {_listed(list(shapes))}")
        if frozenset(names) not in out:
            out.append(frozenset(names))
    return tuple(out)


def _aliases(module: torch.nn.Module) -> dict[str, str]:
    """{name: first name} for tensors that another module holds too (tied weights), one entry per other holder.

    ``functional_call`` is called with ``tie_weights=False`` and every holder's name (its own tying
    leaves vmap's batched tensors in the module); a module reached under two names (the same layer used
    twice) is one attribute and needs no alias.
    """
    first: dict[int, str] = {}
    slots: set[tuple[int, str]] = set()
    out = {}
    for name, value in [*module.named_parameters(remove_duplicate=False), *module.named_buffers(remove_duplicate=False)]:
        owner, _, attr = name.rpartition(".")
        slot = (id(module.get_submodule(owner)), attr)
        if slot in slots:
            continue  # the same module's attribute under another path
        slots.add(slot)
        if id(value) in first:
            out[name] = first[id(value)]
        else:
            first[id(value)] = name
    return out


def _hooked(module: torch.nn.Module) -> str:
    """Names of submodules with forward hooks or an instance-level ``forward`` (invisible to torch.fx), or ''."""
    names = [name or type(m).__name__ for name, m in module.named_modules()
             if m._forward_hooks or m._forward_pre_hooks or "forward" in vars(m)]
    if torch.nn.modules.module._global_forward_hooks or torch.nn.modules.module._global_forward_pre_hooks:
        names.append("global hooks")
    return ", ".join(names[:3])
