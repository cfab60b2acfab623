"""Curvature of a loss: Hessian, Gauss–Newton and H − GGN operators, Lanczos, trace, density, critical points.

Everything works on a :class:`~losslab.Problem` at a point θ (restrict the problem to analyse
some parameter groups only) or on any :class:`CurvatureOperator`; nothing forms the Hessian
except ``to_dense()``, which is for tiny models and tests.
"""

from .classify import KINDS, CriticalKind, CriticalPointResult, classify
from .density import SpectralDensity, spectral_density
from .eigs import WHICH, EigenResult, eigs
from .operator import (
    CurvatureOperator,
    DifferenceOperator,
    GGNOperator,
    HessianOperator,
    MatrixOperator,
    NonlinearityOperator,
    as_operator,
    loss_output,
    nonlinearity_curvature,
)
from .trace import TraceEstimate, frobenius_norm, hutchinson, hutchpp, xtrace

__all__ = [
    "KINDS",
    "WHICH",
    "CriticalKind",
    "CriticalPointResult",
    "CurvatureOperator",
    "DifferenceOperator",
    "EigenResult",
    "GGNOperator",
    "HessianOperator",
    "MatrixOperator",
    "NonlinearityOperator",
    "SpectralDensity",
    "TraceEstimate",
    "as_operator",
    "classify",
    "eigs",
    "frobenius_norm",
    "hutchinson",
    "hutchpp",
    "loss_output",
    "nonlinearity_curvature",
    "spectral_density",
    "xtrace",
]
