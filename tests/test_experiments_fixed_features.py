"""Experiments 1–5 (the fixed-feature side of the argument), checked against independent references.

References: numpy.linalg.lstsq / numpy.polynomial fits on redrawn data (the modules document their
seeds), exact integration of polynomials with numpy.polynomial, the closed-form bias floor 4/175 of
x³ − x against quadratics, scikit-learn's PolynomialFeatures + LinearRegression, and the χ²
distribution of the Monte-Carlo bias term.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.stats
import torch
from numpy.polynomial import polynomial as P
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import PolynomialFeatures

from losslab import LosslabError
from losslab.data import polynomial_1d
from losslab.experiments import get_experiment, run_experiment
from losslab.experiments.base import jsonable
from losslab.experiments.bias_variance import repeated_fits
from losslab.experiments.linear_in_parameters import midpoint_defect
from losslab.models import Polynomial
from losslab.random_streams import child_seed, generator

from _helpers import assert_evidence_shows_values

NAMES = ("linear-in-parameters", "underfitting", "overfitting", "more-data", "bias-variance")
CUBIC = np.array([0.0, -1.0, 0.0, 1.0])


def data(n: int, seed: int, noise: float):
    """A training set as the experiments document it, ``polynomial_1d(n, coefs=CUBIC, noise=noise, seed=seed)``, as numpy arrays.

    The experiments run at seed 0 and hand on ``0`` or ``child_seed(0, "data", ...)`` (their module docstrings).
    """
    X, y = polynomial_1d(n, coefs=tuple(CUBIC), noise=noise, seed=seed)
    return X[:, 0].numpy(), y.numpy()


def excess(coef: np.ndarray) -> float:
    """E[(f̂(x) − g(x))²] for x ~ Uniform(−1, 1) by exact antiderivatives (no quadrature)."""
    diff = P.polysub(coef, CUBIC)
    anti = P.polyint(P.polymul(diff, diff))
    return float((P.polyval(1.0, anti) - P.polyval(-1.0, anti)) / 2)


def lstsq(x: np.ndarray, y: np.ndarray, degree: int) -> np.ndarray:
    return np.linalg.lstsq(np.vander(x, degree + 1, increasing=True), y, rcond=None)[0]


# ---- every experiment ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_claims_hold_in_the_quick_run(quick_result, name):
    result = quick_result(name)
    assert result.claims, name
    for c in result.claims:
        assert c.holds, f"{name}: {c.statement} — {c.evidence}"
        assert_evidence_shows_values(c)
    json.dumps(result.to_dict())  # numbers, claims and tables are JSON-able
    json.dumps(jsonable(result.numbers))
    assert result.figures and all(len(f.png or f.plotly_json) < 200_000 for f in result.figures)


def test_same_seed_same_numbers(quick_result):
    again = run_experiment(get_experiment("overfitting"), seed=0, quick=True)
    assert json.dumps(jsonable(again.numbers)) == json.dumps(jsonable(quick_result("overfitting").numbers))


BAD_SETTINGS = [
    ("linear-in-parameters", {"degree": 1}, "degree"),
    ("linear-in-parameters", {"steps": 100}, "expected steps to be an integer >= 5 and <= 61"),
    ("linear-in-parameters", {"truth": "nan"}, "truth"),
    ("underfitting", {"ns": "100,50"}, "increasing"),
    ("underfitting", {"small_degree": 3}, "small_degree < degree of truth"),
    ("underfitting", {"noise": "0"}, "noise"),
    ("overfitting", {"max_degree": 10}, r"expected n - 1 <= max_degree .*, got n=15, max_degree=10"),
    ("overfitting", {"n": 2}, "n to be an integer >= 3"),
    ("more-data", {"ns": "10,100"}, r"expected every n >= degree \+ 2 \(more examples than features\), got ns=\(10, 100\), degree=15"),
    ("more-data", {"degree": 2}, r"expected degree of truth <= degree \(the basis must contain the target\), got truth=.*, degree=2"),
    ("more-data", {"degree": 31}, r"expected degree to be an integer >= 1 and <= 30 .*got degree=31"),
    ("bias-variance", {"max_degree": 25}, r"expected max_degree <= min\(n - 1, 30\) .*got max_degree=25, n=20"),
    ("bias-variance", {"draws": 1}, r"expected draws to be an integer >= 2 \(noise redraws R\), got draws=1"),
    ("bias-variance", {"noise": "-1"}, r"expected noise to be a finite number > 0 .*got noise=-1.0"),
    ("bias-variance", {"degree": 3}, "unknown setting"),
]


@pytest.mark.parametrize(("name", "overrides", "match"), BAD_SETTINGS)
def test_bad_settings_are_clear_errors(name, overrides, match):
    with pytest.raises(LosslabError, match=match):
        get_experiment(name).make_settings(overrides=overrides)


# ---- 1 linear in parameters ---------------------------------------------------------------------------


def test_linear_in_parameters_matches_numpy_and_sklearn(quick_result):
    result = quick_result("linear-in-parameters")
    s = result.settings
    x, y = data(s["n"], child_seed(0, "data", 1), s["noise"])
    theta = np.asarray(result.numbers["one_d"]["theta"])
    np.testing.assert_allclose(theta, lstsq(x, y, s["degree"]), rtol=1e-9, atol=1e-12)
    V = np.vander(x, s["degree"] + 1, increasing=True)
    normal = V.T @ (V @ theta - y) / len(y)
    assert np.abs(normal).max() <= 1e-12 * np.sqrt((y**2).mean()) * np.sqrt((V**2).mean(0)).max()

    g = generator(0, "data", 2)  # the documented 2-D draw: X first, then the noise
    X2 = (2 * torch.rand(s["n_2d"], 2, generator=g, dtype=torch.float64) - 1).numpy()
    y2 = np.sin(2 * X2[:, 0]) + X2[:, 0] * X2[:, 1] ** 2 + s["noise"] * torch.randn(s["n_2d"], generator=g, dtype=torch.float64).numpy()
    features = PolynomialFeatures(s["degree_2d"]).fit_transform(X2)  # same monomial order as Polynomial(2, k)
    reference = LinearRegression(fit_intercept=False).fit(features, y2)
    np.testing.assert_allclose(np.asarray(result.numbers["two_d"]["theta"]), reference.coef_, rtol=1e-8, atol=1e-10)
    assert "affine" in result.claim("convex-by-proof").evidence and result.numbers["two_d"]["verdict"] == "convex"


def test_midpoint_defect_is_zero_for_an_affine_function_of_x():
    """The nonlinearity-in-x measurement can tell: a degree-1 polynomial passes the midpoint test exactly."""
    X = torch.linspace(-1, 1, 11, dtype=torch.float64)[:, None]
    assert midpoint_defect(Polynomial(1, 1), torch.tensor([0.3, -2.0], dtype=torch.float64), X) <= 1e-15
    assert midpoint_defect(Polynomial(1, 2), torch.tensor([0.3, -2.0, 1.0], dtype=torch.float64), X) >= 0.1


# ---- 2 underfitting -----------------------------------------------------------------------------------


def test_underfitting_floor_and_errors_match_exact_integration(quick_result):
    result = quick_result("underfitting")
    s, num = result.settings, result.numbers
    assert num["bias_floor"] == pytest.approx(4 / 175, rel=1e-12)  # (2/5)²·E[P₃²] = (4/25)·(1/7)
    n_max, i = s["ns"][-1], len(s["ns"]) - 1
    small, large = [], []
    for r in range(s["repeats"]):
        x, y = data(n_max, child_seed(0, "data", i, r), s["noise"])
        small.append(excess(P.polyfit(x, y, s["small_degree"])))
        large.append(excess(P.polyfit(x, y, s["large_degree"])))
    s2 = s["noise"] ** 2
    assert num["test_mse_small"][-1] == pytest.approx(np.mean(small) + s2, rel=1e-9)
    assert num["test_mse_large"][-1] == pytest.approx(np.mean(large) + s2, rel=1e-9)
    assert min(small) >= 4 / 175 - 1e-12  # no quadratic beats the L2 projection


# ---- 3 overfitting ------------------------------------------------------------------------------------


def stratified(n: int, seed: int, noise: float):
    """The overfitting experiment's documented training set: from ``generator(seed, "data")`` u, then ε;
    x_i = −1 + 2(i + u_i)/n (one input per cell), y = g(x) + noise·ε; as numpy arrays."""
    g = generator(seed, "data")
    u = torch.rand(n, generator=g, dtype=torch.float64).numpy()
    eps = torch.randn(n, generator=g, dtype=torch.float64).numpy()
    x = -1 + 2 * (np.arange(n) + u) / n
    return x, P.polyval(x, CUBIC) + noise * eps


def test_overfitting_errors_match_numpy(quick_result):
    result = quick_result("overfitting")
    s, num = result.settings, result.numbers
    x, y = stratified(s["n"], 0, s["noise"])
    np.testing.assert_allclose(np.asarray(num["x"]), x, rtol=1e-15)
    np.testing.assert_allclose(np.asarray(num["y"]), y, rtol=1e-13, atol=1e-15)
    assert (np.floor((x + 1) * s["n"] / 2) == np.arange(s["n"])).all()  # one input in each of n equal cells
    s2 = s["noise"] ** 2
    for degree in (0, 1, 3, 8):
        coef = lstsq(x, y, degree)
        assert num["train_mse"][degree] == pytest.approx(np.mean((np.vander(x, degree + 1, increasing=True) @ coef - y) ** 2), rel=1e-8)
        assert num["test_mse"][degree] == pytest.approx(excess(coef) + s2, rel=1e-8)
    assert num["excess_degree_1"] == pytest.approx(excess(lstsq(x, y, 1)), rel=1e-8)
    best = num["best_degree"]
    tests = [excess(lstsq(x, y, d)) + s2 for d in range(10)]  # below degree 10 every solver agrees to rel 1e-8
    assert best == int(np.argmin(tests)) and best >= 2  # the cubic target's best degree, not a straight line
    assert num["best_excess"] == pytest.approx(excess(lstsq(x, y, best)), rel=1e-8)
    assert num["best_excess"] <= s2 and result.claim("best-fit-follows-truth").holds
    top = s["max_degree"]  # the interpolant: ill-conditioned, so solvers agree only to about u·cond
    coef = np.polynomial.polynomial.polyfit(x, y, top)
    assert num["test_mse"][top] == pytest.approx(excess(coef) + s2, rel=1e-2)
    assert num["train_mse"][top] <= 1e-8 * s2 and result.claim("interpolates-noisy-data").holds
    assert num["test_mse"][top] >= 1e3 * min(num["test_mse"]) and result.claim("test-error-blows-up").holds
    assert result.claim("training-error-monotone").holds


# ---- 4 more data --------------------------------------------------------------------------------------


def test_more_data_matches_numpy_at_the_largest_n(quick_result):
    result = quick_result("more-data")
    s, num = result.settings, result.numbers
    i, grid = len(s["ns"]) - 1, np.linspace(-1, 1, 2001)
    errors, deviations = [], []
    for r in range(s["repeats"]):
        x, y = data(s["ns"][i], child_seed(0, "data", i, r), s["noise"])
        coef = lstsq(x, y, s["degree"])
        errors.append(excess(coef))
        deviations.append(np.abs(P.polyval(grid, coef) - P.polyval(grid, CUBIC)).max())
    assert num["excess"][-1] == pytest.approx(np.mean(errors), rel=1e-6)
    assert num["max_deviation"][-1] == pytest.approx(max(deviations), rel=1e-6)
    x, y = data(s["ns"][i], child_seed(0, "data", i, 0), s["noise"])  # the figure's fit: the first draw
    np.testing.assert_allclose(np.asarray(num["thetas"][-1]), lstsq(x, y, s["degree"]), rtol=1e-6, atol=1e-9)
    assert result.claim("large-basis-reaches-noise-level").values["e"] == num["excess"][-1]
    assert result.claim("fit-within-noise-of-truth").values["d"] == num["max_deviation"][-1]
    assert result.claim("excess-falls-every-decade").values["low"] == pytest.approx(min(
        num["excess"][a] / num["excess"][b] for a in range(len(s["ns"])) for b in range(len(s["ns"])) if s["ns"][b] == 10 * s["ns"][a]))
    # the variance theory: E[excess] ≈ σ²·p/n at large n; the mean of the draws lies within a factor 3 of it
    assert 1 / 3 <= num["excess"][-1] / (s["noise"] ** 2 * (s["degree"] + 1) / s["ns"][i]) <= 3


# ---- 5 bias–variance ----------------------------------------------------------------------------------


def test_repeated_fits_match_sklearn():
    gen = torch.Generator().manual_seed(5)
    X = 2 * torch.rand(15, 1, generator=gen, dtype=torch.float64) - 1
    Y = torch.randn(15, 4, generator=gen, dtype=torch.float64)
    theta = repeated_fits(X, Y, 5)
    features = PolynomialFeatures(5).fit_transform(X.numpy())
    for r in range(4):
        model = LinearRegression().fit(features, Y[:, r].numpy())
        np.testing.assert_allclose((Polynomial(1, 5).features(X) @ theta[:, r]).numpy(), model.predict(features), atol=1e-10)


def test_bias_variance_against_exact_theory(quick_result):
    result = quick_result("bias-variance")
    s, num = result.settings, result.numbers
    n, R, sigma = s["n"], s["draws"], s["noise"]
    x, g = data(n, 0, 0.0)
    np.testing.assert_array_equal(np.asarray(num["x"]), x)
    eps = sigma * torch.randn(n, R, generator=generator(0, "noise", 0), dtype=torch.float64).numpy()  # the documented noise stream
    chi2 = scipy.stats.chi2
    for degree in range(s["max_degree"] + 1):
        V = np.vander(x, degree + 1, increasing=True)
        hat = V @ np.linalg.pinv(V)
        exact_bias = np.mean((g - hat @ g) ** 2)
        fits = hat @ (g[:, None] + eps)  # numpy reference of every draw's fitted values
        mean = fits.mean(1)
        assert num["bias2"][degree] == pytest.approx(np.mean((mean - g) ** 2), rel=1e-6, abs=1e-12)
        assert num["variance"][degree] == pytest.approx(np.mean((fits - mean[:, None]) ** 2), rel=1e-6)
        # bias² = exact bias² + σ²/(nR)·χ²_p: never below the exact value, and not far above it
        mc = num["bias2"][degree] - exact_bias
        assert -1e-10 <= mc <= sigma**2 / (n * R) * chi2.ppf(1 - 1e-6, degree + 1)
    best = num["best_degree"]
    assert num["fresh_labels"][best] == pytest.approx(num["total"][best], rel=0.1)  # Monte Carlo with fresh noisy labels
    assert num["band_degrees"] == sorted({1, best, s["max_degree"]})
    grid = np.asarray(num["band_x"])
    for degree, mean, sd in zip(num["band_degrees"], num["band_mean"], num["band_sd"], strict=True):  # the figure's bands
        V = np.vander(x, degree + 1, increasing=True)
        curves = np.vander(grid, degree + 1, increasing=True) @ np.linalg.lstsq(V, g[:, None] + eps, rcond=None)[0]
        np.testing.assert_allclose(mean, curves.mean(1), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(sd, curves.std(1, ddof=1), rtol=1e-6, atol=1e-9)
    assert result.claim("test-error-u-shaped").values["best"] == best
    assert result.claim("bias-never-increases").values["rise"] == max(np.diff(num["bias2"]))
    assert result.claim("variance-increases").values["step"] == min(np.diff(num["variance"]))
