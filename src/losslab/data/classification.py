"""Classification data: logistic-teacher binary labels (for bce) and Gaussian classes (for cross_entropy)."""

from __future__ import annotations

import torch

from .._checks import positive_int
from ._common import DTYPE, finite_float, generator

__all__ = ["gaussian_classes", "logistic_labels"]


def logistic_labels(n: int, *, d_in: int = 2, scale: float = 3.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary labels from a logistic teacher: x ~ N(0, I), y ~ Bernoulli(σ(w*·x)).

    The teacher direction w* is uniform on the sphere of radius ``scale`` (larger ``scale``:
    cleaner labels, closer to separable). Labels are float 0./1., the targets ``bce`` expects.

    Args:
        n: number of examples (>= 1).
        d_in: input dimension (>= 1).
        scale: norm of the teacher weights ‖w*‖ (> 0).
        seed: seed of the generator (its ``"data"`` stream, :mod:`losslab.random_streams`).

    Returns:
        ``(X, y)``: float64 tensors of shapes (n, d_in) and (n,), y in {0., 1.}.

    Example:
        >>> X, y = logistic_labels(6, d_in=3)
        >>> tuple(X.shape), sorted(set(y.tolist())) in ([0.0], [1.0], [0.0, 1.0])
        ((6, 3), True)
    """
    n = positive_int("n", n)
    d_in = positive_int("d_in", d_in)
    scale = finite_float("scale", scale, positive=True)
    g = generator(seed)
    w = torch.randn(d_in, generator=g, dtype=DTYPE)
    w = scale * w / w.norm()
    X = torch.randn(n, d_in, generator=g, dtype=DTYPE)
    u = torch.rand(n, generator=g, dtype=DTYPE)
    return X, (u < torch.sigmoid(X @ w)).to(DTYPE)


def gaussian_classes(n: int, *, d_in: int = 2, k: int = 3, separation: float = 2.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """k Gaussian blobs: class means μ_c ~ N(0, separation²·I), x | y=c ~ N(μ_c, I).

    Labels are balanced: each class has ⌊n/k⌋ or ⌈n/k⌉ examples (every class appears when
    n ≥ k), in random order.

    Args:
        n: number of examples (>= 1).
        d_in: input dimension (>= 1).
        k: number of classes (>= 2).
        separation: standard deviation of the class means (> 0).
        seed: seed of the generator (its ``"data"`` stream, :mod:`losslab.random_streams`).

    Returns:
        ``(X, y)``: X float64 (n, d_in); y int64 (n,) with labels in [0, k).

    Example:
        >>> X, y = gaussian_classes(9, k=3)
        >>> y.dtype, torch.bincount(y).tolist()
        (torch.int64, [3, 3, 3])
    """
    n = positive_int("n", n)
    d_in = positive_int("d_in", d_in)
    k = positive_int("k", k, minimum=2)
    separation = finite_float("separation", separation, positive=True)
    g = generator(seed)
    means = separation * torch.randn(k, d_in, generator=g, dtype=DTYPE)
    y = torch.randperm(n, generator=g) % k
    X = means[y] + torch.randn(n, d_in, generator=g, dtype=DTYPE)
    return X, y
