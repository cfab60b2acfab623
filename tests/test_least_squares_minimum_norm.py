"""least_squares with p > n returns the minimum-norm solution Φ⁺(y − f0) (Penrose 1955), on every path.

References: numpy.linalg.pinv, scikit-learn's LinearRegression (scipy's lstsq: minimum norm) and Ridge, and the
defining property — among all minimisers the returned one has the least norm (it is orthogonal to Φ's null space).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.linear_model import LinearRegression, Ridge

from losslab import Problem
from losslab.fit import least_squares, least_squares_result
from losslab.models import Linear, Polynomial, RandomFeatures, TwoLayer

F64 = torch.float64


def _data(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=F64), torch.randn(n, generator=g, dtype=F64)


@pytest.mark.parametrize(("n", "p"), [(5, 12), (10, 11), (3, 200)])
def test_wide_linear_fit_is_the_pseudo_inverse_solution(n, p):
    X, y = _data(n, p, n + p)
    res = least_squares_result(Problem(Linear(p, bias=False), X, y))
    theta = res.theta.numpy()
    np.testing.assert_allclose(theta, np.linalg.pinv(X.numpy()) @ y.numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(theta, LinearRegression(fit_intercept=False).fit(X.numpy(), y.numpy()).coef_, rtol=0, atol=1e-9)
    assert res.rank == n and res.residual < 1e-20  # it interpolates
    # least norm: θ is orthogonal to the null space, so any interpolant θ + z (Xz = 0) is longer
    null = scipy.linalg.null_space(X.numpy())
    assert null.shape[1] == p - n
    assert np.abs(null.T @ theta).max() < 1e-10
    z = null @ np.random.default_rng(0).standard_normal(p - n)
    assert np.linalg.norm(theta + z) > np.linalg.norm(theta)
    np.testing.assert_allclose(X.numpy() @ (theta + z), y.numpy(), atol=1e-9)


def test_ridge_zero_given_explicitly_is_the_same_minimum_norm_fit():
    X, y = _data(6, 20, 1)
    problem = Problem(Linear(20, bias=False), X, y)
    a, b = least_squares_result(problem).theta, least_squares_result(problem, ridge=0.0).theta
    assert torch.equal(a, b)
    np.testing.assert_allclose(a.numpy(), np.linalg.pinv(X.numpy()) @ y.numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("lam", [1e-4, 1e-6, 1e-8])
def test_the_ridge_path_tends_to_the_minimum_norm_fit(lam):
    """λ > 0, p > N takes the dual (Cholesky) path; it matches scikit-learn's Ridge and tends to Φ⁺y as λ → 0⁺."""
    X, y = _data(8, 40, 2)
    theta = least_squares_result(Problem(Linear(40, bias=False), X, y), ridge=lam).theta.numpy()
    ref = Ridge(alpha=8 * lam, fit_intercept=False, solver="svd").fit(X.numpy(), y.numpy()).coef_
    np.testing.assert_allclose(theta, ref, rtol=0, atol=1e-8)
    pinv = np.linalg.pinv(X.numpy()) @ y.numpy()
    s = np.linalg.svd(X.numpy(), compute_uv=False)
    # |θ_λ − Φ⁺y| ≤ nλ/s_min² · |Φ⁺y| (each component s/(s² + nλ) vs 1/s), so the gap shrinks linearly with λ
    assert np.linalg.norm(theta - pinv) <= 8 * lam / s.min() ** 2 * np.linalg.norm(pinv) * (1 + 1e-6) + 1e-10


def test_a_problem_l2_is_a_ridge_not_a_minimum_norm_choice():
    X, y = _data(5, 12, 3)
    theta = least_squares_result(Problem(Linear(12, bias=False), X, y, l2=0.1)).theta.numpy()
    ref = Ridge(alpha=5 * 0.1, fit_intercept=False, solver="svd").fit(X.numpy(), y.numpy()).coef_
    np.testing.assert_allclose(theta, ref, rtol=0, atol=1e-10)
    assert np.linalg.norm(theta - np.linalg.pinv(X.numpy()) @ y.numpy()) > 1e-3


def test_with_a_fixed_group_the_free_part_is_the_pseudo_inverse_of_the_rest():
    """Linear with its intercept held at c0: the free w is Φ⁺(y − c0), and c stays c0."""
    X, y = _data(6, 15, 4)
    c0 = torch.tensor(0.7, dtype=F64)
    problem = Problem(Linear(15), X, y).restrict(["w"], at={"w": torch.zeros(15, dtype=F64), "c": c0})
    params = least_squares(problem)
    np.testing.assert_allclose(params["w"].numpy(), np.linalg.pinv(X.numpy()) @ (y.numpy() - 0.7), rtol=0, atol=1e-10)
    assert float(params["c"]) == 0.7


def test_with_the_intercept_free_the_norm_counts_it_too():
    """Linear(p) with c free and p + 1 > n: the minimum-norm (w, c) is pinv([X, 1]) y, not sklearn's centred fit."""
    X, y = _data(5, 9, 5)
    params = least_squares(Problem(Linear(9), X, y))
    design = np.hstack([X.numpy(), np.ones((5, 1))])
    ref = np.linalg.pinv(design) @ y.numpy()
    np.testing.assert_allclose(np.append(params["w"].numpy(), float(params["c"])), ref, rtol=0, atol=1e-10)


def test_a_restricted_network_head_is_the_pseudo_inverse_of_its_hidden_features():
    """TwoLayer restricted to v (a wide head, width > n): v = pinv(σ(XWᵀ + b)) y."""
    X, y = _data(7, 2, 6)
    model = TwoLayer(2, 30, "tanh")
    p0 = model.init(seed=1)
    v = least_squares(Problem(model, X, y).restrict(["v"], at=p0))["v"].numpy()
    hidden = np.tanh(X.numpy() @ p0["W"].numpy().T + p0["b"].numpy())
    np.testing.assert_allclose(v, np.linalg.pinv(hidden) @ y.numpy(), rtol=0, atol=1e-8)


def test_rank_deficient_tall_features_also_get_the_minimum_norm_solution():
    """n > p but Φ rank-deficient (duplicated random features): still pinv(Φ)y, not just any minimiser."""
    X, y = _data(40, 1, 7)
    rf = RandomFeatures(1, 6, "tanh", seed=2)
    W, b = rf.W.clone(), rf.b.clone()
    W[3:], b[3:] = W[:3], b[:3]  # features 4–6 repeat 1–3
    twin = RandomFeatures(1, 6, "tanh", W=W, b=b)
    res = least_squares_result(Problem(twin, X, y))
    phi = twin.features(X).numpy()
    assert res.rank == 3
    np.testing.assert_allclose(res.theta.numpy(), np.linalg.pinv(phi) @ y.numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.theta.numpy()[:3], res.theta.numpy()[3:], rtol=0, atol=1e-9)  # split evenly


def test_polynomial_interpolation_with_more_coefficients_than_points():
    x = torch.linspace(-1, 1, 4, dtype=F64)
    y = torch.tensor([1.0, -0.5, 0.25, 2.0], dtype=F64)
    coef = least_squares(Problem(Polynomial(1, 7), x, y))["coef"].numpy()
    V = np.vander(x.numpy(), 8, increasing=True)
    np.testing.assert_allclose(coef, np.linalg.pinv(V) @ y.numpy(), rtol=0, atol=1e-9)
