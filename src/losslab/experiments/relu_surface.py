"""Experiment 10: the surface of relu(w₁·relu(w₀·x + b₀) + b₁) on one sample, and a chord below it.

The seed's smallest network: one input x, one hidden relu unit, a relu output, and the squared loss of
one example (x, y) (``examples.py``: "seed-relu"),

    L(w₀, w₁) = (relu(w₁·relu(w₀x + b₀) + b₁) − y)²,   b₀, b₁ fixed.

Its surface over (w₀, w₁) has three kinds of region:

* *flat* where a relu is dead — h = w₀x + b₀ ≤ 0, or w₁·relu(h) + b₁ ≤ 0: the output no longer depends
  on (w₀, w₁), the gradient is exactly 0 and L is constant ((relu(b₁) − y)², or y²);
* a *zero-loss valley* along the curve w₁·relu(w₀x + b₀) + b₁ = y (for y > 0): a hyperbola branch
  w₁ = (y − b₁)/(w₀x + b₀), where the model fits the sample exactly;
* the quartic walls (w₁h + b₁ − y)² away from it.

The valley alone rules convexity out: the minimisers of a convex function form a convex set, and the
midpoint of two points of a hyperbola is not on it. Checked here with certified chords — one found by
``check_convexity`` restricted to (w₀, w₁), one found on the drawn grid (the largest relative gap
(L(m) − (L(a) + L(b))/2) / (L(m) + (L(a) + L(b))/2) over grid pairs whose midpoint m is a grid point, ties
broken by the absolute gap) and certified through the witness API (``ChordWitness.verify``, float64 with a
rounding bound).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..convexity import ChordWitness, check_convexity
from ..landscape import evaluate_points, plane
from ..models import MLP
from ..problem import Problem
from ._nonconvex import SliceGrid, slice_grid, witness_claim, witness_numbers
from .base import Claim, Measured, claim
from .settings import Integer, Real, Rule, Settings, setting
from .story import from_argument

__all__ = ["EXPERIMENT", "QUICK", "ReluSurfaceMeasured", "ReluSurfaceSettings", "chord_witness", "claims", "largest_grid_chord",
           "measure", "valley_points"]


F64 = torch.float64
VALLEY_TOL = 1e-28  # (1e-14)²: the residual on the valley is zero to ~50 units in the last place of y ~ 1


@dataclass(frozen=True)
class ReluSurfaceSettings(Settings):
    """Settings of the relu-surface experiment (defaults: the full run)."""

    x: float = setting(1.0, Real(), "the training example's input (not 0)")
    y: float = setting(1.0, Real(0, low_open=True), "the training example's target (> 0: a relu output can fit it)")
    b0: float = setting(0.0, Real(), "the fixed hidden bias")
    b1: float = setting(0.0, Real(), "the fixed output bias")
    w0: float = setting(1.0, Real(), "the window's centre in w₀ (and the analysis point of the witness search)")
    w1: float = setting(1.0, Real(), "the window's centre in w₁")
    span: float = setting(3.0, Real(0, low_open=True), "half-width of the window in w₀ and w₁")
    steps: int = setting(61, Integer(5, 81), "grid points per axis (the surface is embedded in the report)")
    budget: int = setting(300, Integer(30), "chords the witness search may evaluate")

    RULES = (Rule(lambda s: s.x != 0, "x != 0 (with x = 0 the loss does not depend on w0)", ("x",), {"x": 0.0}),)


QUICK = {"steps": 41, "budget": 100}


def _grid_chords(L: np.ndarray):
    """Every grid chord a = m + δ, b = m − δ (δ ≠ 0 up to sign): yields (δ, (i0, j0), L[m], (L[a] + L[b])/2) arrays per δ."""
    s = L.shape[0]
    for di in range(0, s // 2 + 1):
        for dj in range(-(s // 2), s // 2 + 1):
            if di == 0 and dj <= 0:
                continue  # δ and −δ give the same chord
            i0, i1, j0, j1 = di, s - di, abs(dj), s - abs(dj)  # the midpoints m with m ± δ on the grid
            if i0 >= i1 or j0 >= j1:
                continue
            ends = 0.5 * (L[i0 + di : i1 + di, j0 + dj : j1 + dj] + L[i0 - di : i1 - di, j0 - dj : j1 - dj])
            yield (di, dj), (i0, j0), L[i0:i1, j0:j1], ends


def largest_grid_chord(losses: torch.Tensor, *, ties: float = 1e-9) -> tuple[float, tuple[int, int], tuple[int, int], tuple[int, int]]:
    """The grid chord most clearly below the loss: (relative gap, a, b, m), points as (i, j) indices.

    Over all pairs a = m + δ, b = m − δ of grid points whose midpoint m is a grid point (λ = 1/2),
    the relative gap (L[m] − (L[a] + L[b])/2) / (L[m] + (L[a] + L[b])/2) — the verdict engine's
    measure, at most 1 (reached when L[a] = L[b] = 0 < L[m]). Among chords within ``ties`` of the
    largest relative gap, the one with the largest absolute gap. losses: (s, s), non-negative.

    Example:
        >>> L = torch.zeros(3, 3, dtype=torch.float64)
        >>> L[1, 1] = 1.0  # a bump in the middle of a flat, zero grid
        >>> largest_grid_chord(L)
        (1.0, (1, 2), (1, 0), (1, 1))
    """
    L = losses.to(F64).numpy()
    chords = [(d, o, mid, ends) for d, o, mid, ends in _grid_chords(L)]

    def rel(mid, ends):
        return np.where(mid + ends > 0, (mid - ends) / np.where(mid + ends > 0, mid + ends, 1.0), -np.inf)

    top = max(float(rel(mid, ends).max()) for _, _, mid, ends in chords)
    best = (-np.inf, None)
    for (di, dj), (i0, j0), mid, ends in chords:
        gap = np.where(rel(mid, ends) >= top - ties, mid - ends, -np.inf)
        k = int(np.argmax(gap))
        if gap.flat[k] > best[0]:
            mi, mj = divmod(k, gap.shape[1])
            best = (float(gap.flat[k]), (i0 + mi, j0 + mj, di, dj))
    mi, mj, di, dj = best[1]
    return top, (mi + di, mj + dj), (mi - di, mj - dj), (mi, mj)


@dataclass(frozen=True)
class ReluSurfaceMeasured(Measured):
    """What the relu-surface experiment measured: two certified chords, the dead regions, the valley, and the surface."""

    y: float
    centre: tuple[float, float]  # (w₀, w₁) at the window's centre: the surface's α, β are offsets from it
    engine_witness: dict  # the verdict engine's certified chord (witness_numbers; a, b in every parameter w₀, b₀, w₁, b₁)
    engine_endpoints: list  # its a and b in (w₀, w₁) (empty without a witness)
    grid_witness: dict  # the grid chord with the largest relative gap, re-verified: a, b, lam, gap, bound, losses, holds
    dead_points: int  # grid points where a relu is dead
    grid_points: int
    dead_max_grad: float  # max |∇L| there (NaN when there are none)
    dead_max_value_error: float  # max |L − its constant value| there
    valley_points: int  # points of the zero-loss curve in the window
    valley_max_loss: float
    valley_ends: dict  # the chord between the curve's two ends, re-verified: holds, losses, gap, bound
    loss_range: list[float]
    surface: SliceGrid  # the surface as drawn (offsets from the centre)
    valley: torch.Tensor  # the zero-loss curve's points (w₀, w₁), shape (valley_points, 2)
    chord_path: torch.Tensor  # 41 points (w₀, w₁) from the grid chord's a to b, and the loss there
    chord_path_losses: torch.Tensor


def _verified(problem: Problem, a: torch.Tensor, b: torch.Tensor) -> dict:
    """The chord a–b (λ = 1/2) re-verified in float64: holds, losses (L(a), L(b), L(middle)), gap, bound."""
    check = chord_witness(problem, a, b).verify(problem)
    return {"holds": bool(check.holds), "losses": list(check.losses), "gap": check.gap, "bound": check.bound}


def _dead_regions(problem: Problem, surf, s: ReluSurfaceSettings) -> dict:
    """Grid points with a dead relu, the largest gradient there and the largest distance from the flat value."""
    points = surf.points().reshape(-1, 2)
    grads = torch.func.vmap(problem.grad)(points)
    h = points[:, 0] * s.x + s.b0
    dead = (h <= 0) | (points[:, 1] * torch.relu(h) + s.b1 <= 0)
    flat_values = torch.where(h <= 0, (max(s.b1, 0.0) - s.y) ** 2, s.y**2)
    any_dead = bool(dead.any())
    return {"dead_points": int(dead.sum()), "grid_points": len(points),
            "dead_max_grad": float(grads[dead].abs().max()) if any_dead else float("nan"),
            "dead_max_value_error": float((surf.losses.reshape(-1)[dead] - flat_values[dead]).abs().max()) if any_dead else float("nan")}


def measure(settings: ReluSurfaceSettings, seed: int, say) -> ReluSurfaceMeasured:
    """Draw the (w₀, w₁) surface, certify a chord below it, and measure its flat regions and valley."""
    s = settings
    model = MLP([1, 1, 1], "relu", out_activation="relu")
    full = Problem(model, torch.tensor([[s.x]], dtype=F64), torch.tensor([s.y], dtype=F64))
    at = {"W0": torch.tensor([[s.w0]], dtype=F64), "b0": torch.tensor([s.b0], dtype=F64),
          "W1": torch.tensor([[s.w1]], dtype=F64), "b1": torch.tensor([s.b1], dtype=F64)}
    problem = full.restrict(["W0", "W1"], at=at)  # θ = (w₀, w₁)
    center = problem.flatten(at)

    say("witness search in (w0, w1)")
    report = check_convexity(full, groups=["W0", "W1"], at=at, seed=seed, budget=s.budget, train_steps=0, by_group=False)
    engine = witness_numbers(report, problem)

    say(f"surface on a {s.steps}×{s.steps} grid")
    e0, e1 = torch.tensor([1.0, 0.0], dtype=F64), torch.tensor([0.0, 1.0], dtype=F64)
    surf = plane(problem, center, e0, e1, steps=s.steps, span=s.span, method="grid")
    top, ia, ib, _ = largest_grid_chord(surf.losses)
    a, b = surf.point(*ia), surf.point(*ib)
    grid = {"a": a.tolist(), "b": b.tolist(), "lam": 0.5} | _verified(problem, a, b) | {"relative_gap": top}

    say("flat regions and the zero-loss valley")
    dead = _dead_regions(problem, surf, s)
    valley = valley_points(s, count=101)
    valley_losses = evaluate_points(problem, valley) if len(valley) else torch.zeros(0, dtype=F64)
    nan = float("nan")
    ends = _verified(problem, valley[0], valley[-1]) if len(valley) >= 2 else {"holds": False, "losses": [nan] * 3, "gap": nan,
                                                                                "bound": nan}
    path = a[None] + torch.linspace(0, 1, 41, dtype=F64)[:, None] * (b - a)[None]
    endpoints = [problem.flatten(p).tolist() for p in report.witness.params(full)] if report.witness is not None else []
    return ReluSurfaceMeasured(
        y=s.y, centre=(s.w0, s.w1), engine_witness=engine, engine_endpoints=endpoints, grid_witness=grid, **dead,
        valley_points=len(valley), valley_max_loss=float(valley_losses.max()) if len(valley) else nan, valley_ends=ends,
        loss_range=[float(surf.losses.min()), float(surf.losses.max())], surface=slice_grid(surf), valley=valley,
        chord_path=path, chord_path_losses=evaluate_points(problem, path),
    )


def claims(settings: ReluSurfaceSettings, m: ReluSurfaceMeasured) -> tuple[Claim, ...]:
    """Two certified chords below the loss (the engine's, the grid's); flat dead regions; a curved zero-loss valley."""
    g, ends = m.grid_witness, m.valley_ends
    (a0, a1), (b0, b1) = g["a"], g["b"]
    return (
        witness_claim("engine-chord", "the loss is not convex in (w₀, w₁) (certified chord from the verdict engine)", m.engine_witness),
        claim("grid-chord", "on the drawn surface a chord lies below the loss: the loss at the midpoint exceeds the average at the ends",
              g["holds"] and g["gap"] > g["bound"],
              "a = (w₀, w₁) = ({a0:.2f}, {a1:.2f}), b = ({b0:.2f}, {b1:.2f}): L(a) = {la:.3g}, L(b) = {lb:.3g}, L((a+b)/2) = {lm:.4g}; "
              "float64 gap {gap:.4g} > rounding bound {bound:.1e} (the grid chord with the largest relative gap, {rel:.3g})",
              plain="The loss halfway between a and b is higher than the average of the losses at a and b, by far more than "
                    "rounding errors could explain — which a convex function never allows.",
              rel=g["relative_gap"], a0=a0, a1=a1, b0=b0, b1=b1, la=g["losses"][0], lb=g["losses"][1], lm=g["losses"][2],
              gap=g["gap"], bound=g["bound"]),
        claim("dead-relu-flat", "where a relu is dead the surface is flat: zero gradient and constant loss",
              m.dead_points > 0 and m.dead_max_grad == 0.0 and m.dead_max_value_error == 0.0,
              "{dead} of {total} grid points ({share:.0%}) have a dead relu (w₀x + b₀ ≤ 0 or w₁·relu(·) + b₁ ≤ 0); there max |∇L| = {g:g} "
              "and |L − (relu(b₁) − y)² or y²| ≤ {v:g}, exactly",
              dead=m.dead_points, total=m.grid_points, share=m.dead_points / m.grid_points, g=m.dead_max_grad, v=m.dead_max_value_error),
        claim("zero-loss-curve",
              "the loss is zero along the curve w₁·relu(w₀x + b₀) + b₁ = y — a curve, not a convex set of minimisers",
              m.valley_points >= 2 and m.valley_max_loss <= VALLEY_TOL and ends["holds"],
              "max L at {count} points of the curve in the window = {vmax:.1e} ≤ 1e-28; the midpoint of its two ends has "
              "L = {mid:.4g} > 0 (gap > bound {bound:.1e})",
              count=m.valley_points, vmax=m.valley_max_loss, mid=ends["losses"][2], bound=ends["bound"]),
    )


def chord_witness(problem: Problem, a: torch.Tensor, b: torch.Tensor, lam: float = 0.5) -> ChordWitness:
    """A :class:`ChordWitness` for the chord a–b of the restricted ``problem`` (θ = (w₀, w₁)), to ``verify``."""
    A, B = problem.embed(a).to(F64), problem.embed(b).to(F64)
    nan = float("nan")
    return ChordWitness(A, B, lam, nan, nan, (nan, nan, nan), problem.groups, "a grid of the surface")


def valley_points(s: ReluSurfaceSettings, count: int) -> torch.Tensor:
    """Points (w₀, w₁) of the zero-loss curve w₁ = (y − b₁)/(w₀x + b₀) inside the window, shape (k, 2), k ≤ count."""
    w0 = torch.linspace(s.w0 - s.span, s.w0 + s.span, count, dtype=F64)
    h = w0 * s.x + s.b0
    w1 = (s.y - s.b1) / h
    keep = (h > 0) & ((w1 - s.w1).abs() <= s.span)
    return torch.stack([w0[keep], w1[keep]], dim=1)


EXPERIMENT = from_argument("relu-surface", settings=ReluSurfaceSettings, quick=QUICK, measure=measure, claims=claims)
