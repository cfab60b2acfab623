"""losslab: is this loss convex in the parameters, and why (not)?"""

from . import curvature, data, landscape, models
from ._checks import LosslabError
from .convexity import ConvexityReport, check_convexity
from .losses import LOSSES, Loss
from .memory import MemoryBudgetError
from .problem import Problem

__version__ = "0.1.0"

__all__ = [
    "LOSSES",
    "ConvexityReport",
    "Loss",
    "LosslabError",
    "MemoryBudgetError",
    "Problem",
    "__version__",
    "check_convexity",
    "curvature",
    "data",
    "landscape",
    "models",
]
