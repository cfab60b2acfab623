"""Experiment 6 (feature-learning), kernel ridge and the multi-index data, checked against independent references.

References: brute-force enumeration of exponent vectors (itertools.product), scikit-learn's KernelRidge,
PolynomialFeatures and Ridge, numpy/scipy least squares and solves on redrawn data (the experiment draws
U and the training/test inputs with ``multi_index(..., seed=seed, sample_seed=child_seed(seed, "data", 0 / 1))``,
the random features with ``RandomFeatures(seed=seed)`` and the network with ``init(seed=seed)``),
scipy.integrate.quad for the linear bias floor, and
scipy.linalg.subspace_angles for the overlap of the trained weights with the hidden directions.
"""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import torch
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import Ridge
from sklearn.metrics.pairwise import polynomial_kernel as sk_polynomial_kernel
from sklearn.preprocessing import PolynomialFeatures

from losslab import LosslabError, Problem
from losslab.data.multi_index import LINKS, multi_index, multi_index_target
from losslab.experiments import _feature_learning_models as M
from losslab.experiments import get_experiment, run_experiment
from losslab.fit import least_squares
from losslab.fit.kernel_ridge import kernel_ridge, monomial_weights, polynomial_kernel, polynomial_kernel_features
from losslab.models import Polynomial, RandomFeatures, TwoLayer, monomial_exponents
from losslab.random_streams import child_seed

from _helpers import assert_evidence_shows_values

NAME = "feature-learning"
F64 = torch.float64


@pytest.fixture(scope="module")
def result(quick_result):
    return quick_result(NAME)


def quick_data(result):
    """The quick run's training pool, test inputs and clean test targets at seed 0, redrawn as numpy arrays."""
    s = result.settings
    kw = {"d": s["d"], "r": s["hidden_dims"], "link": s["link"], "seed": 0}
    X, y, U = multi_index(s["n_values"][-1], noise=s["noise"], sample_seed=child_seed(0, "data", 0), **kw)
    X_test, f_test, _ = multi_index(s["n_test"], noise=0.0, sample_seed=child_seed(0, "data", 1), **kw)
    return X.numpy(), y.numpy(), X_test.numpy(), f_test.numpy(), U.numpy()


def rel_error(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean((pred - truth) ** 2) / np.var(truth))


def brute_force_count(d: int, k: int) -> int:
    """Exponent vectors α ∈ {0..k}^d with |α| ≤ k, counted one by one."""
    return sum(1 for alpha in itertools.product(range(k + 1), repeat=d) if sum(alpha) <= k)


# ---- the quick run ------------------------------------------------------------------------------------


KEYS = ("fixed-basis-explodes", "network-lowest-error", "monomials-interpolate", "linear-at-bias-floor",
        "network-finds-hidden-directions")


def test_claims_hold_and_evidence_has_numbers(result):
    assert {c.key for c in result.claims} == set(KEYS)
    for key in KEYS:
        c = result.claim(key)
        assert c.holds, f"{c.statement} — {c.evidence}"
        assert_evidence_shows_values(c)
    assert {f.name for f in result.figures} == {"error-vs-n", "overlap"}
    assert all(f.png is not None and len(f.png) < 150_000 and f.overlaps == () for f in result.figures)


def test_the_claims_monomial_count_is_counted_not_taken_from_the_formula():
    from losslab.experiments.feature_learning import count_exponents

    for d, k in [(1, 0), (1, 4), (2, 3), (3, 4), (5, 2), (6, 3)]:
        assert count_exponents(d, k) == brute_force_count(d, k)
    assert count_exponents(100, 4) == 4_598_126 and count_exponents(1000, 4) == 42_084_793_751


def test_count_table_matches_brute_force_enumeration(result):
    table = result.tables[0]
    rows = {row[0]: row[1:] for row in table.rows}
    for d, k in itertools.product((1, 2, 3, 4), (1, 2, 3, 4)):
        count = brute_force_count(d, k)
        assert count == math.comb(d + k, k) == Polynomial(d, k).n_params == monomial_exponents(d, k).shape[0]
    assert list(rows[1]) == [brute_force_count(1, k) for k in (1, 2, 3, 4)]
    # d = 10: count multisets of variables of each size j ≤ k, one by one (another enumeration).
    assert list(rows[10]) == [sum(1 for j in range(k + 1) for _ in itertools.combinations_with_replacement(range(10), j))
                              for k in (1, 2, 3, 4)]
    assert rows[100][3] == result.numbers["monomial_counts"]["d=100,k=4"] == 104 * 103 * 102 * 101 // 24 == 4_598_126
    assert rows[1000][3] == math.prod(range(1001, 1005)) // 24


def test_linear_fit_and_floor_against_numpy_and_quadrature(result):
    X, y, X_test, f_test, _ = quick_data(result)
    n = result.settings["n_values"][-1]
    A = np.hstack([np.ones((n, 1)), X[:n]])
    coef = np.linalg.lstsq(A, y[:n], rcond=None)[0]
    ref = rel_error(np.hstack([np.ones((len(X_test), 1)), X_test]) @ coef, f_test)
    assert result.numbers["test_errors"]["linear"][-1] == pytest.approx(ref, rel=1e-8)
    # tanh-sum with r = 2: floor = 1 − (E[z tanh 2z])² / E[tanh² 2z], E[z tanh 2z] = 2 E[sech² 2z] (Stein).
    assert result.settings["link"] == "tanh-sum" and result.settings["hidden_dims"] == 2
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    slope = scipy.integrate.quad(lambda z: 2 * (1 - math.tanh(2 * z) ** 2) * phi(z), -np.inf, np.inf, epsabs=1e-13)[0]
    var = scipy.integrate.quad(lambda z: math.tanh(2 * z) ** 2 * phi(z), -np.inf, np.inf, epsabs=1e-13)[0]
    assert result.numbers["linear_floor"] == pytest.approx(1 - slope**2 / var, abs=1e-9)


def test_monomial_fits_against_sklearn_features_and_scipy_kernel_solve(result):
    """n = 250 (materialised) against sklearn's PolynomialFeatures with multinomial weights; n = 1000 (kernel form) by scipy."""
    X, y, X_test, f_test, _ = quick_data(result)
    s = result.settings
    k, c = s["degree"], float(s["d"])
    assert result.numbers["monomial_methods"][0].startswith("materialised")
    assert result.numbers["monomial_methods"][1].startswith("kernel form")
    n0, n1 = s["n_values"][0], s["n_values"][1]
    poly = PolynomialFeatures(k)
    powers = poly.fit(X[:2]).powers_
    weights = np.array([math.factorial(k) / (math.factorial(k - a.sum()) * math.prod(math.factorial(int(e)) for e in a))
                        * c ** -float(a.sum()) for a in powers])
    Phi, Phi_test = poly.transform(X[:n0]) * np.sqrt(weights), poly.transform(X_test) * np.sqrt(weights)
    theta = np.linalg.lstsq(Phi, y[:n0], rcond=None)[0]  # minimum-norm interpolant (n < p)
    assert result.numbers["test_errors"]["monomials"][0] == pytest.approx(rel_error(Phi_test @ theta, f_test), rel=1e-6)
    K = sk_polynomial_kernel(X[:n1], degree=k, gamma=1 / c, coef0=1)
    a = scipy.linalg.solve(K, y[:n1], assume_a="pos")
    pred = sk_polynomial_kernel(X_test, X[:n1], degree=k, gamma=1 / c, coef0=1) @ a
    assert result.numbers["test_errors"]["monomials"][1] == pytest.approx(rel_error(pred, f_test), rel=1e-5)


def test_kernel_ridge_and_random_features_against_sklearn(result):
    X, y, X_test, f_test, _ = quick_data(result)
    s = result.settings
    n, lam, c = s["n_values"][1], s["l2"], float(s["d"])
    kr = KernelRidge(alpha=n * lam, kernel="poly", degree=s["degree"], gamma=1 / c, coef0=1).fit(X[:n], y[:n])
    assert result.numbers["test_errors"]["kernel_ridge"][1] == pytest.approx(rel_error(kr.predict(X_test), f_test), rel=1e-6)
    n0 = s["n_values"][0]
    rf = RandomFeatures(s["d"], s["rf_width"], s["activation"], seed=0)
    F, F_test = (rf.features(torch.from_numpy(a)).numpy() for a in (X[:n0], X_test))
    ridge = Ridge(alpha=n0 * lam, fit_intercept=False, solver="svd").fit(F, y[:n0])
    assert result.numbers["test_errors"]["random_features"][0] == pytest.approx(rel_error(ridge.predict(F_test), f_test), rel=1e-6)


def test_overlaps_recomputed_from_the_reported_weights(result):
    nums, s = result.numbers, result.settings
    W0, W1, U = (np.asarray(nums[k], dtype=float) for k in ("W_before", "W_after", "U"))
    U_ref = quick_data(result)[-1]
    np.testing.assert_allclose(U, U_ref, atol=0)
    np.testing.assert_allclose(U.T @ U, np.eye(s["hidden_dims"]), atol=1e-12)
    np.testing.assert_allclose(W0, TwoLayer(s["d"], s["width"]).init(seed=0, dtype=torch.float32)["W"].double().numpy(), atol=0)
    proj = U @ U.T
    for W, key in ((W0, "overlap_before"), (W1, "overlap_after")):
        assert nums[key] == pytest.approx(np.linalg.norm(W @ proj) / np.linalg.norm(W), rel=1e-10)
    assert nums["overlap_before"] == pytest.approx(math.sqrt(s["hidden_dims"] / s["d"]), rel=0.25)
    top = np.linalg.svd(W1)[2][: s["hidden_dims"]].T
    angles = scipy.linalg.subspace_angles(top, U)
    assert nums["singular_overlap_after"] == pytest.approx(math.sqrt(np.mean(np.cos(angles) ** 2)), rel=1e-8)
    np.testing.assert_allclose(nums["unit_overlaps_after"], np.linalg.norm(W1 @ U, axis=1) / np.linalg.norm(W1, axis=1), rtol=1e-10)


def test_network_error_recomputed_from_its_claim_values(result):
    c = result.claim("network-lowest-error")
    nums = result.numbers
    assert c.values["net"] == nums["test_errors"]["network"][-1]
    fixed = {k: v[-1] for k, v in nums["test_errors"].items() if k != "network"}
    assert c.values["best_err"] == min(fixed.values())
    assert c.values["ratio"] == pytest.approx(min(fixed.values()) / nums["test_errors"]["network"][-1])


def test_same_seed_same_numbers_on_a_tiny_run():
    over = {"d": 6, "n_values": (30, 60), "n_test": 50, "steps": 30, "rf_width": 16, "width": 8}
    a = run_experiment(get_experiment(NAME), seed=3, overrides=over).numbers
    b = run_experiment(get_experiment(NAME), seed=3, overrides=over).numbers
    assert a["test_errors"] == b["test_errors"] and torch.equal(torch.as_tensor(a["W_after"]), torch.as_tensor(b["W_after"]))


# ---- the library pieces: kernel ridge, weighted monomials, multi-index data --------------------------------


@pytest.mark.parametrize(("degree", "ridge"), [(2, 1e-3), (3, 0.1), (4, 1e-6)])
def test_kernel_ridge_matches_sklearn(degree, ridge):
    g = torch.Generator().manual_seed(degree)
    X, X_new = torch.randn(40, 3, generator=g, dtype=F64), torch.randn(15, 3, generator=g, dtype=F64)
    y = torch.randn(40, generator=g, dtype=F64)
    fit = kernel_ridge(X, y, degree=degree, scale=2.5, ridge=ridge)
    ref = KernelRidge(alpha=40 * ridge, kernel="poly", degree=degree, gamma=1 / 2.5, coef0=1).fit(X.numpy(), y.numpy())
    np.testing.assert_allclose(fit.predict(X_new).numpy(), ref.predict(X_new.numpy()), rtol=1e-7, atol=1e-9)


def test_kernel_is_the_gram_matrix_of_weighted_monomials_and_the_same_fit():
    g = torch.Generator().manual_seed(7)
    X, X_new = torch.randn(12, 3, generator=g, dtype=F64), torch.randn(5, 3, generator=g, dtype=F64)
    y = torch.randn(12, generator=g, dtype=F64)
    Phi = polynomial_kernel_features(X, degree=3, scale=1.7)
    assert Phi.shape == (12, math.comb(6, 3))
    torch.testing.assert_close(Phi @ Phi.T, polynomial_kernel(X, X, degree=3, scale=1.7), rtol=1e-12, atol=1e-12)
    w = monomial_weights(3, 3, 1.7)
    for alpha, weight in zip(monomial_exponents(3, 3).tolist(), w.tolist()):  # w_α = k!/((k−|α|)! α!) c^−|α|
        ref = math.factorial(3) / (math.factorial(3 - sum(alpha)) * math.prod(map(math.factorial, alpha))) / 1.7 ** sum(alpha)
        assert weight == pytest.approx(ref, rel=1e-12)
    model = M.WeightedMonomials(3, 3, 1.7)
    primal = model.apply(least_squares(Problem(model, X, y)), X_new)  # minimum-norm interpolant, 12 < 20 features
    dual = kernel_ridge(X, y, degree=3, scale=1.7)
    torch.testing.assert_close(dual.predict(X_new), primal, rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(dual.predict(X), y, rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"degree": 0}, "degree"),
        ({"degree": 2, "scale": -1.0}, "scale"),
        ({"degree": 2, "ridge": -0.1}, "ridge"),
        ({"degree": 1, "ridge": 0.0}, "C\\(d\\+k, k\\)"),  # 30 samples, 4 monomials: K is singular
    ],
)
def test_kernel_ridge_bad_input(kwargs, match):
    X = torch.randn(30, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    with pytest.raises(LosslabError, match=match):
        kernel_ridge(X, torch.zeros(30, dtype=F64), **kwargs)


def test_linear_floor_closed_forms():
    # relu: E[z relu z] = 1/2, Var relu z = 1/2 − 1/(2π); product z1·z2: orthogonal to every linear function.
    relu = 1 - 0.25 / (0.5 - 1 / (2 * math.pi))
    assert M.linear_floor(LINKS["relu-sum"], 2) == pytest.approx(relu, abs=1e-10)
    assert M.linear_floor(LINKS["product"], 2) == pytest.approx(1.0, abs=1e-12)


def test_multi_index_data():
    X, y, U = multi_index(50, d=7, r=2, link="product", noise=0.0, seed=4, sample_seed=9)
    np.testing.assert_allclose(y.numpy(), np.prod(X.numpy() @ U.numpy(), axis=1), rtol=1e-12)
    np.testing.assert_allclose((U.T @ U).numpy(), np.eye(2), atol=1e-12)
    X2, y2, _ = multi_index(50, d=7, r=2, link="product", noise=0.0, seed=4, sample_seed=9)
    X3, _, U3 = multi_index(50, d=7, r=2, link="product", noise=0.0, seed=4, sample_seed=10)
    assert torch.equal(X, X2) and torch.equal(y, y2) and torch.equal(U, U3) and not torch.equal(X, X3)
    assert torch.equal(multi_index_target(7, 2, "product", seed=4).U, U)
    _, noisy, _ = multi_index(4000, d=7, r=2, link="product", noise=0.5, seed=4, sample_seed=11)
    assert float(noisy.var()) == pytest.approx(1.0 + 0.25, rel=0.1)  # Var(z1 z2) = 1, plus the noise
    for kwargs, match in (({"d": 3, "r": 4}, "hidden directions"), ({"link": "cos"}, "link"), ({"noise": -1.0}, "noise")):
        with pytest.raises(LosslabError, match=match):
            multi_index(5, **kwargs)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"d": 1}, "expected d to be an integer >= 2 (input dimension), got d=1"),
        ({"hidden_dims": 4}, "expected hidden_dims to be an integer >= 1 and <= 3"),
        ({"d": 3, "hidden_dims": 3}, "expected hidden_dims <= d - 1 (fewer hidden directions than inputs), got hidden_dims=3, d=3"),
        ({"link": "cosine"}, "expected link to be one of 'tanh-sum'"),
        ({"noise": -0.1}, "expected noise to be a finite number >= 0"),
        ({"degree": 0}, "expected degree to be an integer >= 1"),
        ({"n_values": (500, 250)}, "in strictly increasing order"),
        ({"n_values": ()}, "got n_values=()"),
        ({"n_values": (100, 6000)}, "expected every n below C(d + k, k), k = degree (the full basis must have more coefficients "
                                    "than samples), got n_values=(100, 6000), d=30, degree=3"),
        ({"activation": "gelu"}, "expected activation to be one of"),
        ({"lr": 0.0}, "expected lr to be a finite number > 0"),
        ({"steps": 0}, "expected steps to be an integer >= 1"),
        ({"l2": -1.0}, "expected l2 to be a finite number >= 0"),
        ({"max_feature_entries": -1}, "expected max_feature_entries to be an integer >= 0"),
        ({"width": "many"}, "expected width to be an integer >= 1 (hidden units of the network), got width='many'"),
    ],
)
def test_bad_settings(overrides, message):
    with pytest.raises(LosslabError, match=re.escape(message)):
        get_experiment(NAME).make_settings(overrides=overrides)
