"""Discrete convexity of a slice: where its second differences are negative beyond rounding.

A convex function has non-negative second differences along every line. On a grid x_0 < … <
x_{n−1} with spacings h_l = x_i − x_{i−1}, h_r = x_{i+1} − x_i, the divided second difference

    D_i = 2/(h_l + h_r) · [(L_{i+1} − L_i)/h_r − (L_i − L_{i−1})/h_l]

(= (L_{i−1} − 2L_i + L_{i+1})/h² on an even grid) estimates the second derivative along the
line, in the slice's own coordinates (for a plane: d₁ᵀ∇²L d₁ along α, d₂ᵀ∇²L d₂ along β).
It is checked along the line of a :class:`~losslab.landscape.LineSlice`, and along every
α-line (β fixed) and β-line (α fixed) of a :class:`~losslab.landscape.PlaneSlice`.

Rounding tolerance. Each computed loss value L_j is trusted to

    δ_j = rtol · ε · (|L_j| + M),   M = max_k |L_k| over the slice,

with ε the machine epsilon of the losses' dtype (2⁻⁵² in float64, 2⁻²³ in float32) and
rtol = 64 by default: a relative part for the value itself plus a floor at the scale of the
slice, which covers cancellation inside the loss (a residual that is small next to the outputs
it is the difference of) and in an exact-quadratic slice's formula (whose terms are bounded by
a few times M on a convex slice). D_i is a violation when D_i < −tol_i, where tol_i is the
bound that δ puts on D_i:

    tol_i = 2/(h_l + h_r) · (δ_{i+1}/h_r + δ_i (1/h_r + 1/h_l) + δ_{i−1}/h_l)

(= (δ_{i−1} + 2δ_i + δ_{i+1})/h² on an even grid). So a slice of a problem the verdict engine
proves convex shows no violation, while negative curvature much larger than rounding does.
Non-finite losses (an overflowing loss) give undefined differences: they are not counted as
violations, but the points are counted in ``nonfinite`` and located by ``nonfinite_at``, and a
slice with any is never ``clean``.

The values alone cannot show every rounding error: in a residual that is small next to the
outputs it is computed from (an interpolating fit in float32, seen through a slice much smaller
than the parameters), the error scales with the outputs, not with the loss. Pass the slice's
``problem`` to confirm each flagged difference the way the verdict engine certifies a witness:
the three points of its stencil are evaluated again in float64 (from the slice's coordinates
and vectors) and it counts only if D < −tol holds there too, with ε = 2⁻⁵².
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import LosslabError, finite_float
from ..problem import Problem
from ..tolerances import SLICE_RTOL
from .evaluate import evaluate_combinations
from .slices import LineSlice, PlaneSlice

__all__ = ["DEFAULT_RTOL", "DiscreteConvexity", "discrete_convexity"]

DEFAULT_RTOL = SLICE_RTOL  # losslab.tolerances
LARGEST_LOSS = 1e300  # second differences of larger values overflow float64 (divided by spacings as small as 1e-8)


@dataclass(frozen=True, eq=False)
class DiscreteConvexity:
    """Negative second differences of a slice, beyond a rounding tolerance.

    Attributes:
        axes: ``("t",)`` for a line, ``("alpha", "beta")`` for a plane.
        coordinates: the grid of each axis (t, or alphas and betas), float64.
        second_differences: per axis, float64 tensors of the losses' shape: D at each point
            (the difference along that axis centred there), NaN where undefined (the ends, and
            where the three losses of the stencil are not all finite).
        tolerances: per axis, the rounding tolerance tol at each point (NaN where D is).
        masks: per axis, bool tensors of the losses' shape: True where D < −tol.
        counts: per axis, the number of violations.
        checked: the number of second differences computed (all axes).
        most_negative: the smallest D over all axes (NaN when none was computed).
        most_negative_axis: the axis of ``most_negative`` (None when none was computed).
        most_negative_at: the coordinates of its centre point, (t,) or (α, β) (None likewise).
        rtol: the tolerance factor used.
        confirmed_in_float64: whether the masks were confirmed by float64 re-evaluation (``problem`` given).
        nonfinite: the number of grid points whose loss is NaN or ±inf.
        nonfinite_at: their coordinates, shape (nonfinite, len(axes)), float64.
    """

    axes: tuple[str, ...]
    coordinates: tuple[torch.Tensor, ...]
    second_differences: tuple[torch.Tensor, ...]
    tolerances: tuple[torch.Tensor, ...]
    masks: tuple[torch.Tensor, ...]
    counts: tuple[int, ...]
    checked: int
    most_negative: float
    most_negative_axis: str | None
    most_negative_at: tuple[float, ...] | None
    rtol: float
    confirmed_in_float64: bool = False
    nonfinite: int = 0
    nonfinite_at: torch.Tensor | None = None

    @property
    def violations(self) -> int:
        """The number of second differences below −tol, over all axes."""
        return sum(self.counts)

    @property
    def clean(self) -> bool:
        """No violation and every loss finite: the only outcome that says "looks convex on this slice"."""
        return self.violations == 0 and self.nonfinite == 0 and self.checked > 0

    def summary(self) -> str:
        """One line: violations, differences checked, and non-finite points with where the first is."""
        out = f"{self.violations} of {self.checked} second differences negative beyond rounding"
        if self.nonfinite:
            first = ", ".join(f"{a}={float(c):.3g}" for a, c in zip(self.axes, self.nonfinite_at[0]))
            out += f"; {self.nonfinite} points with a non-finite loss (first at {first}): not clean"
        return out

    def locations(self) -> torch.Tensor:
        """Coordinates of every violation's centre point, shape (violations, len(axes)), axis by axis."""
        grids = torch.meshgrid(*self.coordinates, indexing="ij")
        return torch.cat([torch.stack([g[mask] for g in grids], dim=1) for mask in self.masks])  # one mask per axis


def _along(L: torch.Tensor, delta: torch.Tensor, x: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(D, tol) along ``axis``, shaped like L, NaN at the two ends of the axis and where the stencil has a non-finite loss."""
    Lm, dm = L.movedim(axis, 0), delta.movedim(axis, 0)
    view = (-1,) + (1,) * (L.ndim - 1)
    hl, hr = (x[1:-1] - x[:-2]).reshape(view), (x[2:] - x[1:-1]).reshape(view)
    stencil = torch.stack([Lm[:-2], Lm[1:-1], Lm[2:]])
    D, tol = _divided(stencil, torch.stack([dm[:-2], dm[1:-1], dm[2:]]), hl, hr)
    undefined = ~torch.isfinite(stencil).all(0)  # an inf loss gives D = ±inf, not a second difference
    D, tol = D.masked_fill(undefined, float("nan")), tol.masked_fill(undefined, float("nan"))
    full_D, full_tol = torch.full_like(Lm, float("nan")), torch.full_like(Lm, float("nan"))
    full_D[1:-1], full_tol[1:-1] = D, tol
    return full_D.movedim(0, axis), full_tol.movedim(0, axis)


def _divided(L: torch.Tensor, delta: torch.Tensor, hl: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(D, tol) from stencil values L, δ of shape (3, ...) (left, centre, right) and spacings hl, hr."""
    w = 2 / (hl + hr)
    D = w * ((L[2] - L[1]) / hr - (L[1] - L[0]) / hl)
    tol = w * (delta[2] / hr + delta[1] * (1 / hr + 1 / hl) + delta[0] / hl)
    return D, tol


def _confirm(
    problem: Problem,
    slice_: LineSlice | PlaneSlice,
    coords: tuple[torch.Tensor, ...],
    axis: int,
    mask: torch.Tensor,
    rtol: float,
    scale: float,
) -> torch.Tensor:
    """The flagged entries of ``mask`` that stay violations when their stencil is evaluated in float64."""
    idx = mask.nonzero()
    if not len(idx):
        return mask
    f64 = torch.float64
    stencil = []
    for shift in (-1, 0, 1):
        j = idx.clone()
        j[:, axis] += shift
        stencil.append(torch.stack([c[j[:, k]] for k, c in enumerate(coords)], dim=1))
    grid = torch.cat(stencil)
    if isinstance(slice_, LineSlice):
        weights, vectors, base = torch.stack([1 - grid[:, 0], grid[:, 0]], dim=1), torch.stack([slice_.a, slice_.b]).to(f64), None
    else:
        weights, vectors, base = grid, torch.stack([slice_.d1, slice_.d2]).to(f64), slice_.center.to(f64)
    L = evaluate_combinations(problem.to(f64), weights, vectors, base).reshape(3, -1)
    finite = L[torch.isfinite(L)]
    top = max(scale, float(finite.abs().max())) if finite.numel() else scale
    delta = rtol * torch.finfo(f64).eps * (L.abs() + top)
    x, i = coords[axis], idx[:, axis]
    D, tol = _divided(L, delta, x[i] - x[i - 1], x[i + 1] - x[i])
    out = torch.zeros_like(mask)
    out[tuple(idx.T)] = D < -tol
    return out


def _check_slice(losses: torch.Tensor, coords: tuple[torch.Tensor, ...]) -> None:
    """A hand-built slice gets the checks a loaded one gets: float32/float64 losses, strictly increasing coordinates."""
    if losses.dtype not in (torch.float32, torch.float64):
        raise LosslabError(f"expected float32 or float64 losses (a problem's dtypes), got {losses.dtype}")
    for axis, x in enumerate(coords):
        if len(x) != losses.shape[axis] or not bool(torch.isfinite(x).all()) or bool((x.diff() <= 0).any()):
            raise LosslabError(f"expected {losses.shape[axis]} finite, strictly increasing coordinates along axis {axis} of the "
                               f"slice, got {x.tolist()[:6]}{' …' if len(x) > 6 else ''}")


def discrete_convexity(slice_: LineSlice | PlaneSlice, *, rtol: float = DEFAULT_RTOL, problem: Problem | None = None) -> DiscreteConvexity:
    """Find the negative second differences of a line or plane slice (see the module docstring).

    Args:
        slice_: a :class:`~losslab.landscape.LineSlice` or :class:`~losslab.landscape.PlaneSlice`.
        rtol: the rounding-tolerance factor (> 0), in units of the losses' machine epsilon.
        problem: the problem the slice was computed on; when given, each flagged difference is
            confirmed in float64 (three loss evaluations per flagged difference).

    Example:
        >>> from losslab import Problem
        >>> from losslab.landscape import line
        >>> from losslab.models import Polynomial
        >>> x = torch.linspace(-1, 1, 7, dtype=torch.float64)
        >>> prob = Problem(Polynomial(1, 2), x, x**2)
        >>> discrete_convexity(line(prob, [1.0, 0.0, 0.0], [0.0, 0.0, 1.0])).violations
        0
    """
    rtol = finite_float("rtol", rtol, positive=True)
    if isinstance(slice_, LineSlice):
        axes, coords = ("t",), (slice_.t.to(torch.float64),)
    elif isinstance(slice_, PlaneSlice):
        axes, coords = ("alpha", "beta"), (slice_.alphas.to(torch.float64), slice_.betas.to(torch.float64))
    else:
        raise LosslabError(f"expected a LineSlice or PlaneSlice (from losslab.landscape.line/plane), got {type(slice_).__name__}")
    _check_slice(slice_.losses, coords)
    eps = torch.finfo(slice_.losses.dtype).eps
    L = slice_.losses.to(torch.float64)
    finite = L[torch.isfinite(L)]
    scale = float(finite.abs().max()) if finite.numel() else 0.0
    if scale > LARGEST_LOSS:
        raise LosslabError(f"expected losses of at most {LARGEST_LOSS:.0e} in size (their second differences must fit in float64), got "
                           f"max |L| = {scale:.3g}: rescale the loss")
    delta = rtol * eps * (L.abs() + scale)
    if problem is not None:
        p = (slice_.a if isinstance(slice_, LineSlice) else slice_.center).numel()
        if not isinstance(problem, Problem) or problem.n_params != p:
            got = f"p={problem.n_params}" if isinstance(problem, Problem) else type(problem).__name__
            raise LosslabError(f"expected the problem the slice was computed on (p={p} parameters), got {got}")
    diffs, tols, masks = [], [], []
    for axis, x in enumerate(coords):
        D, tol = _along(L, delta, x, axis)
        diffs.append(D)
        tols.append(tol)
        masks.append(D < -tol if problem is None else _confirm(problem, slice_, coords, axis, D < -tol, rtol, scale))
    stacked = torch.stack(diffs)
    defined = ~torch.isnan(stacked)
    checked = int(defined.sum())
    worst, worst_axis, worst_at = float("nan"), None, None
    if checked:
        flat = torch.where(defined, stacked, torch.inf).reshape(-1)
        idx = int(flat.argmin())
        worst = float(flat[idx])
        axis, *where = torch.unravel_index(torch.tensor(idx), stacked.shape)
        worst_axis = axes[int(axis)]
        worst_at = tuple(float(c[int(i)]) for c, i in zip(coords, where))
    bad = ~torch.isfinite(L)
    grids = torch.meshgrid(*coords, indexing="ij")
    nonfinite_at = torch.stack([g[bad] for g in grids], dim=1) if len(coords) > 1 else coords[0][bad][:, None]
    return DiscreteConvexity(
        axes=axes,
        coordinates=coords,
        second_differences=tuple(diffs),
        tolerances=tuple(tols),
        masks=tuple(masks),
        counts=tuple(int(m.sum()) for m in masks),
        checked=checked,
        most_negative=worst,
        most_negative_axis=worst_axis,
        most_negative_at=worst_at,
        rtol=rtol,
        confirmed_in_float64=problem is not None,
        nonfinite=int(bad.sum()),
        nonfinite_at=nonfinite_at,
    )
