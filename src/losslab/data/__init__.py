"""Seeded data generators: every one returns ``(X, y)`` as tensors, X of shape (n, d).

Same seed, same tensors; draws are in float64 from the ``"data"`` stream of the seed (a random
target function — teacher weights, sparse monomials, a multi-index subspace — from its
``"target"`` stream; :mod:`losslab.random_streams`).

==================  ============================================  ==========================
CLI name            generator                                      loss it suits
==================  ============================================  ==========================
cubic               :func:`cubic` — y = x³ − x + noise, d = 1      mse
sine                :func:`sine` — y = sin(x) + noise on [−π, π]   mse
teacher             :func:`teacher` — a random TwoLayer tanh net   mse
sparse-monomials    :func:`sparse_monomials` — d = 20, degree 3    mse
multi-index         :func:`multi_index` — d = 30, y = g(Uᵀx), r = 2  mse
logistic            :func:`logistic_labels` — y ∈ {0, 1}, d = 2    bce
classes             :func:`gaussian_classes` — 3 classes, d = 2    cross_entropy
(Python only)       :func:`digits` — scikit-learn's 8×8 digits   cross_entropy
==================  ============================================  ==========================
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._checks import choice
from ._common import as_data
from .classification import gaussian_classes, logistic_labels
from .digits import DIGITS_SIZE, digits
from .multi_index import LINKS as MULTI_INDEX_LINKS
from .multi_index import MultiIndex, multi_index, multi_index_target
from .regression import Teacher, cubic, polynomial_1d, sine, teacher, teacher_params, teacher_target
from .sparse import SparseMonomials, sparse_monomials, sparse_monomials_target

Dataset = Callable[[int, int], tuple[torch.Tensor, torch.Tensor]]


DATASETS: dict[str, Dataset] = {
    name: (lambda n, seed=0, fn=fn: fn(n, seed=seed))
    for name, fn in {
        "cubic": cubic,
        "sine": sine,
        "teacher": teacher,
        "sparse-monomials": sparse_monomials,
        "logistic": logistic_labels,
        "classes": gaussian_classes,
        "multi-index": lambda n, seed=0: multi_index(n, seed=seed)[:2],
    }.items()
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
    "DIGITS_SIZE",
    "MULTI_INDEX_LINKS",
    "MultiIndex",
    "SparseMonomials",
    "Teacher",
    "as_data",
    "cubic",
    "digits",
    "gaussian_classes",
    "logistic_labels",
    "make",
    "multi_index",
    "multi_index_target",
    "polynomial_1d",
    "sine",
    "sparse_monomials",
    "sparse_monomials_target",
    "teacher",
    "teacher_params",
    "teacher_target",
]
