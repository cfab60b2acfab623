"""The handwritten digits data shipped with scikit-learn (no download): 1,797 images of 8 × 8 pixels, 10 classes.

The UCI "Optical Recognition of Handwritten Digits" test set (Alpaydin & Kaynak 1998), read by
``sklearn.datasets.load_digits``: 1,797 grey-scale images, pixels integers 0 … 16, labels 0 … 9 (about 180
per class). Here the pixels are scaled to [0, 1] (divided by 16) and the examples are put in a random order
from the ``"data"`` stream of the seed, so a split into the first n_train and the rest is a random split.
"""

from __future__ import annotations

import torch

from .._checks import LosslabError, positive_int
from ._common import DTYPE, generator

__all__ = ["DIGITS_SIZE", "digits"]

DIGITS_SIZE = 1797  # images in sklearn.datasets.load_digits


def digits(n: int | None = None, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n of the 1,797 digit images in a random order: X (n, 64) pixels in [0, 1], y (n,) labels 0 … 9.

    Args:
        n: how many examples (1 … 1797); None for all of them.
        seed: seed of the order (its ``"data"`` stream, :mod:`losslab.random_streams`).

    Returns:
        ``(X, y)``: X float64 (n, 64), row-major 8 × 8 pixels divided by 16; y int64 (n,), the labels
        ``cross_entropy`` expects.

    Raises:
        LosslabError: n not an integer in [1, 1797], a bad seed, scikit-learn not installed.

    Example:
        >>> X, y = digits(5, seed=0)
        >>> tuple(X.shape), y.dtype, float(X.max()) <= 1.0
        ((5, 64), torch.int64, True)
    """
    if n is not None:
        n = positive_int("n", n)
        if n > DIGITS_SIZE:
            raise LosslabError(f"expected n <= {DIGITS_SIZE} (the digits data has {DIGITS_SIZE} images), got n={n}")
    order = torch.randperm(DIGITS_SIZE, generator=generator(seed))
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise LosslabError("expected scikit-learn for the digits data, got none installed; pip install scikit-learn") from None
    bunch = load_digits()
    X = torch.as_tensor(bunch.data, dtype=DTYPE) / 16.0
    y = torch.as_tensor(bunch.target, dtype=torch.int64)
    keep = order if n is None else order[:n]
    return X[keep], y[keep]
