"""Minibatches for first-order training: the batch size an optimiser takes, and the index stream.

Shared by :func:`~losslab.fit.train` (one start) and :func:`~losslab.fit.train_ensemble` (many
starts at once), so that both draw the same batches from the same seed.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .._checks import LosslabError

__all__ = ["DEFAULT_SGD_BATCH", "batch_indices", "minibatch_size"]

DEFAULT_SGD_BATCH = 32


def minibatch_size(optimizer: str, batch_size: object, n: int) -> int | None:
    """The minibatch size ``optimizer`` steps with on n points, or None for full-batch steps.

    ``batch_size=None`` means full batch for gd and adam, ``min(32, n)`` for sgd; an explicit
    size must be an integer in [1, n], and gd accepts only n.
    """
    if batch_size is None:
        return min(DEFAULT_SGD_BATCH, n) if optimizer == "sgd" else None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= n:
        raise LosslabError(f"expected batch_size to be an integer in [1, n={n}], got batch_size={batch_size!r}")
    if optimizer == "gd" and batch_size != n:
        raise LosslabError(
            f"gd takes full-batch steps: expected batch_size=None (or n={n}), got batch_size={batch_size}; "
            "use optimizer='sgd' for minibatches"
        )
    return None if optimizer == "gd" else batch_size


def batch_indices(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches forever, int64 tensors of shape (≤ batch_size,): each epoch a fresh random
    permutation of range(n) from ``generator``, cut into consecutive batches (the last one short)."""
    while True:
        yield from torch.randperm(n, generator=generator).split(batch_size)
