"""Shared helpers of experiments 1–5: 1-D polynomial fits and their exact population errors.

Every target here is a polynomial g(x) = Σ_k c_k x^k (default the cubic x³ − x of
:func:`losslab.data.cubic`) observed with Gaussian noise, x ~ Uniform(−1, 1). A fit of degree k
is the closed-form least-squares solution of the library (``Problem(Polynomial(1, k), X, y)`` and
:func:`losslab.fit.least_squares_result`).

Population errors are integrals over x ~ Uniform(−1, 1). For a polynomial fit of a polynomial
target the integrand (f̂ − g)² is a polynomial, integrated *exactly* by Gauss–Legendre quadrature
with m nodes when its degree is at most 2m − 1 (Golub & Welsch 1969); with m = 64 that covers fits
and targets up to degree 63. The expected squared error on a fresh noisy example is then exactly

    test MSE(f̂) = E_x[(f̂(x) − g(x))²] + σ²      (excess error + noise).

The best degree-k polynomial in this norm is the L2(μ) projection of g; its error is the bias floor
no amount of data can remove (computed by least squares on the quadrature nodes, weighted by √w).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..data import polynomial_1d
from ..fit import LeastSquaresResult, least_squares_result
from ..models import Polynomial
from ..problem import Problem
from .settings import Reals

__all__ = [
    "CUBIC",
    "TRUTH",
    "draw",
    "excess_error",
    "fit",
    "polyval",
    "projection_error",
    "quadrature",
]

CUBIC = (0.0, -1.0, 0.0, 1.0)
"""Coefficients (constant term first) of the default target g(x) = x³ − x."""

class Coefficients(Reals):
    """A polynomial's coefficients, constant term first: finite numbers whose last (the degree's) is nonzero, so that
    the length says the degree (``1,0,2,0`` would be a quadratic written as a cubic, ``0,0`` no target at all)."""

    def ok(self, value):
        return super().ok(value) and value[-1] != 0

    def describe(self):
        return super().describe() + ", the last (highest degree) nonzero"

    def bad_values(self):
        return (*super().bad_values(), (1.0, 0.0))


TRUTH = Coefficients(min_len=1, max_len=21)
"""The settings constraint of a target: 1 to 21 finite coefficients, constant term first, the last nonzero."""

NODES = 64
"""Gauss–Legendre nodes: exact for ∫(f̂ − g)² when f̂ and g have degree ≤ 63."""

MAX_DEGREE = NODES - 1


@functools.lru_cache(maxsize=4)
def quadrature(m: int = NODES) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss–Legendre nodes and weights for the uniform density on [−1, 1] (weights sum to 1), each (m,).

    Cached: callers must not modify the returned tensors in place.

    Example:
        >>> x, w = quadrature(3)
        >>> round(float((w * x**4).sum()), 12)  # E[x⁴] = 1/5 under Uniform(−1, 1)
        0.2
    """
    nodes, weights = np.polynomial.legendre.leggauss(m)
    return torch.from_numpy(nodes), torch.from_numpy(weights / 2)


def polyval(coefs: object, x: torch.Tensor) -> torch.Tensor:
    """Σ_k coefs[k]·x^k by Horner's rule, float64, same shape as x; coefs (K,) or a sequence."""
    c = torch.as_tensor(coefs, dtype=torch.float64)
    out = torch.zeros_like(x, dtype=torch.float64)
    for ck in reversed(c):
        out = out * x + ck
    return out


def draw(n: int, truth: tuple[float, ...], noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training data ``polynomial_1d(n, coefs=truth, noise=noise, seed=seed)``: X (n, 1), y (n,), float64."""
    return polynomial_1d(n, coefs=truth, noise=noise, seed=seed)


def fit(X: torch.Tensor, y: torch.Tensor, degree: int) -> LeastSquaresResult:
    """The closed-form least-squares fit of ``Polynomial(1, degree)`` to (X, y), by the library.

    ``least_squares_result`` solves with LAPACK ``gelsd`` (SVD-based), so a monomial basis that is
    ill-conditioned at high degree still gets the minimum-norm least-squares solution.
    """
    return least_squares_result(Problem(Polynomial(1, degree), X, y))


def excess_error(theta: torch.Tensor, truth: tuple[float, ...]) -> float:
    """E_x[(f̂(x) − g(x))²] for x ~ Uniform(−1, 1), exact: f̂ = Σ θ_k x^k, g = Σ truth_k x^k (degrees ≤ 63)."""
    x, w = quadrature()
    diff = polyval(theta, x) - polyval(truth, x)
    return float((w * diff**2).sum())


def projection_error(truth: tuple[float, ...], degree: int) -> tuple[float, torch.Tensor]:
    """The bias floor min_θ E_x[(Σ_{k≤degree} θ_k x^k − g(x))²] and its minimiser θ (degree + 1,).

    The L2(μ) projection of g onto polynomials of degree ≤ ``degree``, exact: least squares on the
    quadrature nodes weighted by √w is least squares in the exact L2(μ) inner product.

    Example:
        >>> floor, theta = projection_error((0.0, -1.0, 0.0, 1.0), 2)  # x³ − x onto quadratics
        >>> round(floor * 175, 10), [round(float(t), 10) + 0.0 for t in theta]  # 4/175, θ = (0, −2/5, 0)
        (4.0, [0.0, -0.4, 0.0])
    """
    x, w = quadrature()
    root = w.sqrt()
    features = x[:, None] ** torch.arange(degree + 1, dtype=torch.float64)
    theta = torch.linalg.lstsq(root[:, None] * features, (root * polyval(truth, x))[:, None], driver="gelsd").solution[:, 0]
    return excess_error(theta, truth), theta
