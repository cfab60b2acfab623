"""Experiment 11: a sigmoid MLP ŷ = W₂·σ(W₁x + b₁) + b₂ — backprop by hand, and its critical points.

The model is ``MLP([1, h, 1], "sigmoid")`` (groups W0, b0, W1, b1 play W₁, b₁, W₂, b₂; ``TwoLayer(1, h,
"sigmoid", out_bias=True)`` is the same function). losslab's squared loss is the mean
L = (1/n) Σ_i (ŷ_i − y_i)² (no ½), plus l2·‖θ‖². Backpropagation (Rumelhart, Hinton & Williams 1986),
for the batch X (n, d), Z₁ = XW₁ᵀ + b₁ (n, h), A₁ = σ(Z₁), ŷ = A₁W₂ᵀ + b₂ (n,):

    δ₂ = ∂L/∂ŷ = (2/n)(ŷ − y)                     (n,)
    ∂L/∂W₂ = δ₂ᵀA₁,   ∂L/∂b₂ = Σ_i δ₂,i            (1, h), (1,)
    δ₁ = (δ₂ W₂) ⊙ σ(Z₁)(1 − σ(Z₁))                (n, h)   [σ' = σ(1 − σ)]
    ∂L/∂W₁ = δ₁ᵀX,    ∂L/∂b₁ = Σ_i δ₁,i            (h, d), (h,)

each plus 2·l2·(the parameter). These are checked against autograd (``Problem.grad``) in float64.

Critical points. The data is a 1-D "XOR": y = 1 where |x| > 1, else 0, on a grid of [−2, 2] — it needs
both hidden units of a width-2 net, one per threshold. A small weight decay makes the loss coercive,
so every run of gradient descent converges to a *finite* critical point instead of drifting along a
sigmoid-saturation plateau to infinity. Runs start from the model's random initialisation and, in
addition, from *tied* starts where all hidden units are equal: gradient descent keeps them equal (the
tied subspace is invariant, both units receiving the same gradient), so these runs converge to a
critical point of the width-1 network embedded in the wider one (Fukumizu & Amari 2000, "Local
minima and plateaus in hierarchical structures of multilayer perceptrons"), which is typically a
saddle of the full loss. After GD, Newton's method finishes each run that is near a critical point
(:func:`._minima.newton_polish`: it converges to saddles as readily as to minima), a damped Newton
descent (Levenberg–Marquardt, :func:`._minima.damped_newton`) takes the runs still on a plateau to the
minimum below them, and :func:`~losslab.curvature.classify` decides from the gradient norm and the
Hessian's extreme eigenvalues (with Lanczos residual bounds) whether each end point is a minimum, a
saddle, degenerate, or not critical. Local minima of different heights, and saddles, are what a convex
loss cannot have.

A symmetry worth knowing: σ(z) = 1 − σ(−z), so a hidden unit can be reflected, (w, b, v, c) →
(−w, −b, −v, c + v), without changing the network's output. Weight decay charges the reflected copies
differently, so with l2 > 0 they are distinct minima at different heights computing nearly the same
function; the constant fit (W₁ ≈ 0, ŷ ≈ ȳ) is a genuinely different and worse minimum.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import torch

from .._checks import finite_float, positive_int
from ..curvature import classify
from ..fit.ensemble import train_ensemble
from ..models import MLP
from ..problem import Problem
from ..random_streams import child_seed
from ._legacy import Outcome, Table, claim, legacy_experiment, png_figure
from ._minima import cluster_values, damped_newton, newton_polish

__all__ = ["EXPERIMENT", "QUICK", "Settings", "backprop", "run", "well_data"]

GRAD_RTOL = 1e-12  # backprop vs autograd: ~4500 ulps of float64, far above the rounding of a few sums of n terms
VALUE_RTOL = 1e-6  # critical values closer than this are one value (their location error is ~‖∇L‖²/λ ≈ 1e-13)
CRITICAL = ("minimum", "saddle", "maximum", "degenerate")


@dataclass(frozen=True)
class Settings:
    """Settings of the sigmoid-MLP experiment.

    Attributes:
        n: grid points on [−2, 2] of the 1-D XOR data y = 1[|x| > 1].
        width: hidden units h.
        l2: weight decay (> 0 keeps every critical point finite).
        starts: random starts (``MLP.init`` with seeds ``child_seed(seed, "restarts", k)``; the tied starts
            continue the numbering, :mod:`losslab.random_streams`).
        tied_starts: starts with all hidden units tied (equal), which GD keeps tied.
        steps: full-batch GD steps.
        lr: GD learning rate.
        newton_steps: Newton iterations after GD.
        newton_radius: longest Newton step taken (‖Δθ‖₂); longer ones mean "not near a critical point yet".
        descent_steps: damped-Newton (Levenberg–Marquardt) iterations for the runs Newton did not finish.
        grad_tol: a point with ‖∇L‖₂ ≤ grad_tol counts as critical.
    """

    n: int = 24
    width: int = 2
    l2: float = 1e-3
    starts: int = 40
    tied_starts: int = 12
    steps: int = 3000
    lr: float = 0.5
    newton_steps: int = 10
    newton_radius: float = 0.3
    descent_steps: int = 30
    grad_tol: float = 1e-8

    def __post_init__(self) -> None:
        positive_int("n", self.n, minimum=4)
        positive_int("width", self.width, minimum=2)
        finite_float("l2", self.l2, positive=True)
        positive_int("starts", self.starts, minimum=2)
        positive_int("tied_starts", self.tied_starts, minimum=0)
        positive_int("steps", self.steps)
        finite_float("lr", self.lr, positive=True)
        positive_int("newton_steps", self.newton_steps, minimum=0)
        finite_float("newton_radius", self.newton_radius, positive=True)
        positive_int("descent_steps", self.descent_steps, minimum=0)
        finite_float("grad_tol", self.grad_tol, positive=True)


QUICK = {"starts": 16, "tied_starts": 6, "steps": 2000}


def well_data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The 1-D XOR: x on a grid of n points in [−2, 2], y = 1 where |x| > 1, else 0; shapes (n, 1), (n,)."""
    x = torch.linspace(-2.0, 2.0, n, dtype=torch.float64)
    return x[:, None], (x.abs() > 1).to(torch.float64)


def backprop(params: dict[str, torch.Tensor], X: torch.Tensor, y: torch.Tensor, l2: float = 0.0) -> dict[str, torch.Tensor]:
    """∇L of L = (1/n)‖ŷ − y‖² + l2·‖θ‖² for ŷ = W₁·σ(W₀x + b₀) + b₁, by the hand-derived chain rule (module docstring).

    Args:
        params: W0 (h, d), b0 (h,), W1 (1, h), b1 (1,) — the groups of ``MLP([d, h, 1], "sigmoid")``.
        X: inputs (n, d); y: targets (n,).
        l2: the weight decay.

    Returns:
        The gradient per group, same shapes as ``params``.
    """
    n = X.shape[0]
    a1 = torch.sigmoid(X @ params["W0"].T + params["b0"])  # (n, h)
    y_hat = a1 @ params["W1"][0] + params["b1"][0]  # (n,)
    delta2 = 2.0 * (y_hat - y) / n  # (n,)
    delta1 = delta2[:, None] * params["W1"] * a1 * (1 - a1)  # (n, h)
    grads = {"W0": delta1.T @ X, "b0": delta1.sum(0), "W1": (delta2 @ a1)[None], "b1": delta2.sum()[None]}
    return {k: g + 2 * l2 * params[k] for k, g in grads.items()}


def _tied(problem: Problem, seeds: list[int]) -> torch.Tensor:
    """Starts with every hidden unit equal to unit 0 of ``init(seed)``: rows of W0, entries of b0 and W1."""
    out = []
    for s in seeds:
        p = problem.model.init(seed=s)
        p = {"W0": p["W0"][:1].expand_as(p["W0"]), "b0": p["b0"][:1].expand_as(p["b0"]), "W1": p["W1"][:, :1].expand_as(p["W1"]),
             "b1": p["b1"]}
        out.append(problem.flatten(p))
    return torch.stack(out)


def run(settings: Settings, seed: int, say) -> Outcome:
    """Check backprop against autograd; train from many starts, polish, classify the critical points."""
    s = settings
    X, y = well_data(s.n)
    problem = Problem(MLP([1, s.width, 1], "sigmoid"), X, y, l2=s.l2)
    random_seeds = [child_seed(seed, "restarts", k) for k in range(s.starts)]
    tied_seeds = [child_seed(seed, "restarts", s.starts + k) for k in range(s.tied_starts)]
    theta0 = torch.cat([torch.stack([problem.init(k) for k in random_seeds]), _tied(problem, tied_seeds)])
    tied = torch.arange(len(theta0)) >= s.starts

    say("backprop by hand against autograd")
    errors = []
    for t in theta0:
        hand = problem.flatten(backprop(problem.unflatten(t), X, y, s.l2))
        auto = problem.grad(t)
        errors.append(float((hand - auto).abs().max() / auto.abs().max()))
    grad_error = max(errors)

    say(f"{len(theta0)} runs of GD ({s.steps} steps), then Newton, then damped Newton")
    gd = train_ensemble(problem, theta0=theta0, seeds=random_seeds + tied_seeds, lr=s.lr, steps=s.steps)
    final, newton_norms = newton_polish(problem, gd.theta, iterations=s.newton_steps, max_step=s.newton_radius)
    pending = newton_norms[-1] > s.grad_tol  # not yet at a critical point: descend to the minimum below
    descent_norms = newton_norms[-1:].repeat(s.descent_steps + 1, 1)
    if bool(pending.any()):
        final[pending], descent_norms[:, pending] = damped_newton(problem, final[pending], iterations=s.descent_steps,
                                                                     tol=s.grad_tol / 100)
    losses = problem.loss_batch(final)

    say("classifying the end points")
    results = [classify(problem, t, grad_tol=s.grad_tol, seed=seed) for t in final]
    kinds = [r.kind for r in results]
    critical = torch.tensor([k in CRITICAL for k in kinds])
    crit_losses = losses[critical]
    labels, values = cluster_values(crit_losses, VALUE_RTOL) if len(crit_losses) else (torch.zeros(0, dtype=torch.int64), losses[:0])
    crit_kinds = [k for k in kinds if k in CRITICAL]
    crit_results = [r for r in results if r.kind in CRITICAL]
    crit_theta = final[critical]
    rows, points = [], []
    for c, value in enumerate(values.tolist()):
        members = [i for i in range(len(labels)) if int(labels[i]) == c]
        rep = crit_results[members[0]]
        rows.append((value, ", ".join(f"{k} ×{m}" for k, m in Counter(crit_kinds[i] for i in members).items()), len(members),
                     rep.min_eig, rep.max_eig))
        points.append({"loss": value, "kind": rep.kind, "theta": crit_theta[members[0]]})

    minima = [float(losses[i]) for i, k in enumerate(kinds) if k == "minimum" and not tied[i]]
    lowest = float(crit_losses.min()) if len(crit_losses) else math.nan
    highest_min = max(minima) if minima else math.nan
    saddles = [i for i, k in enumerate(kinds) if k == "saddle"]
    claims = (
        claim(
            "the hand-derived backprop formulas equal autograd (Problem.grad) in float64",
            grad_error <= GRAD_RTOL,
            "max over {k} start points of max|∇_hand − ∇_autograd| / max|∇_autograd| = {err:.1e} ≤ 1e-12",
            k=len(theta0), err=grad_error,
        ),
        claim(
            "training from random starts ends in local minima of different heights: a certified local minimum reached from a "
            "random start lies above the lowest critical value found, so it is not a global minimum",
            bool(minima) and highest_min > lowest * (1 + VALUE_RTOL),
            "{nmin} certified minima from random starts (‖∇L‖ ≤ {tol:g}, smallest Hessian eigenvalue > 0 beyond its bound); "
            "{ndist} distinct critical values in all; highest such minimum {hi:.6g} vs lowest critical value {lo:.6g} "
            "(ratio {ratio:.4g} > 1 + 1e-6)",
            nmin=len(minima), tol=s.grad_tol, ndist=len(values), hi=highest_min, lo=lowest, ratio=highest_min / lowest,
        ),
        claim(
            "starts with tied hidden units (all equal, kept equal by GD) reach saddles of the full loss",
            any(bool(tied[i]) for i in saddles),
            "{nsad} certified saddles (‖∇L‖ ≤ {tol:g}, curvature of both signs beyond the Lanczos bounds), {ntied} of them "
            "from tied starts; most negative eigenvalue {neg:.3g}",
            nsad=len(saddles), tol=s.grad_tol, ntied=sum(bool(tied[i]) for i in saddles),
            neg=min((results[i].min_eig for i in saddles), default=math.nan),
        ),
    )
    table = Table(
        "Distinct critical values reached (clustered at relative tolerance 1e-6), with the Hessian's extreme eigenvalues",
        ("loss", "kinds", "runs", "λ_min", "λ_max"), tuple(rows),
    )
    numbers = {
        "grad_rel_error": grad_error,
        "kinds": dict(Counter(kinds)),
        "kinds_tied": dict(Counter(k for k, t in zip(kinds, tied.tolist()) if t)),
        "critical_values": values.tolist(),
        "critical_points": points,
        "final_losses": losses,
        "final_grad_norms": descent_norms[-1],
        "lowest_critical_value": lowest,
        "highest_minimum": highest_min,
    }
    figures = _figures(problem, final, losses, kinds, tied, gd, (newton_norms, descent_norms, pending), values, labels, critical)
    return Outcome(numbers=numbers, claims=claims, figures=figures, tables=(table,))


COLORS = {"minimum": "C0", "saddle": "C3", "degenerate": "C2", "maximum": "C4", "inconclusive": "C1", "not a critical point": "0.6"}


def _figures(problem, final, losses, kinds, tied, gd, polish, values, labels, critical):
    """Sorted final losses by kind; gradient-norm traces; the fitted functions at each critical value."""
    from ..report.figures import subplots

    out = []
    order = torch.argsort(losses).tolist()
    fig, ax = subplots(figsize=(6, 4))
    for kind in COLORS:
        for is_tied, marker in ((False, "o"), (True, "^")):
            idx = [r for r, i in enumerate(order) if kinds[i] == kind and bool(tied[i]) == is_tied]
            if idx:
                ax.scatter(idx, [float(losses[order[r]]) for r in idx], color=COLORS[kind], marker=marker, s=22,
                           label=f"{kind}{' (tied start)' if is_tied else ''}")
    ax.set(xlabel="run (sorted by final loss)", ylabel="final loss L(θ)", yscale="log", title="where each run ended")
    ax.legend(fontsize=7)
    out.append(png_figure(fig, "final-losses",
                          "Final loss of every run, sorted, coloured by what the curvature says the end point is. Several "
                          "plateaus of minima at different heights: local minima that are not global. Triangles: tied starts."))

    newton_norms, descent_norms, pending = polish
    steps = gd.steps.to(torch.float64)
    unit = float(steps[-1]) / 40  # width of one Newton / damped-Newton iteration on the x axis
    newton_x = steps[-1] + unit * torch.arange(1, len(newton_norms), dtype=torch.float64)
    descent_x = newton_x[-1] + unit * torch.arange(1, len(descent_norms), dtype=torch.float64)
    fig, ax = subplots(figsize=(6, 4))
    for k in range(final.shape[0]):
        xs, trace = torch.cat([steps, newton_x]), torch.cat([gd.grad_norms[:, k], newton_norms[1:, k]])
        if bool(pending[k]):
            xs, trace = torch.cat([xs, descent_x]), torch.cat([trace, descent_norms[1:, k]])
        ax.plot(xs, trace.clamp_min(1e-18), color=COLORS[kinds[k]], lw=0.8, alpha=0.7)
    for x, label in ((float(steps[-1]), " Newton"), (float(newton_x[-1]), " damped")):
        ax.axvline(x, color="k", lw=0.8, ls="--")
        ax.text(x, 1e-2, label, fontsize=7)
    ax.set(xlabel="GD step, then Newton and damped-Newton iterations", ylabel="‖∇L(θ)‖₂", yscale="log",
           title="gradient norm of every run")
    out.append(png_figure(fig, "grad-norms",
                          "Gradient norm along each run, coloured by the kind of end point. GD slows down on plateaus; Newton's "
                          "method lands runs already near a critical point (minimum or saddle) on it to rounding accuracy, and a "
                          "damped Newton descent takes the rest to the minimum below them."))

    X = problem.X
    grid = torch.linspace(float(X.min()), float(X.max()), 200, dtype=torch.float64)[:, None]
    fig, ax = subplots(figsize=(6, 4))
    ax.scatter(X[:, 0], problem.y, color="k", s=12, label="data", zorder=3)
    crit_index = torch.nonzero(critical)[:, 0]
    for c, value in enumerate(values.tolist()):
        i = int(crit_index[int(torch.nonzero(labels == c)[0, 0])])
        style = {"minimum": "-", "saddle": "--"}.get(kinds[i], ":")
        ax.plot(grid[:, 0], problem.output(final[i], grid), style, color=f"C{c % 10}", lw=1.3, label=f"{kinds[i]}, L = {value:.4g}")
    ax.set(xlabel="x", ylabel="ŷ", title="the network at each distinct critical point")
    ax.legend(fontsize=7)
    out.append(png_figure(fig, "fits",
                          "The fitted function at one run per distinct critical value (solid: minima, dashed: saddles). Minima "
                          "whose curves coincide are reflections of one another (σ(z) = 1 − σ(−z)) that weight decay prices "
                          "differently; a flat line is the constant fit. Tied starts act as a single sigmoid step."))
    return tuple(out)


EXPERIMENT = legacy_experiment(
    name="sigmoid-mlp",
    number=11,
    title="A sigmoid MLP: backprop by hand, and minima and saddles from many starts",
    intro=(
        "The gradient of a sigmoid network ŷ = W₂·σ(W₁x + b₁) + b₂ follows from the chain rule layer by layer: "
        "backpropagation written out by hand equals autograd. Training it from many starts shows what non-convexity means "
        "in practice: gradient descent stops at local minima of different heights, and starts with tied hidden units "
        "end on saddles — a convex loss has neither."
    ),
    settings=Settings,
    quick=QUICK,
    run=run,
)
