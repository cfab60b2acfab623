"""Fitting a problem: closed-form least squares for affine models, polynomial kernel ridge, first-order training
for any, and many starts trained at once."""

from .ensemble import ENSEMBLE_OPTIMIZERS, MINIBATCHES, EnsembleTrajectory, train_ensemble
from .kernel_ridge import PolynomialKernelRidge, kernel_ridge, monomial_weights, polynomial_kernel, polynomial_kernel_features
from .least_squares import LeastSquaresResult, check_least_squares, least_squares, least_squares_result
from .tracking import TRACKABLE, CurvatureTrack, TrackingCost, tracking_cost
from .train import OPTIMIZERS, STOP_REASONS, TrainingDiverged, Trajectory, train

__all__ = [
    "ENSEMBLE_OPTIMIZERS",
    "MINIBATCHES",
    "OPTIMIZERS",
    "STOP_REASONS",
    "TRACKABLE",
    "CurvatureTrack",
    "EnsembleTrajectory",
    "LeastSquaresResult",
    "PolynomialKernelRidge",
    "TrackingCost",
    "TrainingDiverged",
    "Trajectory",
    "check_least_squares",
    "kernel_ridge",
    "least_squares",
    "least_squares_result",
    "monomial_weights",
    "polynomial_kernel",
    "polynomial_kernel_features",
    "tracking_cost",
    "train",
    "train_ensemble",
]
