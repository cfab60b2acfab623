"""Shared helpers for the data generators: validation, seeded generators, ``as_data``."""

from __future__ import annotations

import torch

from .. import random_streams
from .._checks import LosslabError, as_tensor, finite_float, seed_int

__all__ = ["as_data"]

DTYPE = torch.float64


def generator(seed: object, name: str = "seed", purpose: str = "data") -> torch.Generator:
    """The CPU generator of the ``purpose`` stream of ``seed`` (an integer >= 0, checked as ``name``).

    ``"data"`` for a data set's samples, ``"target"`` for a random target function
    (:mod:`losslab.random_streams`).
    """
    return random_streams.generator(seed_int(name, seed), purpose)


def interval(name: str, value: object) -> tuple[float, float]:
    """``value`` as a pair (lo, hi) of finite floats with lo < hi."""
    try:
        lo, hi = value  # type: ignore[misc]
    except (TypeError, ValueError):
        raise LosslabError(f"expected {name} to be a pair (lo, hi), got {name}={value!r}") from None
    lo, hi = finite_float(f"{name}[0]", lo), finite_float(f"{name}[1]", hi)
    if not lo < hi:
        raise LosslabError(f"expected {name} = (lo, hi) with lo < hi, got {name}={value!r}")
    return lo, hi


def as_data(X: object, y: object) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a data set given as tensors, NumPy arrays or nested lists; return tensors.

    X becomes a floating tensor of shape (n, d) (a 1-D X is read as n examples of one feature;
    integer inputs are cast to float64, float32/float64 are kept). y keeps its kind: floating
    targets of shape (n,) or (n, k), or integer class labels of shape (n,). NaN/inf and empty
    arrays are rejected.

    Args:
        X: inputs, shape (n, d) or (n,).
        y: targets, shape (n,) or (n, k).

    Returns:
        ``(X, y)`` as tensors, X of shape (n, d).

    Example:
        >>> X, y = as_data([[0.0], [1.0]], [0.5, 1.5])
        >>> tuple(X.shape), y.dtype
        ((2, 1), torch.float64)
    """
    X = as_tensor("X", X)
    if not X.dtype.is_floating_point:
        X = X.to(DTYPE)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise LosslabError(f"expected X of shape (n, d) or (n,), got shape {tuple(X.shape)}")
    y = as_tensor("y", y)
    if y.ndim == 0 or y.ndim > 2 or y.shape[0] != X.shape[0]:
        raise LosslabError(f"expected y of shape ({X.shape[0]},) or ({X.shape[0]}, k), one row per row of X, got shape {tuple(y.shape)}")
    return X, y
