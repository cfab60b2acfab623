"""Loss-landscape slices: directions, lines and planes, evaluated in batches, their discrete convexity,
and paths between minima: the barrier on a segment, a trained Bézier curve.

A slice is data: :func:`line` and :func:`plane` return frozen dataclasses with the coordinates,
the losses and the directions; only :mod:`losslab.report` draws them.

Example:
    >>> import torch
    >>> from losslab import Problem
    >>> from losslab.models import TwoLayer
    >>> x = torch.linspace(-1, 1, 20, dtype=torch.float64)[:, None]
    >>> prob = Problem(TwoLayer(1, 8, "tanh"), x, x[:, 0] ** 3)
    >>> s = plane(prob, prob.init(seed=0), steps=5, seed=1)
    >>> s.losses.shape, s.method
    (torch.Size([5, 5]), 'grid')
"""

from .barrier import Barrier, barrier, segment_coordinates
from .bezier import BezierPath, bezier_coordinates, bezier_path, bezier_points
from .directions import (
    EigenDirections,
    PCADirections,
    as_direction,
    eigenvector_directions,
    filter_normalized,
    is_bias,
    pca_directions,
    random_direction,
)
from .discrete import DEFAULT_RTOL, DiscreteConvexity, discrete_convexity
from .evaluate import IMPLEMENTATIONS, Implementation, backend, combine, evaluate_combinations, evaluate_points
from .quadratic import exact_quadratic_reason, quadratic_coefficients, quadratic_values
from .slices import METHODS, LineSlice, PlaneSlice, line, line_coordinates, load_slice, plane, plane_coordinates

__all__ = [
    "DEFAULT_RTOL",
    "IMPLEMENTATIONS",
    "METHODS",
    "Barrier",
    "BezierPath",
    "DiscreteConvexity",
    "EigenDirections",
    "Implementation",
    "LineSlice",
    "PCADirections",
    "PlaneSlice",
    "as_direction",
    "backend",
    "barrier",
    "bezier_coordinates",
    "bezier_path",
    "bezier_points",
    "combine",
    "discrete_convexity",
    "eigenvector_directions",
    "evaluate_combinations",
    "evaluate_points",
    "exact_quadratic_reason",
    "filter_normalized",
    "is_bias",
    "line",
    "line_coordinates",
    "load_slice",
    "pca_directions",
    "plane",
    "plane_coordinates",
    "quadratic_coefficients",
    "quadratic_values",
    "random_direction",
    "segment_coordinates",
]
