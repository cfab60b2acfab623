"""Kernels of a network: the empirical neural tangent kernel, and kernel regression with it."""

from .ntk import empirical_ntk, ntk_bytes
from .regression import NTKRegression, ntk_regression

__all__ = ["NTKRegression", "empirical_ntk", "ntk_bytes", "ntk_regression"]
