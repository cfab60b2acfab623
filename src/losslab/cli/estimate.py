"""How long and how much memory a command's request will take, estimated before it runs.

Each estimate times a few of the request's own unit operations on the problem (loss evaluations
at a few points, a gradient, a Hessian-vector product) and multiplies by how many the request
makes; memory is what the request keeps beyond the memory-budgeted blocks (the slice's grid,
a Lanczos basis, the probes). They are estimates, good to a factor of a few: enough to say
"this will take an hour" before it does (:func:`~losslab.cli.common.confirm_large`).

The bytes are arithmetic and decide whether a request is large; the seconds are timed only when it is (a
:class:`Cost`'s ``seconds`` runs its timings on first use), so an ordinary run pays nothing for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch

from .._threads import resolve_threads, scoped_threads
from ..curvature import HessianOperator
from ..landscape import evaluate_points
from ..memory import F64_BYTES, lanczos_bytes, slq_probe_bytes, xtrace_bytes
from ..problem import Problem

__all__ = ["Cost", "check_cost", "landscape_cost", "spectrum_cost"]


@dataclass
class Cost:
    """A request's kept intermediates in bytes (``needed``: arithmetic, no work done) and its estimated seconds, timed
    on first use of ``seconds`` by running a few of the request's unit operations (``timer``)."""

    needed: int
    timer: Callable[[], float]

    @cached_property
    def seconds(self) -> float:
        return self.timer()

_TIMED_POINTS = 64  # points of one timed loss evaluation (fewer cost more each: per-call overhead)
SPECTRUM_BASE_PRODUCTS = 600  # Hessian-vector products of eigs (both ends), H − GGN's extremes and classify, typically
CHECK_HVPS = 1200  # the Lanczos stage of check: up to 400 products at up to 3 points


def _seconds(fn, problem: Problem, repeats: int = 2) -> float:
    """The fastest of ``repeats`` timed calls of ``fn`` (after one untimed call: caches, lazy set-up), under the
    analyses' own thread policy (one thread for a small CPU problem: :mod:`losslab._threads`)."""
    with scoped_threads(resolve_threads("auto", problem)):
        fn()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
    return best


def _per_point(problem: Problem, theta: torch.Tensor, points: int) -> float:
    count = max(1, min(points, _TIMED_POINTS))
    Theta = theta + torch.zeros(count, 1, dtype=theta.dtype, device=theta.device)
    return _seconds(lambda: evaluate_points(problem, Theta), problem, repeats=1) / count


def _grad(problem: Problem, theta: torch.Tensor) -> float:
    return _seconds(lambda: problem.grad(theta), problem)


def _hvp(problem: Problem, theta: torch.Tensor) -> float:
    H = HessianOperator(problem, theta)
    v = torch.ones(problem.n_params, dtype=problem.dtype, device=problem.device)
    return _seconds(lambda: H.matvec(v), problem)


def landscape_cost(problem: Problem, theta: torch.Tensor, *, points: int, train_steps: int) -> Cost:
    """The :class:`Cost` (seconds, bytes) of a slice of ``points`` points after ``train_steps`` Adam steps: points × one point's time
    + steps × one gradient's; the grid the slice returns, its coordinates and losses (3 float64 per point; the
    points themselves are evaluated in chunks within the budget)."""
    return Cost(3 * points * F64_BYTES, lambda: points * _per_point(problem, theta, points) + train_steps * _grad(problem, theta))


def spectrum_cost(problem: Problem, theta: torch.Tensor, *, probes: int, k: int, train_steps: int) -> Cost:
    """The :class:`Cost` (seconds, bytes) of ``losslab spectrum``: ~(600 + 46·probes) Hessian-vector products (eigs and classify ~600,
    SLQ 40 per probe, XTrace and three Frobenius norms 6 per probe) and the training; memory: the largest of its
    Lanczos basis, one SLQ probe's basis and XTrace's probes (each of which the analysis refuses over the budget)."""
    p = problem.n_params
    products = SPECTRUM_BASE_PRODUCTS + 46 * probes
    steps = min(40, p)
    basis = lanczos_bytes(p, min(p, max(30, 2 * k + 10)), k)
    needed = max(basis, slq_probe_bytes(p, steps), xtrace_bytes(p, min(p, max(16, 3 * probes) // 2)))
    return Cost(needed, lambda: products * _hvp(problem, theta) + train_steps * _grad(problem, theta))


def check_cost(problem: Problem, theta: torch.Tensor, *, budget: int, train_steps: int) -> Cost:
    """The :class:`Cost` (seconds, bytes) of ``losslab check``: budget chords (5/3 loss evaluations each: the middle point, and the
    ends shared by 3 λ), two training runs of ``train_steps``, 1200 Hessian-vector products, and a quarter of all
    that again per parameter group (the per-group verdicts); memory: its blocks fill at most the budget."""
    groups = len(problem.groups) if len(problem.groups) > 1 else 0

    def seconds() -> float:
        one = budget * 5 / 3 * _per_point(problem, theta, 16) + 2 * train_steps * _grad(problem, theta) + CHECK_HVPS * _hvp(problem, theta)
        return one * (1 + groups / 4)

    return Cost(problem.memory_budget, seconds)
