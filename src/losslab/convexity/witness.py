"""Certified non-convexity: a chord that lies below the loss, re-checkable in float64.

A function L is convex iff for all a, b and λ ∈ [0, 1]

    L(λa + (1−λ)b) ≤ λL(a) + (1−λ)L(b).

A :class:`ChordWitness` holds a, b, λ with gap = L(λa + (1−λ)b) − λL(a) − (1−λ)L(b) > 0 by
more than a rounding bound. A negative second difference along a direction d at θ is the
special case a = θ + h·d, b = θ − h·d, λ = 1/2, so curvature witnesses are chords too.

The rounding bound. Evaluating L in floating point with unit roundoff u has error ≈ C·u for a
C that depends on the point and the computation, not on u; evaluating the same three points
in float32 (u₃₂ = 2⁻²⁴) and float64 (u₆₄ = 2⁻⁵³) measures C·u₃₂ (plus the float32 rounding of
the inputs, which only makes the estimate larger). The float64 error is then estimated by

    bound = max(1e-12 · S, 1000 · 2⁻²⁹ · D, 2⁻⁹⁶⁰),
    S = |L(m)| + λ|L(a)| + (1−λ)|L(b)|,   D = the same combination of |L₃₂ − L₆₄|,

a safety factor of 1000 over the measured discrepancy, never below 1e-12 relative
(≈ 4500 units in the last place), and never below an absolute 2⁻⁹⁶⁰ ≈ 1e-289 (so subnormal
losses, where relative rounding means nothing, certify nothing). If float32 overflows or gives
NaN the discrepancy is unknown and the bound is infinite: nothing is certified. A witness
holds when gap > bound, with λ ∈ (0, 1) and finite points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..problem import Problem
from ..tolerances import WITNESS_FLOOR

__all__ = ["ChordWitness", "Verification", "chord_gap"]

SAFETY = 1000.0
RELATIVE_FLOOR = WITNESS_FLOOR
ABSOLUTE_FLOOR = 2.0**-960


@dataclass(frozen=True)
class Verification:
    """The float64 re-computation of a witness: ``holds`` iff ``gap > bound``; else ``reason`` says why not."""

    gap: float
    bound: float
    losses: tuple[float, float, float]
    holds: bool
    reason: str = ""


def chord_gap(problem: Problem, a: torch.Tensor, b: torch.Tensor, lam: float) -> Verification:
    """Evaluate the chord gap of ``problem`` (all groups free) in float64, with its rounding bound.

    Args:
        problem: any Problem; it is evaluated with every group free, in float64 and float32.
        a, b: full parameter vectors, shape (P,): tensors, arrays or lists, read in float64.
        lam: λ in (0, 1).
    """
    full64, full32 = problem.full().to(torch.float64), problem.full().to(torch.float32)
    device = full64.device  # re-checked on the problem's device, wherever a and b live
    # read in float64 from the start: torch.as_tensor would read a list of floats as float32
    a64 = torch.as_tensor(a, dtype=torch.float64, device=device).detach()
    b64 = torch.as_tensor(b, dtype=torch.float64, device=device).detach()
    if a64.shape != (full64.n_params,) or b64.shape != (full64.n_params,):
        return _refused(f"expected points of shape ({full64.n_params},)")
    if not (0.0 < lam < 1.0):
        return _refused(f"expected λ in (0, 1), got λ={lam!r}")
    if not (torch.isfinite(a64).all() and torch.isfinite(b64).all()):
        return _refused("expected finite points")
    mid = lam * a64 + (1 - lam) * b64
    with torch.no_grad():
        la, lb, lm = (float(full64.loss(t)) for t in (a64, b64, mid))
        da, db, dm = (abs(float(full32.loss(t.to(torch.float32))) - v) for t, v in ((a64, la), (b64, lb), (mid, lm)))
    gap = lm - lam * la - (1 - lam) * lb
    scale = abs(lm) + lam * abs(la) + (1 - lam) * abs(lb)
    discrepancy = dm + lam * da + (1 - lam) * db
    if not all(math.isfinite(v) for v in (la, lb, lm, discrepancy)):
        return Verification(gap, float("inf"), (la, lb, lm), False, "a loss or its float32 counterpart is not finite")
    bound = max(RELATIVE_FLOOR * scale, SAFETY * 2.0**-29 * discrepancy, ABSOLUTE_FLOOR)
    return Verification(gap, bound, (la, lb, lm), gap > bound, "" if gap > bound else "the gap does not exceed the rounding bound")


def _refused(reason: str) -> Verification:
    nan = float("nan")
    return Verification(nan, float("inf"), (nan, nan, nan), False, reason)


@dataclass(frozen=True)
class ChordWitness:
    """Two parameter points a, b and λ where the loss lies above its chord.

    Attributes:
        a, b: full parameter vectors (every group, fixed ones included), float64, shape (P,).
        lam: λ; the middle point is λa + (1 − λ)b.
        gap: L(λa + (1−λ)b) − λL(a) − (1−λ)L(b), computed in float64.
        bound: the rounding bound (see module docstring); gap > bound.
        losses: (L(a), L(b), L(middle)).
        groups: the analysed groups — a and b differ only in these.
        source: how the search found it.
    """

    a: torch.Tensor
    b: torch.Tensor
    lam: float
    gap: float
    bound: float
    losses: tuple[float, float, float]
    groups: tuple[str, ...]
    source: str

    def verify(self, problem: Problem) -> Verification:
        """Recompute the gap and bound in float64 from a, b, λ alone; ``.holds`` is the certificate.

        Also checks that the chord lies in ``problem``'s parameter space: a and b differ only in
        ``problem``'s free groups, and agree with its fixed groups (a restricted problem).
        """
        full = problem.full().to(torch.float64)
        a = torch.as_tensor(self.a, dtype=torch.float64, device=full.device)  # a list (from JSON) is read in float64
        b = torch.as_tensor(self.b, dtype=torch.float64, device=full.device)
        if a.shape == b.shape == (full.n_params,):
            pa, pb = full.unflatten(a), full.unflatten(b)
            moved = [g for g in full.groups if not torch.equal(pa[g], pb[g])]
            outside = [g for g in moved if g not in problem.groups]
            if outside:
                return _refused(f"a and b differ in groups {outside}, which this problem holds fixed")
            off = [g for g, v in problem.fixed.items() if not torch.equal(pa[g], v.to(device=full.device, dtype=torch.float64))]
            if off:
                return _refused(f"a and b are not at this problem's fixed values of groups {off}")
        return chord_gap(problem, a, b, self.lam)

    def params(self, problem: Problem) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """a and b as parameter dicts of ``problem``'s model."""
        full = problem.full().to(torch.float64)
        return full.unflatten(self.a.to(full.device)), full.unflatten(self.b.to(full.device))

    def to_dict(self) -> dict:
        """JSON-ready: the points as lists of floats (exact float64 round-trip via repr)."""
        return {
            "a": self.a.tolist(),
            "b": self.b.tolist(),
            "lam": self.lam,
            "gap": self.gap,
            "bound": self.bound,
            "losses": {"a": self.losses[0], "b": self.losses[1], "middle": self.losses[2]},
            "groups": list(self.groups),
            "source": self.source,
        }
