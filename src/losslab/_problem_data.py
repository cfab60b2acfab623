"""The data side of a :class:`~losslab.problem.Problem`: batches prepared for its device, dtype and loss."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ._checks import LosslabError
from .batches import Batch, map_tensors

__all__ = ["ProblemData"]


class ProblemData:
    """Methods of :class:`~losslab.problem.Problem` that read its data (``self.data``, a :class:`~losslab.batches.Batches`)."""

    def prepare(self, batch: Batch) -> Batch:
        """A batch on this problem's device: floating inputs in its dtype, targets as the loss reads them."""
        dev, dt = self.device, self.dtype
        cast_all = self.model.float_inputs  # built-in models read numbers; a Module keeps integer ids

        def cast(t: torch.Tensor) -> torch.Tensor:
            t = t.to(dev, non_blocking=True)
            return t.to(dt) if cast_all or t.is_floating_point() else t

        inputs = map_tensors(batch.inputs, cast)
        column = isinstance(inputs, torch.Tensor) and inputs.ndim == 1 and (cast_all or inputs.is_floating_point())
        if column and self.model.d_in in (1, None):
            inputs = inputs[:, None]
        y = batch.y.to(dev, non_blocking=True)
        if self.loss_fn.name == "cross_entropy":
            y = y.to(torch.int64)
        else:
            y = y.to(dt)
            if y.ndim == 2 and y.shape[1] == 1 and self._out_ndim == 1:
                y = y[:, 0]
        return Batch(inputs, y, batch.size)

    def batches(self) -> Iterator[Batch]:
        """The data, batch by batch, on :attr:`device` (floating inputs in :attr:`dtype`)."""
        if self.data.cached is not None:
            yield from self.data.cached  # stored prepared
            return
        for b in self.data:
            yield self.prepare(b)

    def _weights(self) -> Iterator[tuple[Batch, float | None]]:
        """(batch, n_b / n) pairs; the weight is None when there is one batch (nothing to weight)."""
        one = self.data.count == 1
        for b in self.batches():
            yield b, (None if one else b.size / self.n)

    @property
    def n(self) -> int:
        """Number of examples."""
        return self.data.n

    @property
    def X(self) -> torch.Tensor:
        """The inputs, for data given as one in-memory tensor (a multi-batch problem has none: use :meth:`batches`)."""
        return self._single().inputs

    @property
    def y(self) -> torch.Tensor:
        """The targets, for data given as one in-memory batch (see :attr:`X`)."""
        return self._single().y

    def _single(self) -> Batch:
        if self.data.cached is None or self.data.count != 1:
            raise LosslabError(
                f"expected a problem with its data in one in-memory batch, got {self.data.origin}; "
                "iterate problem.batches() instead of reading problem.X / problem.y"
            )
        return self.data.cached[0]

