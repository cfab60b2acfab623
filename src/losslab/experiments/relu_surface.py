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

from .._checks import LosslabError, finite_float, positive_int
from ..convexity import ChordWitness, check_convexity
from ..landscape import evaluate_points, plane
from ..models import MLP
from ..problem import Problem
from ._legacy import Outcome, Table, claim, legacy_experiment, plotly_figure, png_figure
from ._nonconvex import contour, surface, witness_claim

__all__ = ["EXPERIMENT", "QUICK", "Settings", "largest_grid_chord", "run"]

F64 = torch.float64
VALLEY_TOL = 1e-28  # (1e-14)²: the residual on the valley is zero to ~50 units in the last place of y ~ 1


@dataclass(frozen=True)
class Settings:
    """Settings of the relu-surface experiment.

    Attributes:
        x, y: the one training example (x ≠ 0, y > 0 so that the loss can reach 0).
        b0, b1: the fixed biases.
        w0, w1: the centre of the drawn window (and the analysis point of the witness search).
        span: half-width of the window in w₀ and w₁.
        steps: grid points per axis.
        budget: chords the witness search may evaluate.
    """

    x: float = 1.0
    y: float = 1.0
    b0: float = 0.0
    b1: float = 0.0
    w0: float = 1.0
    w1: float = 1.0
    span: float = 3.0
    steps: int = 61
    budget: int = 300

    def __post_init__(self) -> None:
        for name in ("x", "y", "b0", "b1", "w0", "w1"):
            finite_float(name, getattr(self, name))
        if self.x == 0:
            raise LosslabError("expected x != 0 (with x = 0 the loss does not depend on w0), got x=0")
        if not self.y > 0:
            raise LosslabError(f"expected y > 0 (a relu output can fit it: the zero-loss valley exists), got y={self.y!r}")
        finite_float("span", self.span, positive=True)
        positive_int("steps", self.steps, minimum=5)
        if self.steps > 81:
            raise LosslabError(f"expected steps <= 81 (the surface is embedded in the report), got steps={self.steps}")
        positive_int("budget", self.budget, minimum=30)


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


def run(settings: Settings, seed: int, say) -> Outcome:
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
    engine_claim, engine = witness_claim("the loss is not convex in (w₀, w₁) (certified chord from the verdict engine)", report, problem)

    say(f"surface on a {s.steps}×{s.steps} grid")
    e0, e1 = torch.tensor([1.0, 0.0], dtype=F64), torch.tensor([0.0, 1.0], dtype=F64)
    surf = plane(problem, center, e0, e1, steps=s.steps, span=s.span, method="grid")
    top, ia, ib, _ = largest_grid_chord(surf.losses)
    a, b = surf.point(*ia), surf.point(*ib)
    check = chord_witness(problem, a, b).verify(problem)
    claims = [engine_claim, claim(
        "on the drawn surface a chord lies below the loss: the loss at the midpoint exceeds the average at the ends",
        check.holds and check.gap > check.bound,
        "a = (w₀, w₁) = ({a0:.2f}, {a1:.2f}), b = ({b0:.2f}, {b1:.2f}): L(a) = {la:.3g}, L(b) = {lb:.3g}, L((a+b)/2) = {lm:.4g}; "
        "float64 gap {gap:.4g} > rounding bound {bound:.1e} (the grid chord with the largest relative gap, {rel:.3g})",
        rel=top, a0=float(a[0]), a1=float(a[1]), b0=float(b[0]), b1=float(b[1]), la=check.losses[0], lb=check.losses[1],
        lm=check.losses[2], gap=check.gap, bound=check.bound,
    )]

    say("flat regions and the zero-loss valley")
    points = surf.points().reshape(-1, 2)
    grads = torch.func.vmap(problem.grad)(points)
    h = points[:, 0] * s.x + s.b0
    dead = (h <= 0) | (points[:, 1] * torch.relu(h) + s.b1 <= 0)
    flat_values = torch.where(h <= 0, (max(s.b1, 0.0) - s.y) ** 2, s.y**2)
    dead_grad = float(grads[dead].abs().max()) if bool(dead.any()) else float("nan")
    dead_value_err = float((surf.losses.reshape(-1)[dead] - flat_values[dead]).abs().max()) if bool(dead.any()) else float("nan")
    claims.append(claim(
        "where a relu is dead the surface is flat: zero gradient and constant loss",
        bool(dead.any()) and dead_grad == 0.0 and dead_value_err == 0.0,
        "{dead} of {total} grid points ({share:.0%}) have a dead relu (w₀x + b₀ ≤ 0 or w₁·relu(·) + b₁ ≤ 0); there max |∇L| = {g:g} "
        "and |L − (relu(b₁) − y)² or y²| ≤ {v:g}, exactly",
        dead=int(dead.sum()), total=len(points), share=float(dead.double().mean()), g=dead_grad, v=dead_value_err,
    ))

    valley = valley_points(s, count=101)
    valley_losses = evaluate_points(problem, valley) if len(valley) else torch.zeros(0, dtype=F64)
    valley_max = float(valley_losses.max()) if len(valley) else float("nan")
    ends = chord_witness(problem, valley[0], valley[-1]).verify(problem) if len(valley) >= 2 else None
    claims.append(claim(
        "the loss is zero along the curve w₁·relu(w₀x + b₀) + b₁ = y — a curve, not a convex set of minimisers",
        len(valley) >= 2 and valley_max <= VALLEY_TOL and ends.holds,
        "max L at {count} points of the curve in the window = {vmax:.1e} ≤ 1e-28; the midpoint of its two ends has "
        "L = {mid:.4g} > 0 (gap > bound {bound:.1e})",
        count=len(valley), vmax=valley_max, mid=ends.losses[2] if ends else float("nan"), bound=ends.bound if ends else float("nan"),
    ))

    figures = _figures(surf, problem, (a, b, check), valley, s)
    rows = [("largest relative gap on the grid", _rounded(a), _rounded(b), 0.5, *check.losses, check.gap, check.bound)]
    if report.witness is not None:
        wa, wb = (problem.flatten(p) for p in report.witness.params(full))
        rows.append((f"verdict engine ({engine['source']})", _rounded(wa), _rounded(wb), engine["lam"], *engine["losses"],
                     engine["gap"], engine["bound"]))
    table = Table(
        "The two certified chords (λ = 1/2 for the grid's; the engine's λ as found), in (w₀, w₁)",
        ("chord", "a", "b", "λ", "L(a)", "L(b)", "L(middle)", "gap", "rounding bound"), tuple(rows),
    )
    numbers = {
        "engine_witness": engine,
        "grid_witness": {"a": a.tolist(), "b": b.tolist(), "lam": 0.5, "gap": check.gap, "bound": check.bound,
                         "losses": list(check.losses), "relative_gap": top},
        "dead_points": int(dead.sum()), "grid_points": len(points), "dead_max_grad": dead_grad,
        "valley_points": len(valley), "valley_max_loss": valley_max,
        "loss_range": [float(surf.losses.min()), float(surf.losses.max())],
    }
    return Outcome(numbers=numbers, claims=tuple(claims), figures=figures, tables=(table,))


def _rounded(theta: torch.Tensor) -> list[float]:
    return [round(float(v), 4) for v in theta]


def chord_witness(problem: Problem, a: torch.Tensor, b: torch.Tensor, lam: float = 0.5) -> ChordWitness:
    """A :class:`ChordWitness` for the chord a–b of the restricted ``problem`` (θ = (w₀, w₁)), to ``verify``."""
    A, B = problem.embed(a).to(F64), problem.embed(b).to(F64)
    nan = float("nan")
    return ChordWitness(A, B, lam, nan, nan, (nan, nan, nan), problem.groups, "a grid of the surface")


def valley_points(s: Settings, count: int) -> torch.Tensor:
    """Points (w₀, w₁) of the zero-loss curve w₁ = (y − b₁)/(w₀x + b₀) inside the window, shape (k, 2), k ≤ count."""
    w0 = torch.linspace(s.w0 - s.span, s.w0 + s.span, count, dtype=F64)
    h = w0 * s.x + s.b0
    w1 = (s.y - s.b1) / h
    keep = (h > 0) & ((w1 - s.w1).abs() <= s.span)
    return torch.stack([w0[keep], w1[keep]], dim=1)


def _figures(surf, problem, grid_chord, valley, s: Settings):
    import plotly.graph_objects as go

    from ..report.figures import subplots


    a, b, check = grid_chord
    origin = (s.w0, s.w1)
    fig, ax = subplots(figsize=(6, 4.4))
    cap = float(max(4 * check.losses[2], 4 * s.y**2))
    contour(ax, surf, title="relu(w₁·relu(w₀x + b₀) + b₁): squared loss of one sample", labels=("w₀", "w₁"), origin=origin,
            log=False, cap=cap)
    if len(valley):
        ax.plot(valley[:, 0], valley[:, 1], color="white", lw=1.2, ls="--", label="zero-loss valley")
    ax.plot([float(a[0]), float(b[0])], [float(a[1]), float(b[1])], "o-", color="orange", lw=2, ms=5, label="certified chord")
    mid = 0.5 * (a + b)
    ax.plot([float(mid[0])], [float(mid[1])], "s", color="red", ms=6, label=f"midpoint: L = {check.losses[2]:.3g}")
    ax.legend(loc="lower left", fontsize=7, framealpha=0.85)
    ax.title.set_fontsize(10)
    png = png_figure(
        fig, "contour",
        f"The loss over (w₀, w₁) with b₀, b₁ fixed (colours capped at {cap:.3g}). The flat regions (w₀x + b₀ ≤ 0, or "
        "w₁·relu(·) + b₁ ≤ 0) are where a relu is dead: the gradient is exactly zero and training cannot move. The dashed "
        "white curve is the zero-loss valley. Both ends of the orange chord lie on or near the valley (loss ≈ 0), its midpoint "
        "(red square) above it: the chord is below the loss, which a convex function never allows.",
    )
    t = torch.linspace(0, 1, 41, dtype=F64)
    path = a[None] + t[:, None] * (b - a)[None]
    path_losses = evaluate_points(problem, path).numpy()
    traces = [
        go.Scatter3d(x=path[:, 0].numpy(), y=path[:, 1].numpy(), z=np.minimum(path_losses, cap), mode="lines",
                     line={"color": "red", "width": 6}, name="loss along the chord"),
        go.Scatter3d(x=[float(a[0]), float(b[0])], y=[float(a[1]), float(b[1])], z=[check.losses[0], check.losses[1]], mode="lines+markers",
                     line={"color": "orange", "width": 6}, marker={"size": 4}, name="the chord (straight line)"),
    ]
    fig3d = surface(surf, title="squared loss of relu(w₁·relu(w₀x + b₀) + b₁)", labels=("w₀", "w₁"), origin=origin, extra=traces, cap=cap)
    html = plotly_figure(
        fig3d, "surface-3d",
        f"The same surface in 3-D (losses above {cap:.3g} drawn at {cap:.3g}). Drag to rotate: the flat plateaus of dead relus, "
        "the curved zero-loss valley, and the orange chord between two valley points passing under the red path of the loss.",
    )
    return (png, html)


EXPERIMENT = legacy_experiment(
    name="relu-surface",
    number=10,
    title="The surface of relu(w₁·relu(w₀x + b₀) + b₁)",
    intro=(
        "The smallest network of the argument — one hidden relu unit and a relu output, fitted to a single example — already "
        "has a non-convex loss. Its surface over the two weights has flat plateaus where a relu is dead (zero gradient) and a "
        "curved valley of exact fits. A convex function's minimisers form a convex set; a curved valley is not one, and a "
        "chord between two of its points passes below the loss."
    ),
    settings=Settings,
    quick=QUICK,
    run=run,
)
