"""Problems derived from a Problem: restricted to some groups, or in another dtype or on another device.

Each is the original's validated parts with some replaced, built by ``Problem._replace`` (the one constructor
path of every copy): nothing is validated again, and the original is left as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ._checks import LosslabError, float_dtype
from ._problem_build import check_device

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .models.base import Params
    from .problem import Problem


def restricted(problem: Problem, groups: Iterable[str] | str, at: Params | torch.Tensor | None) -> Problem:
    """:meth:`Problem.restrict`: the loss in ``groups`` only, the other groups held at ``at``."""
    groups = [groups] if isinstance(groups, str) else list(groups)
    unknown = [g for g in groups if g not in problem.free]
    if not groups or unknown:
        raise LosslabError(f"expected groups among {list(problem.free)}, got {groups}" + (f" (unknown: {unknown})" if unknown else ""))
    if at is None:
        at_params = problem.unflatten(problem.default_theta(0))
    elif isinstance(at, dict):
        at_params = {**problem.fixed, **{g: at[g] for g in problem.free if g in at}}
        problem.flatten(at_params)
    else:
        at_params = problem.unflatten(problem.as_theta(at, "at"))
    held = {g: at_params[g].detach().to(device=problem.device, dtype=problem.dtype).clone()
            for g in problem.model.groups if g not in groups}
    bad = [g for g, v in held.items() if not bool(torch.isfinite(v).all())]
    if bad:
        raise LosslabError(f"expected finite values for the groups held fixed, got NaN/inf in {bad}; pass a finite point as at=")
    return problem._replace(free=tuple(g for g in problem.model.groups if g in groups), _fixed=held)


def converted(problem: Problem, targets: tuple) -> Problem:
    """:meth:`Problem.to`: a copy computing in another dtype and/or on another device."""
    dtype, device = problem.dtype, problem.device
    for t in targets:
        if isinstance(t, torch.dtype) or t in ("float32", "float64"):
            dtype = float_dtype(t)
        else:
            device = check_device(problem.model, None, t, dtype)
    if (dtype, device) == (problem.dtype, problem.device):
        return problem
    staged = problem._replace(
        dtype=dtype, device=device, _fixed={g: v.to(device=device, dtype=dtype) for g, v in problem.fixed.items()},
        _bytes_per_point=problem._bytes_per_point * torch.finfo(dtype).bits // torch.finfo(problem.dtype).bits,
    )
    return staged._replace(data=problem.data.transformed(staged.prepare))  # the cached batches, prepared in the new dtype
