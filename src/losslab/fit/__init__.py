"""Fitting a problem: closed-form least squares for affine models, first-order training for any."""

from .least_squares import LeastSquaresResult, check_least_squares, least_squares, least_squares_result
from .train import OPTIMIZERS, TrainingDiverged, Trajectory, train

__all__ = [
    "OPTIMIZERS",
    "LeastSquaresResult",
    "TrainingDiverged",
    "Trajectory",
    "check_least_squares",
    "least_squares",
    "least_squares_result",
    "train",
]
