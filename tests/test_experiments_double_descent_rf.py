"""Experiment 17's random-features half, checked against independent references.

References: the draws rebuilt from the module docstring (β, inputs on the sphere of radius √d, noise, ReLU features
relu(Xwᵀ + b) in numpy), numpy.linalg.pinv for the minimum-norm fits, scikit-learn's Ridge (alpha = n·λ, no intercept)
for the ridge fits, the validation choice of λ and the paired z-scores recomputed here.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from losslab.experiments import get_experiment
from losslab.experiments._random_features_descent import RIDGES, widths
from losslab.models import RandomFeatures
from losslab.random_streams import child_seed, generator

NAME = "double-descent"
F64 = torch.float64


def reference_errors(s: dict, seed: int = 0) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    """(widths, ridgeless errors, tuned-ridge errors, chosen λ), the arrays of shape (widths, draws), rebuilt in numpy."""
    n, d, tau, test = s["rf_n"], s["rf_dim"], s["rf_noise"], s["rf_test"]
    Ns = sorted({max(1, round(r * n)) for r in s["rf_ratios"]})
    shape = (len(Ns), s["rf_draws"])
    free, tuned, lams = np.empty(shape), np.empty(shape), np.empty(shape)
    for k in range(s["rf_draws"]):
        beta = torch.randn(d, generator=generator(seed, "target", k), dtype=F64).numpy()
        beta /= np.linalg.norm(beta)
        g = generator(seed, "data", k, 1)
        Z = torch.randn(2 * n + test, d, generator=g, dtype=F64).numpy()
        X = Z * math.sqrt(d) / np.linalg.norm(Z, axis=1, keepdims=True)
        y = X[: 2 * n] @ beta + tau * torch.randn(2 * n, generator=g, dtype=F64).numpy()
        f_test = X[2 * n:] @ beta
        rf = RandomFeatures(d, Ns[-1], "relu", seed=child_seed(seed, "features", k))
        F = np.maximum(X @ rf.W.numpy().T + rf.b.numpy(), 0.0)
        train, val, tst = F[:n], F[n:2 * n], F[2 * n:]
        for i, N in enumerate(Ns):
            v = np.linalg.pinv(train[:, :N]) @ y[:n]
            free[i, k] = np.mean((tst[:, :N] @ v - f_test) ** 2) + tau**2
            fits = [Ridge(alpha=n * lam, fit_intercept=False, solver="svd").fit(train[:, :N], y[:n]) for lam in RIDGES]
            best = int(np.argmin([np.mean((val[:, :N] @ r.coef_ - y[n:]) ** 2) for r in fits]))
            tuned[i, k] = np.mean((tst[:, :N] @ fits[best].coef_ - f_test) ** 2) + tau**2
            lams[i, k] = RIDGES[best]
    return Ns, free, tuned, lams


def test_the_random_features_curves_match_numpy_and_scikit_learn(quick_result):
    result = quick_result(NAME)
    s, m = result.settings, result.measured
    Ns, free, tuned, lams = reference_errors(s)
    assert m.rf_widths == Ns and m.rf_n == s["rf_n"] and m.rf_draws == s["rf_draws"]
    k = s["rf_draws"]
    # away from N = n the min-norm fits agree to rounding; near it Φ is ill-conditioned and pinv's cut-off differs from gelsd's
    well = [i for i, N in enumerate(Ns) if not 0.8 <= N / s["rf_n"] <= 1.25]
    np.testing.assert_allclose(np.array(m.rf_ridgeless)[well], free.mean(1)[well], rtol=1e-7)
    np.testing.assert_allclose(m.rf_ridgeless, free.mean(1), rtol=1e-3)
    np.testing.assert_allclose(m.rf_ridgeless_se, free.std(1, ddof=1) / math.sqrt(k), rtol=1e-3)
    np.testing.assert_allclose(m.rf_ridgeless_median, np.sort(free, 1)[:, (k - 1) // 2], rtol=1e-3)  # torch's lower median
    np.testing.assert_allclose(m.rf_ridge, tuned.mean(1), rtol=1e-7)
    np.testing.assert_allclose(m.rf_ridge_se, tuned.std(1, ddof=1) / math.sqrt(k), rtol=1e-6)
    np.testing.assert_allclose(m.rf_lambda, np.sort(lams, 1)[:, (k - 1) // 2], rtol=1e-12)
    steps = tuned[1:] - tuned[:-1]
    np.testing.assert_allclose(m.rf_rise_z, steps.mean(1) / (steps.std(1, ddof=1) / math.sqrt(k)), rtol=1e-5, atol=1e-8)
    assert m.rf_noise_variance == s["rf_noise"] ** 2
    assert m.rf_library_gap <= 1e-8  # the sweep's fits equal losslab.fit.least_squares_result's (ridge 0 and the chosen λ)


def test_the_random_features_claims_read_what_the_numbers_say(quick_result):
    result = quick_result(NAME)
    m = result.measured
    top = int(np.argmax(m.rf_ridgeless))
    at = int(np.argmin([abs(N - m.rf_n) for N in m.rf_widths]))
    peak = result.claim("rf-peak-near-threshold").values
    assert peak["N"] == m.rf_widths[top] and peak["e"] == max(m.rf_ridgeless) and 0.8 <= peak["r"] <= 1.25
    rise = result.claim("rf-ridge-no-peak").values
    assert rise["z"] == max(m.rf_rise_z) <= 2 and rise["Nn"] == m.rf_widths[at]
    below = result.claim("rf-ridge-below-peak").values
    assert below["en"] == m.rf_ridge[at] and below["ratio"] == pytest.approx(m.rf_ridge[at] / max(m.rf_ridgeless))


def test_failed_random_features_claims_are_reported_as_failed(quick_result):
    m = quick_result(NAME).measured
    flat = [1.0] * len(m.rf_widths)
    bad = replace(m, rf_ridgeless=[2.0, *flat[1:]], rf_rise_z=[*m.rf_rise_z[:-1], 5.0], rf_ridge=[1.5] * len(flat))
    claims = {c.key: c for c in get_experiment(NAME).claims(None, bad)}
    assert not claims["rf-peak-near-threshold"].holds and f"N = {m.rf_widths[0]}" in claims["rf-peak-near-threshold"].evidence
    assert not claims["rf-ridge-no-peak"].holds and "z = 5.00" in claims["rf-ridge-no-peak"].evidence
    assert not claims["rf-ridge-below-peak"].holds  # 1.5 > 0.1 × 2.0


def test_the_widths_and_the_ridge_grid():
    assert widths(50, (0.1, 0.95, 1.0, 1.04, 5.0)) == [5, 48, 50, 52, 250]
    assert widths(10, (0.01, 0.02)) == [1]
    np.testing.assert_allclose(RIDGES, np.logspace(-6, 1, 15), rtol=1e-12)
