"""The loss barrier on the straight segment between two parameter points (linear mode connectivity).

For two points θ_a, θ_b (two trained networks) and t on a grid of [0, 1], the loss along the segment is
L(θ(t)), θ(t) = (1 − t)·θ_a + t·θ_b. Two heights of its highest point are reported:

* above the mean of the endpoints — Frankle, Dziugaite, Roy & Carbin 2020 ("Linear mode connectivity and
  the lottery ticket hypothesis", ICML) measure their error barrier height this way, on the error; here it is
  taken on the loss: B_mean = max_t L(θ(t)) − ½(L(θ_a) + L(θ_b));
* above the chord between the endpoints' losses (Entezari, Sedghi, Saukh & Neyshabur 2022, "The role of
  permutation invariance in linear mode connectivity of neural networks", ICLR, Definition 1):
  B_chord = max_t [L(θ(t)) − ((1 − t)·L(θ_a) + t·L(θ_b))].

Both are maxima over the grid, so they are lower bounds of the maxima over the whole segment. They
coincide when L(θ_a) = L(θ_b) or the maximum is at t = ½; B_chord ≥ 0 always (t = 0 gives 0), B_mean can be
negative. Non-finite losses are kept, not refused: a loss of +inf on the grid gives infinite heights, a NaN
anywhere on the grid gives NaN heights (and ``t_max`` at the first NaN). A convex loss has B_chord = 0 (its
segment never rises above the chord); a positive B_chord is a chord witness of non-convexity. The points are
evaluated together (:func:`~losslab.landscape.evaluate_combinations`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import LosslabError, positive_int
from ..problem import Problem
from .evaluate import evaluate_combinations

__all__ = ["MAX_GRID", "Barrier", "barrier", "segment_coordinates"]

MAX_GRID = 10**7  # the most grid points of t: a finer grid cannot change a barrier that a 25-point one resolves


def grid_size(name: str, value: object, *, minimum: int) -> int:
    """``value`` as an int in [minimum, MAX_GRID], else a one-line error (a huge grid would exhaust memory)."""
    n = positive_int(name, value, minimum=minimum)
    if n > MAX_GRID:
        raise LosslabError(f"expected {name} <= {MAX_GRID} (grid points of t), got {name}={n}; use a few dozen")
    return n


@dataclass(frozen=True)
class Barrier:
    """The loss along the segment from θ_a (t = 0) to θ_b (t = 1) and its barrier heights.

    Attributes:
        t: float64 tensor (steps,), the grid 0 = t_0 < … < t_{steps−1} = 1.
        losses: tensor (steps,), L((1 − t)·θ_a + t·θ_b) (``losses[0]`` = L(θ_a), ``losses[-1]`` = L(θ_b)).
        loss_a, loss_b: the endpoints' losses.
        height_above_mean: max_t L(θ(t)) − ½(L(θ_a) + L(θ_b)) (Frankle et al. 2020's barrier height).
        height_above_chord: max_t [L(θ(t)) − ((1 − t)·L(θ_a) + t·L(θ_b))] (Entezari et al. 2022, Definition 1).
        t_max: where L(θ(t)) is largest on the grid.
    """

    t: torch.Tensor
    losses: torch.Tensor
    loss_a: float
    loss_b: float
    height_above_mean: float
    height_above_chord: float
    t_max: float


def segment_coordinates(steps: int) -> torch.Tensor:
    """The coefficients (1 − t, t) of the grid t = linspace(0, 1, steps): shape (steps, 2), float64; rows (1, 0) and (0, 1) exact."""
    t = torch.linspace(0, 1, steps, dtype=torch.float64)
    return torch.stack([1 - t, t], dim=1)


def barrier(problem: Problem, a: torch.Tensor, b: torch.Tensor, *, steps: int = 25, implementation: str = "auto") -> Barrier:
    """The loss on the segment from a to b at ``steps`` evenly spaced t, and its barrier heights.

    Args:
        problem: the problem; a and b are points of its free groups.
        a: θ_a, shape (p,) (or a params dict).
        b: θ_b, shape (p,).
        steps: grid points on [0, 1], endpoints included (2 … ``MAX_GRID``; odd puts one at t = ½).
        implementation: how the points are evaluated (:func:`~losslab.landscape.evaluate_points`).

    Returns:
        A :class:`Barrier` (heights in the loss's units).

    Raises:
        LosslabError: a or b not of shape (p,) or not finite, steps < 2 or > ``MAX_GRID``, an implementation the model
            cannot take.

    Example:
        >>> from losslab import Problem
        >>> from losslab.models import Polynomial
        >>> x = torch.linspace(-1, 1, 5, dtype=torch.float64)
        >>> prob = Problem(Polynomial(1, 1), x, x)
        >>> r = barrier(prob, torch.tensor([0.0, 0.0]), torch.tensor([0.0, 2.0]), steps=3)
        >>> r.losses.tolist(), r.height_above_chord
        ([0.5, 0.0, 0.5], 0.0)
    """
    if not isinstance(problem, Problem):
        raise LosslabError(f"expected a losslab Problem, got {type(problem).__name__}")
    a, b = problem.as_theta(a, "a"), problem.as_theta(b, "b")
    steps = grid_size("steps", steps, minimum=2)
    coords = segment_coordinates(steps)
    losses = evaluate_combinations(problem, coords, torch.stack([a, b]), implementation=implementation)
    return heights(coords[:, 1], losses)


def heights(t: torch.Tensor, losses: torch.Tensor) -> Barrier:
    """The :class:`Barrier` of losses (K,) at t (K,) on a path from t = 0 to t = 1 (``losses[0]``, ``losses[-1]`` the endpoints)."""
    la, lb = float(losses[0]), float(losses[-1])
    chord = (1 - t) * la + t * lb
    i = int(torch.argmax(losses))
    return Barrier(
        t=t, losses=losses, loss_a=la, loss_b=lb, height_above_mean=float(losses[i]) - (la + lb) / 2,
        height_above_chord=float((losses.double() - chord).max()), t_max=float(t[i]),
    )
