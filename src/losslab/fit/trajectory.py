"""What :func:`~losslab.fit.train` returns: the losses, snapshots, stopping reason and curvature records of a run."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import LosslabError
from ..models.base import Params
from .tracking import CurvatureTrack, TrackingCost

__all__ = ["STOP_REASONS", "TrainingDiverged", "Trajectory"]

STOP_REASONS = ("steps", "until_loss", "until_grad_norm", "callback")


@dataclass(frozen=True)
class Trajectory:
    """A training run: full-batch losses and gradient norms, θ at recorded steps, why it stopped, curvature records.

    Attributes:
        losses: float64 (m_L,): the full-batch loss L(θ_t) at the steps ``loss_steps``. Every step for
            full-batch optimisers (gd, and adam without ``batch_size``), where it is computed anyway; the
            recording schedule for minibatch ones (sgd, adam with ``batch_size``).
        loss_steps: int64 (m_L,): the steps t of ``losses`` (θ_0 is step 0); the last is ``stopped_at``.
        grad_norms: float64 (m_L,): ‖∇L(θ_t)‖₂ on all the data at ``loss_steps``.
        steps: int64 (m,): the steps of the snapshots ``thetas``, first 0 and last ``stopped_at``.
        thetas: (m, p): θ at ``steps``, in ``problem.dtype``.
        theta: the final θ (that of step ``stopped_at``), shape (p,).
        params: the final full parameter dict (fixed groups included).
        optimizer: ``"gd"``, ``"sgd"`` or ``"adam"``.
        lr: the learning rate.
        seed: the seed of θ_0 (when drawn), of the minibatch order and of the curvature records' probes.
        batch_size: the minibatch size, or None for full-batch steps.
        stopped: why the run ended: ``"steps"`` (all of them), ``"until_loss"``, ``"until_grad_norm"`` or
            ``"callback"`` (see :func:`~losslab.fit.train`).
        stopped_at: the step of the final θ: ``stopped_at`` updates were made.
        curvature: the :class:`~losslab.fit.tracking.CurvatureTrack` when ``track`` was given, else None.
    """

    losses: torch.Tensor
    loss_steps: torch.Tensor
    grad_norms: torch.Tensor
    steps: torch.Tensor
    thetas: torch.Tensor
    theta: torch.Tensor
    params: Params
    optimizer: str
    lr: float
    seed: int
    batch_size: int | None
    stopped: str = "steps"
    stopped_at: int = 0
    curvature: CurvatureTrack | None = None

    @property
    def final_loss(self) -> float:
        """The full-batch loss at the final θ (the last recorded loss: ``loss_steps[-1]`` is ``stopped_at``)."""
        return float(self.losses[-1])

    @property
    def tracking_cost(self) -> TrackingCost | None:
        """The operator–vector products tracking was to cost, stated before the run (None without ``track``)."""
        return None if self.curvature is None else self.curvature.cost


class TrainingDiverged(LosslabError):
    """The loss or θ became NaN/inf during training.

    Attributes:
        step: the step at which the non-finite value appeared (after ``step`` updates).
        trajectory: the run up to the last finite step (a :class:`Trajectory`).
    """

    def __init__(self, message: str, *, step: int, trajectory: Trajectory):
        super().__init__(message)
        self.step = step
        self.trajectory = trajectory
