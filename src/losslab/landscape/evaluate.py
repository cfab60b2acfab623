"""Batched evaluation of the loss at many parameter points on the same data.

A slice is K points Θ (K, p) of one problem. They are evaluated together, never one model
forward per point in a Python loop over a mutable model (DESIGN.md, "Performance is batching"):

* :func:`evaluate_points`: L at each row of Θ (K, p) → (K,).
* :func:`evaluate_combinations`: L at the points base + Σ_j coords[:, j]·vectors[j], generated
  chunk by chunk, so that a 41 × 41 plane of a large model never holds all its points at once.

Each point is computed directly from its coordinates (no walking: no point is reached by
adding steps to the previous one), so every point of a slice is exactly reproducible by
:func:`combine` from the slice's stored coordinates and vectors.

The evaluation path is chosen per problem by :func:`backend`: TwoLayer and MLP models use the
pure-tensor forwards of :mod:`losslab.landscape.fast` (a batched pass for small problems —
``addcmul`` first layer for narrow inputs, ``baddbmm`` otherwise — and a per-point loop without
autograd for large ones, both with NumPy's SIMD tanh); every other model uses
:meth:`Problem.loss_batch` (one ``torch.func.vmap`` call per memory-budget chunk).
"""

from __future__ import annotations

import torch

from .._checks import shape
from ..problem import Problem
from . import fast

__all__ = ["backend", "combine", "evaluate_combinations", "evaluate_points"]


def backend(problem: Problem) -> str:
    """The evaluation path :func:`evaluate_points` takes for ``problem``.

    ``"batched matmul"`` or ``"per-point"`` (the pure-tensor forwards of
    :mod:`losslab.landscape.fast`, for TwoLayer and MLP models) or ``"loss_batch"`` (any model).
    """
    return fast.path(problem) or "loss_batch"


def evaluate_points(problem: Problem, Theta: torch.Tensor) -> torch.Tensor:
    """L(θ_k) for each row θ_k of Θ (K, p): a tensor (K,) in ``problem.dtype``, without autograd.

    Args:
        problem: the problem (its free groups are the p coordinates).
        Theta: (K, p) points.

    Example:
        >>> from losslab.models import Polynomial
        >>> x = torch.linspace(-1, 1, 5, dtype=torch.float64)
        >>> prob = Problem(Polynomial(1, 2), x, x**2)
        >>> evaluate_points(prob, torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)).tolist()
        [0.0, 0.425]
    """
    Theta = torch.as_tensor(Theta)
    shape("Theta", Theta, (None, problem.n_params))
    Theta = Theta.to(problem.dtype)
    path = fast.path(problem)
    if path is not None:
        return fast.loss_batch(problem, Theta, path)
    return problem.loss_batch(Theta)


def combine(coords: torch.Tensor, vectors: torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
    """The points base + coords[:, 0]·vectors[0] + coords[:, 1]·vectors[1] + …, shape (K, p).

    Summed left to right in elementwise operations (no fused or reordered products), so a
    point rebuilt from one row of coordinates equals the one evaluated bit for bit.

    Args:
        coords: (K, m) coefficients.
        vectors: (m, p) vectors.
        base: (p,) offset, or None for none.
    """
    out = coords[:, :1] * vectors[0] if base is None else base + coords[:, :1] * vectors[0]
    for j in range(1, vectors.shape[0]):
        out = out + coords[:, j : j + 1] * vectors[j]
    return out


def _points_per_chunk(problem: Problem) -> int:
    """How many points to materialise at once: the loss chunk, capped by the memory budget for Θ."""
    per_point = problem.n_params * torch.finfo(problem.dtype).bits // 8
    return max(1, min(problem.chunk_size(), problem.memory_budget // max(2 * per_point, 1)))


def evaluate_combinations(problem: Problem, coords: torch.Tensor, vectors: torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
    """L at each point of :func:`combine` ``(coords, vectors, base)``: a tensor (K,).

    The points are built and evaluated in chunks (at most the problem's memory budget), all
    in ``problem.dtype``.

    Args:
        problem: the problem.
        coords: (K, m) coefficients.
        vectors: (m, p) vectors, e.g. the two directions of a plane.
        base: (p,) offset (the centre of a plane), or None.
    """
    coords = coords.to(problem.dtype)
    vectors = vectors.to(problem.dtype)
    base = None if base is None else base.to(problem.dtype)
    size = _points_per_chunk(problem)
    out = [evaluate_points(problem, combine(chunk, vectors, base)) for chunk in coords.split(size)]
    return torch.cat(out) if out else coords.new_zeros(0)
