"""Batched evaluation of the loss at many parameter points on the same data.

A slice is K points Θ (K, p) of one problem. They are evaluated together, never one model
forward per point in a Python loop over a mutable model (DESIGN.md, "Performance is batching"):

* :func:`evaluate_points`: L at each row of Θ (K, p) → (K,).
* :func:`evaluate_combinations`: L at the points base + Σ_j coords[:, j]·vectors[j], generated
  chunk by chunk, so that a 41 × 41 plane of a large model never holds all its points at once.

Each point is computed directly from its coordinates (no walking: no point is reached by
adding steps to the previous one), so every point of a slice is exactly reproducible by
:func:`combine` from the slice's stored coordinates and vectors.

The evaluation path is an explicit ``implementation=``, an :class:`Implementation` or its value (:data:`IMPLEMENTATIONS`):

* ``"layers"`` / ``"layers per point"``: the K-point kernels of :mod:`losslab.landscape.fast`, for
  models that declare a layer spec (TwoLayer, MLP, a Module wrapping an ``nn.Sequential`` of
  ``nn.Linear`` and elementwise activations);
* ``"vmap"``: :meth:`Problem.loss_batch`, one ``torch.func.vmap`` call per memory-budget chunk
  (any model vmap can batch);
* ``"per point"``: one forward per point without autograd (any model);
* ``"auto"`` (default): the layer kernels when the model has a spec — ``"layers per point"``
  from n_b × widest layer ≥ ``fast.PER_POINT_MIN_ACTIVATIONS`` — else ``"vmap"`` when vmap can
  batch the model, else ``"per point"`` (measured in benchmarks/landscape_plane.py and
  benchmarks/landscape_eval_scratch.py; :func:`backend` reports the choice).
"""

from __future__ import annotations

import numpy as np
import torch

from .._checks import LosslabError, as_tensor, choice, shape
from ..problem import Problem
from . import fast
from .implementation import IMPLEMENTATIONS, Implementation

__all__ = ["IMPLEMENTATIONS", "Implementation", "backend", "combine", "evaluate_combinations", "evaluate_points"]


def backend(problem: Problem, implementation: str = "auto") -> Implementation:
    """The path :func:`evaluate_points` takes for ``problem``: ``implementation`` resolved (never ``"auto"``).

    Raises:
        LosslabError: an unknown implementation, ``"layers"``/``"layers per point"`` for a model without a
            layer spec, or ``"vmap"`` for a model vmap cannot batch.
    """
    implementation = Implementation(choice("implementation", implementation, IMPLEMENTATIONS))
    spec = fast.layer_spec(problem)
    if implementation == Implementation.AUTO:
        if spec is not None:
            big = fast.per_point_activations(problem, spec) >= fast.PER_POINT_MIN_ACTIVATIONS
            return Implementation.LAYERS_PER_POINT if big else Implementation.LAYERS
        return Implementation.VMAP if problem._batched else Implementation.PER_POINT
    if implementation in _LAYERS and spec is None:
        raise LosslabError(
            f"expected a model that declares a layer spec (TwoLayer, MLP, Module of an nn.Sequential of nn.Linear and activations) "
            f"with one tensor of inputs for implementation={implementation.value!r}, got {problem.model.describe()}; "
            "use implementation='auto', 'vmap' or 'per point'"
        )
    if implementation == Implementation.VMAP and not problem._batched:
        raise LosslabError(
            f"expected a model torch.func.vmap can batch for implementation='vmap', got {problem.model.describe()} "
            f"({problem.batching_note}); use implementation='auto' or 'per point'"
        )
    return implementation


_LAYERS = (Implementation.LAYERS, Implementation.LAYERS_PER_POINT)  # the kernels of :mod:`losslab.landscape.fast`


def _per_point(problem: Problem, Theta: torch.Tensor) -> torch.Tensor:
    """One forward per point (batches outer, so a DataLoader is read once), without autograd."""
    total = None
    with torch.no_grad():
        for i, (b, w) in enumerate(problem._weights()):
            part = torch.stack([problem._point_term(t, b, w, i == 0) for t in Theta])
            total = part if total is None else total + part
    return total


def evaluate_points(problem: Problem, Theta: torch.Tensor, *, implementation: str = "auto") -> torch.Tensor:
    """L(θ_k) for each row θ_k of Θ (K, p): a tensor (K,) in ``problem.dtype``, without autograd.

    Args:
        problem: the problem (its free groups are the p coordinates).
        Theta: (K, p) points.
        implementation: an :class:`Implementation` or its value (see :func:`backend`); all give the same
            numbers to rounding.

    Raises:
        LosslabError: Θ of the wrong shape, or an implementation the model cannot take (:func:`backend`).

    Example:
        >>> from losslab.models import Polynomial
        >>> x = torch.linspace(-1, 1, 5, dtype=torch.float64)
        >>> prob = Problem(Polynomial(1, 2), x, x**2)
        >>> evaluate_points(prob, torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)).tolist()
        [0.0, 0.425]
    """
    Theta = _points("Theta", Theta, problem.dtype)
    shape("Theta", Theta, (None, problem.n_params))
    how = backend(problem, implementation)
    Theta = Theta.to(device=problem.device)
    if not len(Theta):
        return Theta.new_zeros(0)
    if how in _LAYERS:
        return fast.loss_batch(problem, Theta, how)
    return problem.loss_batch(Theta) if how == Implementation.VMAP else _per_point(problem, Theta)


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


def _points(name: str, value: object, dtype: torch.dtype) -> torch.Tensor:
    """Rows of points as a finite real tensor in ``dtype`` (:func:`~losslab._checks.as_tensor`); a 2-D array with no rows is allowed."""
    empty = np.ndim(value) == 2 and np.shape(value)[0] == 0
    if empty and (not isinstance(value, torch.Tensor) or (value.is_floating_point() and not value.is_meta)):
        return torch.zeros(tuple(np.shape(value)), dtype=dtype)
    return as_tensor(name, value, dtype=dtype)


def _checked(problem: Problem, coords: object, vectors: object, base: object) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """coords (K, m), vectors (m, p) and base (p,) or None, as finite tensors in the problem's dtype, or a LosslabError."""
    vectors = as_tensor("vectors", vectors, dtype=problem.dtype)
    shape("vectors", vectors, (None, problem.n_params))
    coords = _points("coords", coords, problem.dtype)
    shape("coords", coords, (None, vectors.shape[0]))
    if base is not None:
        base = as_tensor("base", base, dtype=problem.dtype)
        shape("base", base, (problem.n_params,))
    return coords, vectors, base


def _points_per_chunk(problem: Problem) -> int:
    """How many points to materialise at once: the loss chunk, capped by the memory budget for Θ."""
    per_point = problem.n_params * torch.finfo(problem.dtype).bits // 8
    return max(1, min(problem.chunk_size(), problem.memory_budget // max(2 * per_point, 1)))


def evaluate_combinations(
    problem: Problem, coords: torch.Tensor, vectors: torch.Tensor, base: torch.Tensor | None = None, *, implementation: str = "auto"
) -> torch.Tensor:
    """L at each point of :func:`combine` ``(coords, vectors, base)``: a tensor (K,).

    The points are built and evaluated in chunks (at most the problem's memory budget), all
    in ``problem.dtype``. With ``"layers"`` the first layer's pre-activation is not rebuilt per
    point but combined from those of base and vectors (:func:`~losslab.landscape.fast.loss_combinations`),
    equal to the per-point value to rounding.

    Args:
        problem: the problem.
        coords: (K, m) coefficients (K may be 0).
        vectors: (m, p) vectors, e.g. the two directions of a plane.
        base: (p,) offset (the centre of a plane), or None.
        implementation: how the points are evaluated (see :func:`evaluate_points`).

    Raises:
        LosslabError: arrays of the wrong shape, non-finite values, or an implementation the model
            cannot take (:func:`backend`).
    """
    implementation = backend(problem, implementation)
    coords, vectors, base = _checked(problem, coords, vectors, base)
    if implementation == Implementation.LAYERS and len(coords):  # the first layer's pre-activation shared (fast.loss_combinations)
        base = torch.zeros(problem.n_params, dtype=problem.dtype, device=problem.device) if base is None else base
        return fast.loss_combinations(problem, coords.to(problem.device), vectors.to(problem.device), base.to(problem.device))
    size = _points_per_chunk(problem)
    out = [evaluate_points(problem, combine(chunk, vectors, base), implementation=implementation) for chunk in coords.split(size)]
    return torch.cat(out) if out else coords.new_zeros(0)
