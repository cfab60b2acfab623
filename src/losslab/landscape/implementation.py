"""How many parameter points are evaluated: the explicit ``implementation=`` of :mod:`losslab.landscape.evaluate`."""

from __future__ import annotations

from .._enums import StrEnum

__all__ = ["IMPLEMENTATIONS", "Implementation"]


class Implementation(StrEnum):
    """An evaluation path of :func:`~losslab.landscape.evaluate_points` (see :mod:`losslab.landscape.evaluate`).

    A str: ``implementation="vmap"`` and ``implementation=Implementation.VMAP`` are the same choice.
    """

    AUTO = "auto"  # chosen by :func:`~losslab.landscape.backend`
    LAYERS = "layers"  # the K-point kernel of :mod:`losslab.landscape.fast`, points batched
    LAYERS_PER_POINT = "layers per point"  # the same forward, a loop over points
    VMAP = "vmap"  # Problem.loss_batch: torch.func.vmap in memory-budget chunks
    PER_POINT = "per point"  # one forward per point (any model)


IMPLEMENTATIONS = tuple(i.value for i in Implementation)  # the values, as plain strings
