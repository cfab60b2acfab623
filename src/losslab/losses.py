"""Losses of the model output, each declaring whether it is convex in that output.

The convexity proofs in :mod:`losslab.convexity` use only the declaration
``convex_in_output``: a loss convex in the model output ``f``, composed with a model affine in
the analysed parameters, is convex in those parameters.

==============  ==========================================  ========  =========================
name            ℓ(f, y), averaged over the n examples         f shape   y
==============  ==========================================  ========  =========================
mse             (f − y)²                                    (n,) or   same shape as f
                                                            (n, k)
bce             softplus(f) − y·f  (f are logits)           (n,)      in [0, 1]
cross_entropy   logsumexp(f) − f[y]  (f are logits)         (n, k)    integer labels in [0, k)
==============  ==========================================  ========  =========================

All three are convex in f: a square; softplus is convex and −y·f linear; logsumexp is convex
and f[y] linear.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._checks import LosslabError, choice, shape

__all__ = ["LOSSES", "Loss", "get_loss"]


@dataclass(frozen=True)
class Loss:
    """A loss ℓ(f, y) averaged over examples, with its declared convexity in the output f."""

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    convex_in_output: bool
    why: str

    def __call__(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.fn(output, y)


def _mse(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((f - y) ** 2).mean()


def _bce_logits(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (F.softplus(f) - y * f).mean()


def _cross_entropy_logits(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (torch.logsumexp(f, dim=-1) - f.gather(-1, y.unsqueeze(-1)).squeeze(-1)).mean()


LOSSES: dict[str, Loss] = {
    "mse": Loss("mse", _mse, True, "(f − y)² is a convex function of f"),
    "bce": Loss("bce", _bce_logits, True, "softplus(f) − y·f is convex in the logit f (softplus'' = σ(1−σ) ≥ 0)"),
    "cross_entropy": Loss(
        "cross_entropy", _cross_entropy_logits, True, "logsumexp(f) − f_y is convex in the logits f (logsumexp is convex)"
    ),
}


def get_loss(name: str | Loss) -> Loss:
    """Look a loss up by name (``"mse"``, ``"bce"``, ``"cross_entropy"``), or pass a Loss through."""
    if isinstance(name, Loss):
        return name
    return LOSSES[choice("loss", name, LOSSES)]


def check_targets(loss: Loss, output_shape: tuple[int, ...], y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Validate and cast the targets ``y`` for ``loss`` given the model's output shape (n, ...)."""
    n = output_shape[0]
    if loss.name == "cross_entropy":
        if len(output_shape) != 2:
            raise LosslabError(
                f"cross_entropy expects the model to output logits of shape (n, k) with k classes, got output shape {output_shape}"
            )
        if y.dtype.is_floating_point:
            if not torch.equal(y, y.round()):
                bad = float(y[y != y.round()][0])
                raise LosslabError(f"cross_entropy expects integer class labels y, got non-integer values such as {bad:g}")
        y = y.to(torch.int64)
        shape("y", y, (n,))
        k = output_shape[1]
        if int(y.min()) < 0 or int(y.max()) >= k:
            raise LosslabError(f"cross_entropy expects labels in [0, {k}), got labels in [{int(y.min())}, {int(y.max())}]")
        return y
    labels = not y.dtype.is_floating_point and y.ndim == 1 and len(output_shape) == 2 and output_shape[1] > 1
    y = y.to(dtype)
    if y.shape != torch.Size(output_shape) and y.ndim == 2 and y.shape[1] == 1 and len(output_shape) == 1:
        y = y[:, 0]
    if labels:  # integer class labels against k outputs: the loss is the likely mistake
        raise LosslabError(
            f"expected y of shape {tuple(output_shape)} for {loss.name}, got integer labels of shape {tuple(y.shape)}; "
            f"for class labels use loss='cross_entropy' (--loss cross_entropy)"
        )
    shape("y", y, output_shape)
    if loss.name == "bce" and (float(y.min()) < 0 or float(y.max()) > 1):
        raise LosslabError(f"bce expects targets y in [0, 1], got values in [{float(y.min()):g}, {float(y.max()):g}]")
    return y
