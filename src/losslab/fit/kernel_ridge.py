"""Kernel ridge regression with the polynomial kernel k(x, x') = (1 + x·x'/c)^k.

The kernel is an inner product of weighted monomials. Expanding the binomial and then the
multinomial,

    (1 + x·x'/c)^k = Σ_{j=0}^{k} C(k, j) (x·x'/c)^j = Σ_{|α| ≤ k} w_α x^α x'^α,
    w_α = k! / ((k − |α|)! · α_1! ⋯ α_d!) · c^{−|α|},

so k(x, x') = φ(x)·φ(x') with φ_α(x) = √w_α · x^α over all C(d + k, k) multi-indices α with
|α| ≤ k. The kernel spans the same space of functions as the monomial basis of
:class:`~losslab.models.Polynomial` (degree ≤ k), with multinomial weights: a ridge penalty on θ
in φ-coordinates is a *weighted* penalty Σ_α θ_α²/w_α on the plain monomial coefficients.

Kernel ridge regression (Saunders, Gammerman & Vovk 1998; Schölkopf & Smola, *Learning with
Kernels*, §4) minimises, over θ ∈ R^{C(d+k, k)},

    (1/n)‖Φθ − y‖² + λ‖θ‖²,   Φ = φ(X) of shape (n, C(d + k, k)),

— the same objective as :func:`losslab.fit.least_squares_result` with ``ridge = λ`` on the
features φ — without ever forming Φ: by the representer theorem θ = Φᵀa with

    (K + nλ I) a = y,   K = ΦΦᵀ = k(X, X) of shape (n, n),

solved by a Cholesky factorisation, and f(x) = k(x, X)·a. The cost is O(n²d + n³) whatever
C(d + k, k) is (degree 4 in 100 variables: 4,598,126 monomials). With λ = 0 and n ≤ C(d+k, k)
(distinct inputs, K invertible) it is the minimum-‖θ‖ interpolant. scikit-learn's
``KernelRidge(kernel="poly", degree=k, coef0=1, gamma=1/c, alpha=n·λ)`` fits the same function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import LosslabError, as_tensor, finite_float, nonnegative_float, positive_int, shape
from ..memory import DEFAULT_MEMORY_BUDGET, kernel_ridge_bytes, require
from ..models.polynomial import Polynomial

__all__ = ["PolynomialKernelRidge", "kernel_ridge", "monomial_weights", "polynomial_kernel", "polynomial_kernel_features"]

MAX_KERNEL_N = 20_000  # an (n, n) float64 kernel matrix: 3.2 GB
PREDICT_CHUNK_ENTRIES = 2**22  # kernel entries k(x_new, X) built at once when predicting


def _check_degree_scale(degree: object, scale: object) -> tuple[int, float]:
    return positive_int("degree", degree), finite_float("scale", scale, positive=True)


def polynomial_kernel(A: torch.Tensor, B: torch.Tensor, *, degree: int, scale: float) -> torch.Tensor:
    """K[i, j] = (1 + A_i·B_j / scale)^degree, shape (len(A), len(B)); A (m, d), B (n, d).

    Example:
        >>> A = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
        >>> float(polynomial_kernel(A, A, degree=2, scale=5.0)[0, 0])  # (1 + 5/5)² = 4
        4.0
    """
    degree, scale = _check_degree_scale(degree, scale)
    K = torch.addmm(A.new_ones(()), A, B.T, alpha=1.0 / scale)
    return K.pow_(degree)


def monomial_weights(d: int, degree: int, scale: float) -> torch.Tensor:
    """w_α = k!/((k − |α|)! α!) · c^{−|α|} for every α with |α| ≤ k, in :class:`~losslab.models.Polynomial`'s order.

    Shape (C(d + k, k),), float64; Σ_α w_α x^α x'^α = (1 + x·x'/c)^k.

    Example:
        >>> monomial_weights(2, 2, 1.0).tolist()  # 1, x1, x2, x1², x1x2, x2²
        [1.0, 2.0, 2.0, 1.0, 2.0, 1.0]
    """
    d = positive_int("d", d)
    degree, scale = _check_degree_scale(degree, scale)
    alpha = Polynomial(d, degree).exponents.to(torch.float64)
    total = alpha.sum(dim=1)
    log_multinomial = math.lgamma(degree + 1) - torch.lgamma(degree - total + 1) - torch.lgamma(alpha + 1).sum(dim=1)
    return torch.round(torch.exp(log_multinomial)) * scale ** (-total)  # k!/((k − |α|)! α!) is an integer


def polynomial_kernel_features(X: torch.Tensor, *, degree: int, scale: float) -> torch.Tensor:
    """The explicit feature map φ(X) = √w_α · X^α of the kernel, shape (n, C(d + k, k)); φ(A)φ(B)ᵀ = K(A, B).

    Materialises every monomial, so it is only for small d and k (tests, or n·C(d+k, k) that fits
    in memory); :func:`kernel_ridge` never calls it.
    """
    X = as_tensor("X", X)
    shape("X", X, (None, None))
    sqrt_w = monomial_weights(X.shape[1], degree, scale).sqrt().to(X.dtype)
    return Polynomial(X.shape[1], degree).features(X) * sqrt_w


@dataclass(frozen=True)
class PolynomialKernelRidge:
    """A fitted kernel ridge regressor f(x) = Σ_i a_i (1 + x·x_i/c)^k.

    Attributes:
        X: training inputs, float64 (n, d).
        coef: the dual coefficients a = (K + nλI)⁻¹y, float64 (n,).
        degree: k.
        scale: c.
        ridge: λ (the penalty on ‖θ‖² in the mean-squared objective).
    """

    X: torch.Tensor
    coef: torch.Tensor
    degree: int
    scale: float
    ridge: float

    @property
    def n_monomials(self) -> int:
        """C(d + k, k): the dimension of the (implicit) feature space."""
        return math.comb(self.X.shape[1] + self.degree, self.degree)

    def predict(self, X: object) -> torch.Tensor:
        """f(X) for X of shape (m, d): shape (m,), float64, built in chunks of the (m, n) kernel."""
        X = as_tensor("X", X, dtype=torch.float64)
        shape("X", X, (None, self.X.shape[1]))
        rows = max(1, PREDICT_CHUNK_ENTRIES // self.X.shape[0])
        parts = [polynomial_kernel(chunk, self.X, degree=self.degree, scale=self.scale) @ self.coef for chunk in X.split(rows)]
        return torch.cat(parts)


def kernel_ridge(
    X: object, y: object, *, degree: int, scale: float | None = None, ridge: float = 0.0, memory_budget: int = DEFAULT_MEMORY_BUDGET
) -> PolynomialKernelRidge:
    """Fit kernel ridge regression with k(x, x') = (1 + x·x'/c)^k; see the module docstring.

    Args:
        X: inputs, shape (n, d) (n ≤ 20,000: the kernel matrix is n × n).
        y: targets, shape (n,).
        degree: k >= 1.
        scale: c > 0; default d, so that x·x'/c is O(1) for standardised inputs.
        ridge: λ >= 0, the weight of ‖θ‖² next to the mean squared error (sklearn's alpha is n·λ).
        memory_budget: bytes the fit may allocate (default 256 MiB, as a Problem's): the kernel
            matrix and its Cholesky factor, 2·n² float64 values (n ≤ 4,096 by default).

    Returns:
        A :class:`PolynomialKernelRidge` (computed in float64).

    Raises:
        LosslabError: bad shapes or values, or K + nλI not positive definite (λ = 0 with more
            samples than monomials, or repeated inputs) — then pass ``ridge > 0``; a MemoryBudgetError
            when 2·n² float64 values exceed ``memory_budget`` (before the kernel is built).

    Example:
        >>> X = torch.tensor([[-1.0], [0.0], [1.0]], dtype=torch.float64)  # 3 points, 3 monomials 1, x, x²
        >>> fit = kernel_ridge(X, 1 - 2 * X[:, 0] ** 2, degree=2)  # ridge 0: interpolates, recovers 1 − 2x²
        >>> round(float(fit.predict(torch.tensor([[0.5]]))[0]), 8)
        0.5
    """
    X = as_tensor("X", X, dtype=torch.float64)
    shape("X", X, (None, None))
    n, d = X.shape
    y = as_tensor("y", y, dtype=torch.float64)
    shape("y", y, (n,))
    if n > MAX_KERNEL_N:
        raise LosslabError(f"expected at most {MAX_KERNEL_N:,} samples (the kernel matrix is n × n), got n={n:,}; subsample the data")
    degree, scale = _check_degree_scale(degree, d if scale is None else scale)
    ridge = nonnegative_float("ridge", ridge)
    budget = positive_int("memory_budget", memory_budget)
    require(kernel_ridge_bytes(n), budget, f"kernel ridge on n = {n:,} samples (the n × n kernel and its Cholesky factor)",
            "the number of samples n (subsample the data)")
    count = math.comb(d + degree, degree)
    if ridge == 0.0 and n > count:  # rank K ≤ C(d+k, k) < n: Cholesky may "succeed" on rounding noise
        raise LosslabError(
            f"expected n <= C(d+k, k) = {count:,} monomials for ridge=0 (K has rank at most {count:,}), got n={n:,}; "
            "pass ridge > 0, e.g. ridge=1e-6"
        )
    K = polynomial_kernel(X, X, degree=degree, scale=scale)
    K.diagonal().add_(n * ridge)
    chol, info = torch.linalg.cholesky_ex(K)
    if int(info) != 0:
        raise LosslabError(
            f"expected K + nλI to be positive definite, got a singular kernel matrix (n={n} samples, C(d+k, k)={count:,} "
            f"monomials, ridge={ridge:g}: repeated inputs?); pass ridge > 0, e.g. ridge=1e-6"
        )
    coef = torch.cholesky_solve(y[:, None], chol)[:, 0]
    return PolynomialKernelRidge(X=X, coef=coef, degree=degree, scale=scale, ridge=ridge)
