"""Fresh weights for a wrapped ``nn.Module`` from a seed: ``reset_parameters`` or the user's init.

With no init function, every submodule's ``reset_parameters()`` (or, for ``torch.nn`` modules
that only have it, such as ``MultiheadAttention``, ``_reset_parameters()``) runs on a CPU copy
with the CPU default generator seeded inside ``torch.random.fork_rng`` — the global random
state is left as it was. Either way the draws come from the ``"init"`` stream of the seed
(:mod:`losslab.random_streams`): the init function gets ``generator(seed, "init")``, and the
default generator is seeded with ``child_seed(seed, "init")``. A parameter no reset writes (a custom ``nn.Parameter`` on a module
without ``reset_parameters``) would come back unchanged for every seed, so the seed is refused
instead: the selected parameters are filled with NaN before the resets, and any that still
holds a NaN afterwards was not re-initialised. Deterministic resets (LayerNorm's ones and
zeros) count as re-initialised.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from .._checks import LosslabError
from ..random_streams import child_seed, generator

InitFn = Callable[[torch.nn.Module, torch.Generator], object]


def _resetter(m: torch.nn.Module) -> Callable[[], object] | None:
    if callable(getattr(m, "reset_parameters", None)):
        return m.reset_parameters
    if type(m).__module__.startswith("torch.nn") and callable(getattr(m, "_reset_parameters", None)):
        return m._reset_parameters
    return None


def reinit(
    module: torch.nn.Module, selected: tuple[str, ...], seed: int, init_fn: InitFn | None, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """The ``selected`` parameters of a re-initialised copy of ``module``, as ``dtype``, on its device.

    Args:
        module: the wrapped module (not changed).
        selected: the parameter names to return (the analysed groups).
        seed: the seed; the same seed gives the same numbers (its ``"init"`` stream).
        init_fn: ``fn(module_copy, generator)`` re-initialising the copy in place, or None for
            the modules' own ``reset_parameters``.
        dtype: the dtype of the returned floating tensors.
    """
    device = next(iter(module.parameters())).device
    fresh = copy.deepcopy(module).to("cpu")  # CPU draws only: the same numbers on every machine
    if init_fn is not None:
        try:
            init_fn(fresh, generator(seed, "init"))
        except Exception as err:
            raise LosslabError(
                f"expected init=fn to re-initialise the module copy in place as fn(module, generator), got {type(err).__name__}: {err}"
            ) from None
        params = dict(fresh.named_parameters())
        own = dict(module.named_parameters())
        same = [k for k in selected if k in params and k in own and params[k].shape == own[k].shape
                and torch.equal(params[k].detach().cpu(), own[k].detach().cpu())]
        if same and len(same) == len([k for k in selected if k in params]):
            raise LosslabError(
                f"expected init=fn to re-draw the parameters in place, got {same[:3]} unchanged after fn(module, generator) "
                "(did it return a new module instead of changing the one it was given?)"
            )
    else:
        with torch.no_grad():
            for name, p in fresh.named_parameters():
                if name in selected and p.is_floating_point():
                    p.fill_(float("nan"))
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(child_seed(seed, "init"))
            for m in fresh.modules():
                reset = _resetter(m)
                if reset is not None:
                    reset()
        params = dict(fresh.named_parameters())
        missed = [k for k in selected if k in params and params[k].is_floating_point() and bool(torch.isnan(params[k]).any())]
        if missed:
            raise LosslabError(
                f"cannot re-initialise with seed={seed}: no reset_parameters() draws {missed}; pass Module(net, init=fn) with "
                "fn(module, generator) re-initialising it in place, or use init(seed=None) for the module's own weights"
            )
    shapes = {k: tuple(v.shape) for k, v in module.named_parameters()}
    out = {}
    for k in selected:
        if k not in params or tuple(params[k].shape) != shapes[k]:
            got = f"shape {tuple(params[k].shape)}" if k in params else "no such parameter"
            raise LosslabError(f"expected init=fn to keep parameter {k!r} with shape {shapes[k]}, got {got}")
        v = params[k].detach()
        out[k] = v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype).clone()
    return out
