"""Jensen witnesses: batched search for chords that lie below the loss.

For pairs (a, b) and λ, the gap L(λa + (1−λ)b) − λL(a) − (1−λ)L(b) is positive somewhere iff
L is not convex. Many pairs are evaluated at once through ``Problem.loss_batch`` (L(a), L(b)
once per pair, the middle points once per λ); the most violated chords are then re-checked
in float64 against a rounding bound (:mod:`losslab.convexity.witness`).

Pair families:

* random pairs around a centre c at scale s: a, b = c + s·r·g₁, c + s·r·g₂, g ~ N(0, I),
  r = max(RMS(c), 1) — wide chords catch saturation and sign changes;
* symmetric pairs: a, b = c ± s·r·g — the second difference along g at c, which catches
  negative curvature (saddles) near c.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch

from ..memory import chord_bytes, require
from ..problem import Problem
from ..tolerances import tolerances
from .witness import ChordWitness, chord_gap

__all__ = ["LAMBDAS", "SCALES", "ChordSearch", "random_pairs", "symmetric_pairs"]

SCALES = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
LAMBDAS = (0.25, 0.5, 0.75)


def _radius(center: torch.Tensor) -> float:
    return max(float(center.pow(2).mean().sqrt()), 1.0)


def _normal(shape: tuple[int, ...], generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """N(0, 1) draws in float64 from ``generator`` (on its own device, the CPU for the search's), then
    cast and moved to ``like``'s dtype and device: the same numbers on every device."""
    g = torch.randn(shape, generator=generator, dtype=torch.float64, device=generator.device)
    return g.to(device=like.device, dtype=like.dtype)


def random_pairs(center: torch.Tensor, scales: tuple[float, ...], per_scale: int, generator: torch.Generator):
    """Pairs c + s·r·g₁, c + s·r·g₂ for each scale s: two tensors of shape (len(scales)·per_scale, p)."""
    r, p = _radius(center), center.numel()
    s = torch.tensor(scales, dtype=center.dtype, device=center.device).repeat_interleave(per_scale)[:, None] * r
    g = _normal((2, len(s), p), generator, center)
    return center + s * g[0], center + s * g[1]


def symmetric_pairs(center: torch.Tensor, scales: tuple[float, ...], per_scale: int, generator: torch.Generator):
    """Pairs c ± s·r·g for each scale s: two tensors of shape (len(scales)·per_scale, p)."""
    r, p = _radius(center), center.numel()
    s = torch.tensor(scales, dtype=center.dtype, device=center.device).repeat_interleave(per_scale)[:, None] * r
    g = _normal((len(s), p), generator, center)
    return center + s * g, center - s * g


@dataclass
class ChordSearch:
    """Evaluates batches of chords of a (float64) problem, counts them, keeps the best violation.

    ``budget`` caps the number of chords (pairs × λ values) evaluated in all. The middle points are
    built one λ at a time; :meth:`check_memory` refuses, before they are drawn, pairs whose draws,
    endpoints and middle points exceed the problem's ``memory_budget``.
    """

    problem: Problem
    budget: int
    tried: int = 0
    by_strategy: Counter = field(default_factory=Counter)
    best_relative_gap: float = float("-inf")
    best_source: str = ""
    nonfinite: int = 0  # chords with a NaN/inf loss at an end or the midpoint: not evidence either way
    lambdas: set = field(default_factory=set)  # every λ of a chord evaluated

    @property
    def remaining(self) -> int:
        return max(self.budget - self.tried, 0)

    def check_memory(self, pairs: int) -> None:
        """Raise a MemoryBudgetError, before anything is drawn, if ``pairs`` chords do not fit the memory budget."""
        p, itemsize = self.problem.n_params, torch.finfo(self.problem.dtype).bits // 8
        require(chord_bytes(pairs, p, itemsize), self.problem.memory_budget, f"{pairs} chord(s) of p = {p:,} parameters",
                "budget (fewer chords per scale)")

    def evaluate(
        self, A: torch.Tensor, B: torch.Tensor, strategy: str, where: str, lams: tuple[float, ...] = LAMBDAS
    ) -> ChordWitness | None:
        """Try the chords (A[k], B[k], λ) for every λ; return a float64-verified witness or None."""
        keep = min(len(A), self.remaining // len(lams))
        if keep == 0:
            return None
        A, B = A[:keep], B[:keep]
        self.lambdas.update(lams)
        la, lb = self.problem.loss_batch(A), self.problem.loss_batch(B)
        self.check_memory(keep)
        lam = torch.tensor(lams, dtype=A.dtype, device=A.device)
        lm = torch.stack([self.problem.loss_batch(lam[i] * A + (1 - lam[i]) * B) for i in range(len(lams))])  # one λ's (K, p) at a time
        gap = lm - lam[:, None] * la - (1 - lam)[:, None] * lb
        scale = lm.abs() + lam[:, None] * la.abs() + (1 - lam)[:, None] * lb.abs()
        rel = torch.nan_to_num(gap / scale.clamp_min(torch.finfo(A.dtype).tiny), nan=float("-inf"), posinf=float("-inf"))
        self.nonfinite += int((~(torch.isfinite(lm) & torch.isfinite(la) & torch.isfinite(lb))).sum())
        self.tried += keep * len(lams)
        self.by_strategy[strategy] += keep * len(lams)
        best, source = float(rel.max()), f"{strategy} {where}".rstrip()  # no trailing space without a place
        if best > self.best_relative_gap:
            self.best_relative_gap, self.best_source = best, source
        flat = rel.reshape(-1)
        screen = tolerances(A.dtype).chord_screen  # re-check in float64 above this relative gap
        for idx in flat.argsort(descending=True)[:4].tolist():
            if flat[idx] <= screen:
                break
            i, k = divmod(idx, keep)
            witness = self.certify(A[k], B[k], lams[i], source)
            if witness is not None:
                return witness
        return None

    def certify(self, a: torch.Tensor, b: torch.Tensor, lam: float, source: str) -> ChordWitness | None:
        """Re-check one chord in float64 with every group free; a ChordWitness if it holds."""
        a_full, b_full = self.problem.embed(a).to(torch.float64), self.problem.embed(b).to(torch.float64)
        check = chord_gap(self.problem, a_full, b_full, lam)
        if not check.holds:
            return None
        return ChordWitness(a_full, b_full, lam, check.gap, check.bound, check.losses, self.problem.groups, source)
