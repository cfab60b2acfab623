"""A quadratic Bézier curve between two minima with a trained control point (mode connectivity).

Garipov, Izmailov, Podoprikhin, Vetrov & Wilson 2018 ("Loss surfaces, mode connectivity, and fast ensembling
of DNNs", NeurIPS, §3) connect two trained networks θ_a, θ_b by the curve

    φ_c(t) = (1 − t)²·θ_a + 2t(1 − t)·c + t²·θ_b,   t ∈ [0, 1],   φ_c(0) = θ_a, φ_c(1) = θ_b,

and train the control point c to minimise the loss averaged along it, ∫₀¹ L(φ_c(t)) dt (they sample
t ~ U(0, 1) once per step and take a stochastic-gradient step on c). Here the integral is estimated each
step by a stratified rule with ``points`` nodes t_k = (k + u_s)/points, k = 0 … points − 1, shifted by
u_s = frac(s·(√5 − 1)/2) at step s (a low-discrepancy sequence: every t is visited, and no seed is needed),
and c takes an Adam step (Kingma & Ba 2015) on the gradient of that average; ∂φ_c(t)/∂c = 2t(1 − t)·I.
c starts at the midpoint (θ_a + θ_b)/2, where the curve is the straight segment.

The returned curve is evaluated on an even grid of t (:func:`~losslab.landscape.evaluate_combinations`),
with its heights above the endpoints (:class:`~losslab.landscape.barrier.Barrier`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import LosslabError, finite_float, positive_int
from ..problem import Problem
from .barrier import Barrier, grid_size, heights
from .evaluate import combine, evaluate_combinations

__all__ = ["BezierPath", "bezier_coordinates", "bezier_path", "bezier_points"]

_GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True)
class BezierPath:
    """A trained quadratic Bézier curve from θ_a (t = 0) to θ_b (t = 1) and the loss along it.

    Attributes:
        control: the trained control point c, shape (p,).
        curve: the loss on the curve at an even grid of t, with its heights (a :class:`Barrier`:
            ``curve.t``, ``curve.losses``, ``curve.height_above_mean``, ``curve.height_above_chord``).
        training_losses: float64 tensor (train_steps + 1,): the stratified average of L along the curve
            before each step and after the last (the objective Adam lowers, on its own nodes).
    """

    control: torch.Tensor
    curve: Barrier
    training_losses: torch.Tensor


def bezier_coordinates(t: torch.Tensor) -> torch.Tensor:
    """The Bernstein weights ((1 − t)², 2t(1 − t), t²) at t (K,): shape (K, 3), float64; rows (1, 0, 0) at t = 0, (0, 0, 1) at t = 1."""
    t = torch.as_tensor(t, dtype=torch.float64)
    return torch.stack([(1 - t) ** 2, 2 * t * (1 - t), t**2], dim=1)


def bezier_points(a: torch.Tensor, control: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """φ_c(t) for each t (K,): the points (K, p) of the quadratic Bézier curve a → b with control point c."""
    vectors = torch.stack([a, control, b])
    return combine(bezier_coordinates(t).to(device=vectors.device, dtype=vectors.dtype), vectors)


def _curve_losses(problem: Problem, points: torch.Tensor) -> torch.Tensor:
    """L at each row of ``points`` (K, p), differentiable: one ``torch.func.vmap`` call, or one point at a time."""
    if problem._batched:
        return torch.func.vmap(problem.loss)(points)
    return torch.stack([problem.loss(p) for p in points])


def _curve_objective(problem: Problem, a: torch.Tensor, control: torch.Tensor, b: torch.Tensor, t: torch.Tensor,
                     backward: bool) -> float:
    """mean_k L(φ_c(t_k)), its gradient in ``control`` accumulated into ``control.grad`` when ``backward``.

    The nodes go through in chunks that fit the problem's ``memory_budget``: a third of
    :meth:`~losslab.Problem.chunk_size` points per vmapped call, since each chunk's graph is kept for its
    backward pass (about three times the forward's memory). The chunks' gradients add up to the gradient of
    the mean.
    """
    size = max(1, problem.chunk_size() // 3)
    total = 0.0
    for start in range(0, len(t), size):
        part = _curve_losses(problem, bezier_points(a, control, b, t[start:start + size])).sum() / len(t)
        if backward:
            part.backward()
        total += float(part.detach())
    return total


def bezier_path(
    problem: Problem, a: torch.Tensor, b: torch.Tensor, *, steps: int = 25, train_steps: int = 200, lr: float = 0.01,
    points: int = 8, implementation: str = "auto",
) -> BezierPath:
    """Train the control point of a quadratic Bézier curve from a to b (Garipov et al. 2018) and evaluate the loss on it.

    Args:
        problem: the problem; a and b are points of its free groups (two trained networks).
        a, b: the endpoints θ_a, θ_b, shape (p,) (or params dicts).
        steps: evaluation grid points on [0, 1], endpoints included (2 … ``barrier.MAX_GRID`` = 10⁷).
        train_steps: Adam steps on the control point (>= 0; 0 leaves the straight segment).
        lr: Adam's learning rate (> 0), in θ's units.
        points: nodes t_k per step of the stratified estimate of ∫ L(φ_c(t)) dt (1 … 10⁷).
        implementation: how the evaluation grid is evaluated (:func:`~losslab.landscape.evaluate_points`).

    Returns:
        A :class:`BezierPath`; ``curve.losses[0]`` = L(θ_a), ``curve.losses[-1]`` = L(θ_b).

    Raises:
        LosslabError: a or b not of shape (p,) or not finite, a bad count (a grid over 10⁷ points) or learning rate, an implementation the
            model cannot take, a curve whose loss became non-finite during training (lower ``lr``).
    """
    if not isinstance(problem, Problem):
        raise LosslabError(f"expected a losslab Problem, got {type(problem).__name__}")
    a, b = problem.as_theta(a, "a"), problem.as_theta(b, "b")
    steps = grid_size("steps", steps, minimum=2)
    train_steps = positive_int("train_steps", train_steps, minimum=0)
    points = grid_size("points", points, minimum=1)
    lr = finite_float("lr", lr, positive=True)
    control = ((a + b) / 2).clone().requires_grad_(True)
    opt = torch.optim.Adam([control], lr=lr)
    history = []
    for s in range(train_steps + 1):
        t = (torch.arange(points, dtype=torch.float64) + math.fmod(s * _GOLDEN, 1.0)) / points
        opt.zero_grad()
        value = _curve_objective(problem, a, control, b, t, backward=s < train_steps)
        if not math.isfinite(value):
            raise LosslabError(f"expected a finite loss along the curve, got {value} at training step {s}; lower lr (got lr={lr:g})")
        history.append(value)
        if s == train_steps:
            break
        opt.step()
    control = control.detach()
    t = torch.linspace(0, 1, steps, dtype=torch.float64)
    losses = evaluate_combinations(problem, bezier_coordinates(t), torch.stack([a, control, b]), implementation=implementation)
    return BezierPath(control=control, curve=heights(t, losses), training_losses=torch.tensor(history, dtype=torch.float64))
