"""Tests for losslab.fit.least_squares: scikit-learn references, the normal equations, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.preprocessing import PolynomialFeatures

from losslab import LosslabError, Problem
from losslab import data as D
from losslab.fit import least_squares, least_squares_result
from losslab.models import MLP, Linear, Linearized, Module, Polynomial, RandomFeatures, TwoLayer

from references import dense_jacobian

F64 = torch.float64


def _match_columns(model: Polynomial, poly: PolynomialFeatures) -> list[int]:
    """For each of our monomials, the index of the same exponent vector in sklearn's powers_."""
    ours = [tuple(r) for r in model.exponents.tolist()]
    theirs = [tuple(int(a) for a in r) for r in poly.powers_]
    assert sorted(ours) == sorted(theirs)
    return [theirs.index(a) for a in ours]


@pytest.mark.parametrize(("d_in", "degree", "n"), [(1, 3, 60), (1, 5, 200), (2, 2, 80)])
def test_polynomial_matches_sklearn_linear_regression(d_in, degree, n):
    if d_in == 1:
        X, y = D.cubic(n, noise=0.2, seed=1)
    else:
        X, y = D.sparse_monomials(n, d=d_in, degree=2, n_terms=2, noise=0.1, seed=2)
    model = Polynomial(d_in, degree)
    params = least_squares(Problem(model, X, y))
    pred = model.apply(params, X)

    poly = PolynomialFeatures(degree)
    feats = poly.fit_transform(X.numpy())
    ref = LinearRegression().fit(feats, y.numpy())
    np.testing.assert_allclose(pred.numpy(), ref.predict(feats), rtol=0, atol=1e-8)

    order = _match_columns(model, poly)
    ref_coef = ref.coef_.copy()
    ref_coef[list(poly.powers_.sum(axis=1)).index(0)] += ref.intercept_  # sklearn puts the constant in intercept_
    np.testing.assert_allclose(params["coef"].numpy(), ref_coef[order], rtol=0, atol=1e-8)


@pytest.mark.parametrize(("l2", "ridge"), [(0.0, 1e-3), (0.0, 0.5), (0.01, 0.02)])
def test_ridge_matches_sklearn_ridge(l2, ridge):
    """(1/n)‖Φθ − y‖² + λ‖θ‖²  ⇔  ‖Φθ − y‖² + nλ‖θ‖²: sklearn Ridge(alpha=n·λ) without intercept."""
    X, y = D.sparse_monomials(70, d=2, degree=3, n_terms=3, noise=0.1, seed=5)
    model = Polynomial(2, 3)
    params = least_squares(Problem(model, X, y, l2=l2), ridge=ridge)
    poly = PolynomialFeatures(3)
    feats = poly.fit_transform(X.numpy())
    ref = Ridge(alpha=len(y) * (l2 + ridge), fit_intercept=False, solver="svd").fit(feats, y.numpy())
    np.testing.assert_allclose(params["coef"].numpy(), ref.coef_[_match_columns(model, poly)], rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.apply(params, X).numpy(), ref.predict(feats), rtol=0, atol=1e-9)


@pytest.mark.parametrize("lam", [1e-4, 0.3])
def test_ridge_with_more_features_than_outputs_takes_the_dual_form_and_matches_sklearn(lam):
    """p > N: θ* = Φᵀ(ΦΦᵀ + NλI)⁻¹r must equal the primal ridge solution (sklearn, SVD solver)."""
    X, y = D.sparse_monomials(20, d=3, degree=4, n_terms=3, noise=0.1, seed=2)
    model = Polynomial(3, 4)
    assert model.n_params == 35 > len(y)
    res = least_squares_result(Problem(model, X, y), ridge=lam)
    poly = PolynomialFeatures(4)
    feats = poly.fit_transform(X.numpy())
    ref = Ridge(alpha=len(y) * lam, fit_intercept=False, solver="svd").fit(feats, y.numpy())
    np.testing.assert_allclose(res.params["coef"].numpy(), ref.coef_[_match_columns(model, poly)], rtol=0, atol=1e-8)
    assert res.rank == 20
    theta = res.theta
    grad = Problem(model, X, y).grad(theta) + 2 * lam * theta  # the stationarity of L + λ‖θ‖²
    assert float(grad.abs().max()) < 1e-10


def test_wide_multi_output_ridge_matches_sklearn():
    X, _ = D.gaussian_classes(8, d_in=2, k=3, seed=0)
    Y = torch.randn(8, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    model = MLP([2, 30, 3], activation="tanh")
    params0 = model.init(seed=3)
    prob = Problem(model, X, Y).restrict(["W1", "b1"], at=params0)
    assert prob.n_params == 93 > 24
    params = least_squares(prob, ridge=0.05)
    H = torch.tanh(X @ params0["W0"].T + params0["b0"])
    feats = torch.cat([H, torch.ones(8, 1, dtype=F64)], dim=1).numpy()
    ref = Ridge(alpha=8 * 3 * 0.05, fit_intercept=False, solver="svd").fit(feats, Y.numpy())
    np.testing.assert_allclose(params["W1"].numpy(), ref.coef_[:, :30], rtol=0, atol=1e-10)
    np.testing.assert_allclose(params["b1"].numpy(), ref.coef_[:, 30], rtol=0, atol=1e-10)


def test_ridge_multi_output_matches_sklearn_with_n_times_k_scaling():
    """mse averages over all n·k outputs, so the equivalent sklearn alpha is n·k·λ."""
    X, _ = D.gaussian_classes(50, d_in=2, k=3, seed=0)
    Y = torch.randn(50, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    model = MLP([2, 6, 3], activation="tanh")
    params0 = model.init(seed=3)
    prob = Problem(model, X, Y).restrict(["W1", "b1"], at=params0)
    lam = 0.05
    params = least_squares(prob, ridge=lam)
    H = torch.tanh(X @ params0["W0"].T + params0["b0"])
    feats = torch.cat([H, torch.ones(50, 1, dtype=F64)], dim=1).numpy()
    ref = Ridge(alpha=50 * 3 * lam, fit_intercept=False, solver="svd").fit(feats, Y.numpy())
    np.testing.assert_allclose(params["W1"].numpy(), ref.coef_[:, :6], rtol=0, atol=1e-10)
    np.testing.assert_allclose(params["b1"].numpy(), ref.coef_[:, 6], rtol=0, atol=1e-10)
    torch.testing.assert_close(params["W0"], params0["W0"], rtol=0, atol=0)  # fixed groups returned as held


def _linearized_features(net: TwoLayer, params0: dict, X: torch.Tensor) -> torch.Tensor:
    """An independent Φ for Linearized(net, params0): the per-example Jacobian of the network at params0, its
    columns in group order (references.dense_jacobian, on θ split here by the groups' shapes)."""
    shapes = [params0[g].shape for g in net.groups]
    sizes = [params0[g].numel() for g in net.groups]
    theta0 = torch.cat([params0[g].reshape(-1) for g in net.groups])
    return dense_jacobian(lambda t: net.apply({g: s.reshape(sh) for g, s, sh in zip(net.groups, t.split(sizes), shapes)}, X), theta0)


def _cases():
    X, y = D.sine(40, noise=0.1, seed=3)
    net = TwoLayer(1, 8, "tanh")
    p0 = net.init(seed=4)
    rf = RandomFeatures(1, 25, "relu", seed=6)
    poly = Polynomial(1, 4)
    return {
        "polynomial": (Problem(poly, X, y), lambda th: poly.features(X)),
        "random_features": (Problem(rf, X, y), lambda th: rf.features(X)),
        "two_layer_v": (Problem(net, X, y).restrict(["v"], at=p0), lambda th: net.hidden(p0, X)),
        "linearized": (Problem(Linearized(net, p0), X, y), lambda th: _linearized_features(net, p0, X)),
    }


@pytest.mark.parametrize("name", ["polynomial", "random_features", "two_layer_v", "linearized"])
@pytest.mark.parametrize("ridge", [0.0, 1e-2])
def test_normal_equations_and_zero_gradient(name, ridge):
    """At θ*: (1/n)Φᵀ(f − y) + λθ* = 0 — for λ = 0, mean(f·φ_j) = mean(y·φ_j) for every feature j."""
    prob, features = _cases()[name]
    theta = least_squares_result(prob, ridge=ridge).theta
    phi = features(theta)
    f = prob.output(theta)
    n = prob.n
    lhs = phi.T @ (f - prob.y) / n + ridge * theta
    norm = float(torch.linalg.matrix_norm(phi, 2))
    scale = norm * float(prob.y.norm()) / n
    # plus the backward-error bound of a stable least-squares solve, c·u·‖Φ‖(‖Φ‖‖θ‖ + ‖y‖)/n (Higham 2002, §20.3):
    # it dominates when Φ is nearly singular (the linearized net's Jacobian can have cond(Φ) ~ 1e13, ‖θ*‖ ~ 1e11)
    tol = 1e-10 * scale + 100 * torch.finfo(F64).eps * norm * (norm * float(theta.norm()) + float(prob.y.norm())) / n
    assert float(lhs.abs().max()) <= tol
    if ridge == 0.0:
        torch.testing.assert_close((phi * f[:, None]).mean(0), (phi * prob.y[:, None]).mean(0), rtol=0, atol=tol)
    grad = prob.grad(theta) + 2 * ridge * theta  # ∇[L + ridge·‖θ‖²] with L = mean((f−y)²)
    assert float(grad.abs().max()) <= 10 * tol


def test_minimum_norm_solution_when_underdetermined():
    """p > n: many interpolants; gelsd returns the one of least norm, pinv(Φ)·y."""
    X, y = D.sine(15, noise=0.0, seed=0)
    rf = RandomFeatures(1, 60, "tanh", seed=1)
    res = least_squares_result(Problem(rf, X, y))
    phi = rf.features(X).numpy()
    np.testing.assert_allclose(res.theta.numpy(), np.linalg.pinv(phi) @ y.numpy(), rtol=0, atol=1e-8)
    assert res.rank == 15
    assert res.residual < 1e-20
    np.testing.assert_allclose(res.features.numpy(), phi, rtol=0, atol=1e-14)


def test_theta0_selects_the_minimiser_nearest_to_it():
    X, y = D.sine(10, noise=0.0, seed=0)
    rf = RandomFeatures(1, 30, "tanh", seed=1)
    prob = Problem(rf, X, y)
    theta0 = prob.init(seed=9)
    theta = least_squares_result(prob, theta0=theta0).theta
    phi = rf.features(X)
    delta = theta - theta0
    # interpolates, and the move from θ0 lies in the row space of Φ (orthogonal to its null space)
    torch.testing.assert_close(phi @ theta, y, rtol=0, atol=1e-9)
    proj = phi.T @ torch.linalg.lstsq(phi.T, delta[:, None], driver="gelsd").solution[:, 0]
    torch.testing.assert_close(proj, delta, rtol=0, atol=1e-8)


def test_float32_problem_is_solved_in_float64_and_cast_back():
    X, y = D.cubic(100, seed=0)
    p64 = least_squares(Problem(Polynomial(1, 3), X, y))
    p32 = least_squares(Problem(Polynomial(1, 3), X.float(), y.float()))
    assert p32["coef"].dtype == torch.float32
    torch.testing.assert_close(p32["coef"].double(), p64["coef"], rtol=0, atol=1e-5)


def test_diagnostics():
    X, y = D.cubic(50, noise=0.0, seed=0)
    res = least_squares_result(Problem(Polynomial(1, 3), X, y, l2=0.0))
    assert res.rank == 4 and res.ridge == 0.0
    assert res.residual < 1e-25 and res.loss < 1e-25
    np.testing.assert_allclose(res.theta.numpy(), [0.0, -1.0, 0.0, 1.0], atol=1e-10)
    res = least_squares_result(Problem(Polynomial(1, 3), X, y, l2=0.1), ridge=0.2)
    assert res.ridge == pytest.approx(0.3)
    assert res.features.shape == (50, 4) and res.offset.shape == (50,)


def test_rank_deficient_features_are_detected():
    X = torch.ones(20, 1, dtype=F64)  # every monomial is the constant 1
    res = least_squares_result(Problem(Polynomial(1, 3), X, 2 * torch.ones(20, dtype=F64)))
    assert res.rank == 1
    np.testing.assert_allclose(res.theta.numpy(), np.full(4, 0.5), atol=1e-12)  # minimum norm: spread evenly


def _refusals():
    X, y = D.cubic(20, seed=0)
    Xb, yb = D.logistic_labels(20, seed=0)
    Xc, yc = D.gaussian_classes(20, seed=0)
    net = torch.nn.Sequential(torch.nn.Linear(1, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)).double()
    two = Problem(TwoLayer(1, 4, "tanh"), X, y)
    return [
        (two, r"affine only in \['v'\]; restrict to groups \['v'\] with problem.restrict\(\['v'\], at=params\)"),
        (two.restrict(["W", "b"]), r"none of them is free here: fit groups \['v'\] with problem.full\(\)"),
        (Problem(Linear(2, output="sigmoid"), Xb, yb), r"with a sigmoid output .*use losslab.fit.train"),
        (Problem(Linear(2), Xb, yb, loss="bce"), r"expects the squared loss 'mse', got loss 'bce'.*losslab.fit.train"),
        (Problem(MLP([2, 4, 3]), Xc, yc, loss="cross_entropy"), r"got loss 'cross_entropy'"),
        (Problem(Module(net), X, y), r"which is affine only in \['2.weight', '2.bias'\]; restrict to groups"),
    ]


@pytest.mark.parametrize("case", range(6))
def test_refuses_problems_without_a_closed_form(case):
    prob, match = _refusals()[case]
    with pytest.raises(LosslabError, match=match):
        least_squares(prob)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ridge": -1.0}, r"got ridge=-1.0"),
        ({"ridge": "a"}, r"got ridge='a'"),
        ({"theta0": [1.0, 2.0]}, r"expected theta0 of shape \(4,\)"),
    ],
)
def test_bad_arguments(kwargs, match):
    X, y = D.cubic(20, seed=0)
    with pytest.raises(LosslabError, match=match):
        least_squares(Problem(Polynomial(1, 3), X, y), **kwargs)


def test_not_a_problem():
    with pytest.raises(LosslabError, match=r"expected a losslab.Problem, got dict"):
        least_squares({})
