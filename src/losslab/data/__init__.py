"""Seeded data generators: every one returns ``(X, y)`` as tensors, X of shape (n, d).

Same seed, same tensors; draws use ``torch.Generator().manual_seed(seed)`` in float64.

==================  ============================================  ==========================
CLI name            generator                                      loss it suits
==================  ============================================  ==========================
cubic               :func:`cubic` — y = x³ − x + noise, d = 1      mse
sine                :func:`sine` — y = sin(x) + noise on [−π, π]   mse
teacher             :func:`teacher` — a random TwoLayer tanh net   mse
sparse-monomials    :func:`sparse_monomials` — d = 20, degree 3    mse
logistic            :func:`logistic_labels` — y ∈ {0, 1}, d = 2    bce
classes             :func:`gaussian_classes` — 3 classes, d = 2    cross_entropy
==================  ============================================  ==========================
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._checks import choice
from ._common import as_data
from .classification import gaussian_classes, logistic_labels
from .regression import Teacher, cubic, polynomial_1d, sine, teacher, teacher_params, teacher_target
from .sparse import SparseMonomials, sparse_monomials, sparse_monomials_target

Dataset = Callable[[int, int], tuple[torch.Tensor, torch.Tensor]]


def _cubic(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return cubic(n, seed=seed)


def _sine(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return sine(n, seed=seed)


def _teacher(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return teacher(n, seed=seed)


def _sparse_monomials(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return sparse_monomials(n, seed=seed)


def _logistic(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return logistic_labels(n, seed=seed)


def _classes(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return gaussian_classes(n, seed=seed)


DATASETS: dict[str, Dataset] = {
    "cubic": _cubic,
    "sine": _sine,
    "teacher": _teacher,
    "sparse-monomials": _sparse_monomials,
    "logistic": _logistic,
    "classes": _classes,
}
"""CLI name → ``(n, seed) -> (X, y)`` with every other argument at its default."""


def make(name: str, n: int, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The data set called ``name`` (a key of :data:`DATASETS`) with n examples.

    Example:
        >>> X, y = make("cubic", 10, seed=1)
        >>> tuple(X.shape), tuple(y.shape)
        ((10, 1), (10,))
    """
    return DATASETS[choice("data set", name, DATASETS)](n, seed)


__all__ = [
    "DATASETS",
    "SparseMonomials",
    "Teacher",
    "as_data",
    "cubic",
    "gaussian_classes",
    "logistic_labels",
    "make",
    "polynomial_1d",
    "sine",
    "sparse_monomials",
    "sparse_monomials_target",
    "teacher",
    "teacher_params",
    "teacher_target",
]
