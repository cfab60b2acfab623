"""Helpers of the feature-learning experiment: the fits it compares and the overlap measures (no drawing).

Every fit returns its predictions on a test set and its training mean squared error; errors are
reported relative to the target's variance, err = mean((f̂ − f*)²) / Var(f*) on fresh inputs, so
predicting the mean scores ≈ 1 and a perfect fit 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .. import Problem
from ..fit import least_squares_result, train
from ..fit.kernel_ridge import kernel_ridge, monomial_weights
from ..models import Polynomial, RandomFeatures, TwoLayer

if TYPE_CHECKING:
    from .feature_learning import FeatureLearningSettings

F64 = torch.float64

MODELS = (("linear", "linear (d + 1 features)"), ("monomials", "all monomials, degree k (min-norm)"),
          ("kernel_ridge", "same basis, kernel ridge λ"), ("random_features", "random features"),
          ("network", "two-layer network (trained)"))
"""(key, label) of the five models, in the order of the table and the figure; "degree k" is filled in with the degree."""


class WeightedMonomials(Polynomial):
    """The monomials of degree ≤ k scaled by √w_α, the explicit features of the kernel (1 + x·x'/c)^k.

    Linear in ``coef`` like :class:`~losslab.models.Polynomial` (same span, same affine structure);
    least squares on these features and :func:`~losslab.fit.kernel_ridge.kernel_ridge` with the
    same ridge are the same fit, computed in the primal and in the dual.
    """

    def __init__(self, d_in: int, degree: int, scale: float):
        super().__init__(d_in, degree)
        self.scale = float(scale)
        self.sqrt_weights = monomial_weights(d_in, degree, scale).sqrt()

    def features(self, X: torch.Tensor) -> torch.Tensor:
        return super().features(X) * self.sqrt_weights.to(X.dtype)

    def describe(self) -> str:
        return f"WeightedMonomials(d_in={self.d_in}, degree={self.degree}, scale={self.scale:g}): {self.n_params} features"


@dataclass(frozen=True)
class Fit:
    """One model fitted on n samples: test predictions (m,), training MSE, and how it was computed."""

    test_pred: torch.Tensor
    train_mse: float
    method: str


def relative_error(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """mean((pred − truth)²) / Var(truth): 0 is perfect, ≈ 1 is predicting the mean."""
    pred, truth = pred.to(F64), truth.to(F64)
    return float(((pred - truth) ** 2).mean() / truth.var(unbiased=False))


def fit_linear(X: torch.Tensor, y: torch.Tensor, X_test: torch.Tensor) -> Fit:
    """Least squares on the d + 1 features 1, x_1, …, x_d (a Polynomial of degree 1)."""
    model = Polynomial(X.shape[1], 1)
    res = least_squares_result(Problem(model, X, y))
    return Fit(model.apply(res.params, X_test), res.residual, "least squares, d + 1 features")


def fit_monomials(X: torch.Tensor, y: torch.Tensor, X_test: torch.Tensor, *, degree: int, scale: float,
                  max_feature_entries: int) -> Fit:
    """Ridgeless least squares on all C(d+k, k) weighted monomials: primal if n·C(d+k, k) fits, else the kernel form.

    With n < C(d+k, k) both give the minimum-norm interpolant of the samples.
    """
    n, d = X.shape
    count = math.comb(d + degree, degree)
    if n * count <= max_feature_entries:
        model = WeightedMonomials(d, degree, scale)
        res = least_squares_result(Problem(model, X, y))
        return Fit(model.apply(res.params, X_test), res.residual, f"materialised {n}×{count:,} features")
    fit = kernel_ridge(X, y, degree=degree, scale=scale, ridge=0.0)
    train_mse = float(((fit.predict(X) - y) ** 2).mean())
    return Fit(fit.predict(X_test), train_mse, f"kernel form ({n}×{n} Gram matrix)")


def fit_kernel_ridge(X: torch.Tensor, y: torch.Tensor, X_test: torch.Tensor, *, degree: int, scale: float, ridge: float) -> Fit:
    """Kernel ridge regression with (1 + x·x'/c)^k and ridge λ (the same basis, regularised)."""
    fit = kernel_ridge(X, y, degree=degree, scale=scale, ridge=ridge)
    return Fit(fit.predict(X_test), float(((fit.predict(X) - y) ** 2).mean()), f"kernel ridge, λ = {ridge:g}")


def fit_random_features(X: torch.Tensor, y: torch.Tensor, X_test: torch.Tensor, settings: FeatureLearningSettings,
                        seed: int) -> Fit:
    """Ridge least squares (λ = ``settings.l2``) on ``settings.rf_width`` fixed random features σ(w_i·x + b_i)
    (:class:`~losslab.models.RandomFeatures` with ``settings.activation``)."""
    width = settings.rf_width
    model = RandomFeatures(X.shape[1], width, settings.activation, seed=seed)
    res = least_squares_result(Problem(model, X, y), ridge=settings.l2)
    return Fit(model.apply(res.params, X_test), res.residual, f"ridge on {width} random features")


def train_network(X: torch.Tensor, y: torch.Tensor, X_test: torch.Tensor, settings: FeatureLearningSettings,
                  seed: int) -> tuple[Fit, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Full-batch Adam on TwoLayer (with output bias) in float32, loss (1/n)‖f − y‖² + l2·‖θ‖².

    ``settings`` gives width, activation, lr, steps and l2. Returns the fit, the initial parameters and the
    trained parameters (float64 copies).
    """
    s = settings
    net = TwoLayer(X.shape[1], s.width, s.activation, out_bias=True)
    problem = Problem(net, X.to(torch.float32), y.to(torch.float32), l2=s.l2)
    run = train(problem, optimizer="adam", lr=s.lr, steps=s.steps, seed=seed)
    start = {k: v.to(F64) for k, v in net.init(seed=seed, dtype=torch.float32).items()}
    end = {k: v.detach().to(F64) for k, v in run.params.items()}
    train_mse = float(((net.apply(end, X) - y) ** 2).mean())
    return Fit(net.apply(end, X_test), train_mse, f"Adam, {s.steps} steps"), start, end


# ---- where the first layer points -------------------------------------------------------------


def subspace_fraction(W: torch.Tensor, U: torch.Tensor) -> float:
    """‖W U‖_F / ‖W‖_F: the share (in norm) of the first-layer weights W (m, d) inside span(U), U (d, r) orthonormal.

    For W with i.i.d. Gaussian entries E[‖WU‖²_F/‖W‖²_F] = r/d exactly (rows are isotropic), so at a
    random init it is ≈ √(r/d); 1 means every row of W lies in the hidden subspace.
    """
    return float(torch.linalg.matrix_norm(W @ U) / torch.linalg.matrix_norm(W))


def unit_overlaps(W: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """‖Uᵀw_j‖ / ‖w_j‖ for every hidden unit j: shape (m,)."""
    return (W @ U).norm(dim=1) / W.norm(dim=1)


def singular_overlap(W: torch.Tensor, U: torch.Tensor) -> float:
    """√(‖V_rᵀU‖²_F / r), V_r the top-r right singular vectors of W: the RMS cosine of the principal angles."""
    r = U.shape[1]
    top = torch.linalg.svd(W, full_matrices=False).Vh[:r]
    return float(torch.sqrt((top @ U).norm() ** 2 / r))


def gaussian_nodes(points: int = 40, half_width: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for E[h(z)], z ~ N(0, 1): Gauss–Legendre with ``points`` nodes on each of [−L, 0] and [0, L].

    Splitting at 0 keeps the rule accurate to ~1e-12 for h smooth on each half-line (relu kinks at 0 included);
    the Gaussian mass beyond L = 10 is below 1e-22.
    """
    x, w = np.polynomial.legendre.leggauss(points)
    z = half_width * (x + 1) / 2
    w = w * half_width / 2 * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    return np.concatenate([-z[::-1], z]), np.concatenate([w[::-1], w])


def linear_floor(g, r: int, points: int = 40) -> float:
    """1 − ‖E[z g(z)]‖² / Var g(z), z ~ N(0, I_r): the relative error of the best affine function of x.

    For x ~ N(0, I_d) and f* = g(Uᵀx), the best affine predictor is E g + E[z g]ᵀUᵀx; what is left is the
    part of g no linear basis can fit, however many samples. A product rule of :func:`gaussian_nodes`,
    (2·points)^r nodes, accurate for g smooth on each orthant.
    """
    nodes, weights = gaussian_nodes(points)
    Z = torch.tensor(np.stack([gr.ravel() for gr in np.meshgrid(*([nodes] * r), indexing="ij")], axis=1), dtype=F64)
    w = torch.tensor(np.prod(np.meshgrid(*([weights] * r), indexing="ij"), axis=0).ravel(), dtype=F64)
    values = g(Z)
    mean = (w * values).sum()
    var = (w * (values - mean) ** 2).sum()
    linear = (w[:, None] * Z * values[:, None]).sum(dim=0)
    return float(1 - (linear**2).sum() / var)
