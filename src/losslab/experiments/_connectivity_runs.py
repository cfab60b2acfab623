"""The training and path measurements of the mode-connectivity experiment (experiment 15): one width at a time."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import data
from ..fit import train
from ..landscape import Barrier, barrier, bezier_path
from ..models import MLP
from ..problem import Problem
from ..random_streams import child_seed
from ..symmetry import weight_matching

__all__ = ["WidthRuns", "digits_problems", "network_seed", "run_width"]

DIGITS_CLASSES = 10
DIGITS_PIXELS = 64


@dataclass(frozen=True)
class WidthRuns:
    """Everything measured at one hidden width: per pair of networks, the two segments; for the first pair, the curve."""

    losses_a: list[float]  # L_train(θ_a) per pair
    losses_b: list[float]
    test_errors: list[list[float]]  # [pair] = [error of a, error of b] on the held-out digits
    naive: list[Barrier]  # the segment θ_a → θ_b per pair
    aligned: list[Barrier]  # the segment θ_a → π(θ_b) per pair (weight matching)
    matched: list[list[float]]  # [pair] = [⟨θ_a, θ_b⟩, ⟨θ_a, π(θ_b)⟩] (the weight-matching objective before and after)
    curve: Barrier  # the trained Bézier curve θ_a → θ_b of the first pair
    curve_training: list[float]  # its training objective per Adam step


def digits_problems(n_train: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The digits in the order of ``seed``: the first ``n_train`` to train on, the rest held out: (X, y, X_test, y_test)."""
    X, y = data.digits(seed=seed)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def network_seed(seed: int, width_index: int, network: int) -> int:
    """The init seed of network ``network`` (2k: a of pair k, 2k + 1: b) at the ``width_index``-th width."""
    return child_seed(seed, "restarts", width_index, network)


def _test_error(problem: Problem, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((problem.output(theta, X).argmax(-1) != y).double().mean())


def run_width(settings, seed: int, width_index: int, split, say) -> WidthRuns:
    """Train 2·pairs networks of one width on the training digits; measure the naive and aligned segments and a curve."""
    s = settings
    X, y, X_test, y_test = split
    width = s.widths[width_index]
    problem = Problem(MLP([DIGITS_PIXELS, width, DIGITS_CLASSES], "relu"), X, y, loss="cross_entropy")
    thetas = []
    for k in range(2 * s.pairs):
        run = train(problem, optimizer="adam", lr=s.lr, steps=s.steps, seed=network_seed(seed, width_index, k),
                    record_every=s.steps)
        thetas.append(run.theta.detach())
    say(f"width {width}: {2 * s.pairs} networks trained ({s.steps} Adam steps each), p = {problem.n_params}")
    out = {"losses_a": [], "losses_b": [], "test_errors": [], "naive": [], "aligned": [], "matched": []}
    for k in range(s.pairs):
        a, b = thetas[2 * k], thetas[2 * k + 1]
        match = weight_matching(problem, a, b)
        naive, aligned = barrier(problem, a, b, steps=s.points), barrier(problem, a, match.theta, steps=s.points)
        out["losses_a"].append(naive.loss_a)
        out["losses_b"].append(naive.loss_b)
        out["test_errors"].append([_test_error(problem, t, X_test, y_test) for t in (a, b)])
        out["naive"].append(naive)
        out["aligned"].append(aligned)
        out["matched"].append([match.objective_before, match.objective])
    path = bezier_path(problem, thetas[0], thetas[1], steps=s.points, train_steps=s.curve_steps, lr=s.curve_lr,
                       points=s.curve_points)
    say(f"width {width}: Bézier curve trained ({s.curve_steps} steps), max loss {float(path.curve.losses.max()):.4f}")
    return WidthRuns(**out, curve=path.curve, curve_training=path.training_losses.tolist())
