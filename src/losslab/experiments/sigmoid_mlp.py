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

from ..curvature import classify
from ..fit.ensemble import train_ensemble
from ..models import MLP
from ..problem import Problem
from ..random_streams import child_seed
from ._minima import cluster_values, damped_newton, newton_polish
from .base import Claim, Measured, claim
from .settings import Integer, Real, Settings, setting
from .story import from_argument

__all__ = ["EXPERIMENT", "QUICK", "CriticalPoint", "SigmoidMlpMeasured", "SigmoidMlpSettings", "backprop", "claims", "measure",
           "well_data"]


GRAD_RTOL = 1e-12  # backprop vs autograd: ~4500 ulps of float64, far above the rounding of a few sums of n terms
VALUE_RTOL = 1e-6  # critical values closer than this are one value (their location error is ~‖∇L‖²/λ ≈ 1e-13)
CRITICAL = ("minimum", "saddle", "maximum", "degenerate")
FIT_POINTS = 200  # grid points of the fitted functions (figure)


@dataclass(frozen=True)
class SigmoidMlpSettings(Settings):
    """Settings of the sigmoid-MLP experiment (defaults: the full run).

    Random starts are ``MLP.init`` with seeds ``child_seed(seed, "restarts", k)``; the tied starts continue the
    numbering (:mod:`losslab.random_streams`).
    """

    n: int = setting(24, Integer(4), "grid points on [−2, 2] of the 1-D XOR data y = 1[|x| > 1]")
    width: int = setting(2, Integer(2), "hidden units h")
    l2: float = setting(1e-3, Real(0, low_open=True), "weight decay (> 0 keeps every critical point finite)")
    starts: int = setting(40, Integer(2), "random starts")
    tied_starts: int = setting(12, Integer(0), "starts with all hidden units tied (equal), which GD keeps tied")
    steps: int = setting(3000, Integer(1), "full-batch GD steps")
    lr: float = setting(0.5, Real(0, low_open=True), "GD learning rate")
    newton_steps: int = setting(10, Integer(0), "Newton iterations after GD")
    newton_radius: float = setting(0.3, Real(0, low_open=True), "longest Newton step taken (‖Δθ‖₂)")
    descent_steps: int = setting(30, Integer(0), "damped-Newton iterations for the runs Newton did not finish")
    grad_tol: float = setting(1e-8, Real(0, low_open=True), "a point with ‖∇L‖₂ ≤ grad_tol counts as critical")


QUICK = {"starts": 16, "tied_starts": 6, "steps": 2000}


@dataclass(frozen=True)
class CriticalPoint:
    """One distinct critical value: the loss, the kind and θ of its first run, and what all its runs were."""

    loss: float
    kind: str
    theta: torch.Tensor
    runs: int  # runs that ended at this value
    kind_counts: dict[str, int]  # their kinds (in order of first appearance)
    min_eig: float  # the first run's extreme Hessian eigenvalues (Ritz values)
    max_eig: float


@dataclass(frozen=True)
class SigmoidMlpMeasured(Measured):
    """What the sigmoid-MLP experiment measured; per-run lists are in run order (random starts, then tied ones)."""

    grad_rel_error: float  # max over the starts of max|∇_hand − ∇_autograd| / max|∇_autograd|
    kinds: dict[str, int]  # end points by kind
    kinds_tied: dict[str, int]  # those of the tied starts
    critical_values: list[float]  # distinct critical values, ascending
    critical_points: list[CriticalPoint]  # one per critical value
    final_losses: torch.Tensor  # (runs,)
    final_grad_norms: torch.Tensor  # (runs,)
    lowest_critical_value: float
    highest_minimum: float  # highest certified minimum reached from a random start
    run_kinds: list[str]
    run_tied: list[bool]
    run_min_eigs: list[float]
    gd_steps: torch.Tensor  # recorded GD steps (R,)
    gd_grad_norms: torch.Tensor  # ‖∇L‖ at those steps (R, runs)
    newton_norms: torch.Tensor  # (newton_steps + 1, runs)
    descent_norms: torch.Tensor  # (descent_steps + 1, runs)
    pending: torch.Tensor  # runs Newton did not finish, sent to the damped Newton descent (runs,) bool
    data_x: torch.Tensor  # the data (n,), (n,)
    data_y: torch.Tensor
    fit_grid: torch.Tensor  # (FIT_POINTS,)
    fit_curves: list[torch.Tensor]  # the network at each critical point on fit_grid


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


def _backprop_error(problem: Problem, theta0: torch.Tensor) -> float:
    """max over the rows of θ₀ of max|∇_hand − ∇_autograd| / max|∇_autograd|."""
    errors = []
    for t in theta0:
        hand = problem.flatten(backprop(problem.unflatten(t), problem.X, problem.y, problem.l2))
        auto = problem.grad(t)
        errors.append(float((hand - auto).abs().max() / auto.abs().max()))
    return max(errors)


@dataclass(frozen=True)
class _Runs:
    """Every run after GD, Newton and damped Newton."""

    gd: object  # the EnsembleTrajectory of GD
    final: torch.Tensor
    newton_norms: torch.Tensor
    descent_norms: torch.Tensor
    pending: torch.Tensor


def _train(problem: Problem, theta0: torch.Tensor, seeds: list[int], s: SigmoidMlpSettings) -> _Runs:
    """GD from every start, then Newton where near a critical point, then damped Newton for the rest."""
    gd = train_ensemble(problem, theta0=theta0, seeds=seeds, lr=s.lr, steps=s.steps)
    final, newton_norms = newton_polish(problem, gd.theta, iterations=s.newton_steps, max_step=s.newton_radius)
    pending = newton_norms[-1] > s.grad_tol  # not yet at a critical point: descend to the minimum below
    descent_norms = newton_norms[-1:].repeat(s.descent_steps + 1, 1)
    if bool(pending.any()):
        final[pending], descent_norms[:, pending] = damped_newton(problem, final[pending], iterations=s.descent_steps,
                                                                     tol=s.grad_tol / 100)
    return _Runs(gd, final, newton_norms, descent_norms, pending)


def _critical_points(final: torch.Tensor, losses: torch.Tensor, results: list) -> tuple[torch.Tensor, list[CriticalPoint]]:
    """The distinct critical values (clustered at VALUE_RTOL) and one :class:`CriticalPoint` per value."""
    critical = torch.tensor([r.kind in CRITICAL for r in results])
    crit_losses = losses[critical]
    labels, values = cluster_values(crit_losses, VALUE_RTOL) if len(crit_losses) else (torch.zeros(0, dtype=torch.int64), losses[:0])
    crit_results = [r for r in results if r.kind in CRITICAL]
    crit_theta = final[critical]
    points = []
    for c, value in enumerate(values.tolist()):
        members = [i for i in range(len(labels)) if int(labels[i]) == c]
        rep = crit_results[members[0]]
        points.append(CriticalPoint(value, rep.kind, crit_theta[members[0]], len(members),
                                    dict(Counter(crit_results[i].kind for i in members)), rep.min_eig, rep.max_eig))
    return values, points


def measure(settings: SigmoidMlpSettings, seed: int, say) -> SigmoidMlpMeasured:
    """Check backprop against autograd; train from many starts, polish, classify the critical points."""
    s = settings
    X, y = well_data(s.n)
    problem = Problem(MLP([1, s.width, 1], "sigmoid"), X, y, l2=s.l2)
    random_seeds = [child_seed(seed, "restarts", k) for k in range(s.starts)]
    tied_seeds = [child_seed(seed, "restarts", s.starts + k) for k in range(s.tied_starts)]
    theta0 = torch.cat([torch.stack([problem.init(k) for k in random_seeds]), _tied(problem, tied_seeds)])
    tied = (torch.arange(len(theta0)) >= s.starts).tolist()

    say("backprop by hand against autograd")
    grad_error = _backprop_error(problem, theta0)

    say(f"{len(theta0)} runs of GD ({s.steps} steps), then Newton, then damped Newton")
    runs = _train(problem, theta0, random_seeds + tied_seeds, s)
    losses = problem.loss_batch(runs.final)

    say("classifying the end points")
    results = [classify(problem, t, grad_tol=s.grad_tol, seed=seed) for t in runs.final]
    kinds = [r.kind for r in results]
    values, points = _critical_points(runs.final, losses, results)
    crit_losses = losses[torch.tensor([k in CRITICAL for k in kinds])]
    minima = [float(losses[i]) for i, k in enumerate(kinds) if k == "minimum" and not tied[i]]
    grid = torch.linspace(float(X.min()), float(X.max()), FIT_POINTS, dtype=torch.float64)[:, None]
    return SigmoidMlpMeasured(
        grad_rel_error=grad_error, kinds=dict(Counter(kinds)), kinds_tied=dict(Counter(k for k, t in zip(kinds, tied) if t)),
        critical_values=values.tolist(), critical_points=points, final_losses=losses, final_grad_norms=runs.descent_norms[-1],
        lowest_critical_value=float(crit_losses.min()) if len(crit_losses) else math.nan,
        highest_minimum=max(minima) if minima else math.nan, run_kinds=kinds, run_tied=tied,
        run_min_eigs=[r.min_eig for r in results], gd_steps=runs.gd.steps, gd_grad_norms=runs.gd.grad_norms,
        newton_norms=runs.newton_norms, descent_norms=runs.descent_norms, pending=runs.pending, data_x=X[:, 0], data_y=y,
        fit_grid=grid[:, 0], fit_curves=[problem.output(p.theta, grid) for p in points],
    )


def claims(settings: SigmoidMlpSettings, m: SigmoidMlpMeasured) -> tuple[Claim, ...]:
    """Backprop equals autograd; random starts end in minima of different heights; tied starts end on saddles."""
    minima = [float(m.final_losses[i]) for i, k in enumerate(m.run_kinds) if k == "minimum" and not m.run_tied[i]]
    lowest, highest_min = m.lowest_critical_value, m.highest_minimum
    saddles = [i for i, k in enumerate(m.run_kinds) if k == "saddle"]
    return (
        claim(
            "backprop-equals-autograd", "the hand-derived backprop formulas equal autograd (Problem.grad) in float64",
            m.grad_rel_error <= GRAD_RTOL,
            "max over {k} start points of max|∇_hand − ∇_autograd| / max|∇_autograd| = {err:.1e} ≤ 1e-12",
            k=len(m.run_kinds), err=m.grad_rel_error,
        ),
        claim(
            "minima-at-different-heights",
            "training from random starts ends in local minima of different heights: a certified local minimum reached from a "
            "random start lies above the lowest critical value found, so it is not a global minimum",
            bool(minima) and highest_min > lowest * (1 + VALUE_RTOL),
            "{nmin} certified minima from random starts (‖∇L‖ ≤ {tol:g}, smallest Hessian eigenvalue > 0 beyond its bound); "
            "{ndist} distinct critical values in all; highest such minimum {hi:.6g} vs lowest critical value {lo:.6g} "
            "(ratio {ratio:.4g} > 1 + 1e-6)",
            plain="Several runs stopped where the slope is zero and the loss curves upward in every direction (a local "
                  "minimum, its eigenvalue estimate far enough above zero to be trusted), yet some of these valleys sit "
                  "clearly higher than the lowest point found, so they are traps rather than the best solution.",
            nmin=len(minima), tol=settings.grad_tol, ndist=len(m.critical_values), hi=highest_min, lo=lowest,
            ratio=highest_min / lowest,
        ),
        claim(
            "tied-starts-reach-saddles",
            "starts with tied hidden units (all equal, kept equal by GD) can end on saddles of the full loss",
            any(m.run_tied[i] for i in saddles),
            "{nsad} certified saddle(s) (‖∇L‖ ≤ {tol:g}, curvature of both signs beyond the Lanczos bounds), {ntied} of them "
            "from tied starts; most negative eigenvalue {neg:.3g}; the {k} tied starts ended as: {tied_kinds}",
            plain="A saddle is a flat point where the loss curves up in some directions and down in others; the curvature "
                  "estimates (with their error bars, from the Lanczos method) show both signs clearly, and runs whose hidden "
                  "units started equal can end on such points (others of them still find a minimum).",
            nsad=len(saddles), tol=settings.grad_tol, ntied=sum(m.run_tied[i] for i in saddles),
            neg=min((m.run_min_eigs[i] for i in saddles), default=math.nan), k=sum(m.kinds_tied.values()),
            tied_kinds=", ".join(f"{v} {k}" for k, v in sorted(m.kinds_tied.items())) or "none",
        ),
    )


EXPERIMENT = from_argument("sigmoid-mlp", settings=SigmoidMlpSettings, quick=QUICK, measure=measure, claims=claims)
