"""Experiment 17 (double-descent), checked against independent references.

References: numpy.linalg.pinv and numpy.linalg.lstsq (minimum-norm solutions) on the training sets redrawn as the
module documents them (X then ε from ``generator(seed, "data", r)``), the exact population error written out
from ‖β_{1:p}‖² = r²p/D, and Belkin, Hsu & Xu's formula recomputed here.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from losslab import LosslabError
from losslab.experiments import NAMES, get_experiment, run_experiment
from losslab.experiments.base import jsonable
from losslab.experiments.double_descent import expected_error, sweep
from losslab.random_streams import generator

from _helpers import assert_evidence_shows_values

NAME = "double-descent"


def training_set(n: int, D: int, r: float, sigma: float, seed: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k-th training set as the module docstring documents it, as numpy arrays."""
    g = generator(seed, "data", k)
    X = torch.randn(n, D, generator=g, dtype=torch.float64).numpy()
    eps = torch.randn(n, generator=g, dtype=torch.float64).numpy()
    return X, X.sum(1) * r / math.sqrt(D) + sigma * eps


def population_error(theta: np.ndarray, p: int, D: int, r: float, sigma: float) -> float:
    """E over a fresh (x, y) of (y − x_{1:p}ᵀθ)² = ‖θ − β_{1:p}‖² + r²(D − p)/D + σ²."""
    return float(((theta - r / math.sqrt(D)) ** 2).sum() + r**2 * (D - p) / D + sigma**2)


def belkin_hsu_xu(p: int, n: int, D: int, r: float, sigma: float) -> float:
    inside, outside = r**2 * p / D, r**2 * (D - p) / D + sigma**2
    if p < n - 1:
        return outside * (n - 1) / (n - p - 1)  # = outside·(1 + p/(n − p − 1))
    if p > n + 1:
        return inside * (p - n) / p + outside * (p - 1) / (p - n - 1)  # = ‖β_T‖²(1 − n/p) + outside·(1 + n/(p − n − 1))
    return math.inf


def test_it_is_experiment_17_in_part_two():
    from losslab.experiments.story import parts

    assert NAMES[16] == NAME and get_experiment(NAME).number == 17 and NAME in parts()[1].experiments


def test_claims_hold_in_the_quick_run(quick_result):
    result = quick_result(NAME)
    assert [c.key for c in result.claims] == ["convex-in-theta", "mean-matches-exact", "peak-at-threshold", "second-descent",
                                              "rf-peak-near-threshold", "rf-ridge-no-peak", "rf-ridge-below-peak"]
    for c in result.claims:
        assert c.holds, f"{c.statement} — {c.evidence}"
        if c.key != "convex-in-theta":  # that one restates the verdict engine (see _nonconvex.proof_claim)
            assert_evidence_shows_values(c)
        assert c.plain or c.key == "second-descent"
    json.dumps(result.to_dict())
    json.dumps(jsonable(result.numbers))
    assert [f.name for f in result.figures] == ["error-vs-p", "random-features-error"]
    assert all(f.overlaps == () for f in result.figures)
    table, rf_table = result.tables
    assert len(table.rows) == len(result.measured.ps) and len(rf_table.rows) == len(result.measured.rf_widths)


def test_the_mean_at_one_p_matches_numpy_minimum_norm_fits(quick_result):
    result = quick_result(NAME)
    s, m = result.settings, result.measured
    n, D, r, sigma = s["n"], s["features"], s["signal"], s["noise"]
    for p in (n - 2, n + 2):
        errors = []
        for k in range(s["draws"]):
            X, y = training_set(n, D, r, sigma, 0, k)
            theta = np.linalg.pinv(X[:, :p]) @ y
            if k == 0:  # lstsq's answer is the same minimum-norm solution
                np.testing.assert_allclose(np.linalg.lstsq(X[:, :p], y, rcond=None)[0], theta, rtol=1e-9, atol=1e-12)
            errors.append(population_error(theta, p, D, r, sigma))
        i = m.ps.index(p)
        assert m.mean[i] == pytest.approx(np.mean(errors), rel=1e-9)
        assert m.se[i] == pytest.approx(np.std(errors, ddof=1) / math.sqrt(len(errors)), rel=1e-9)
        assert m.median[i] == pytest.approx(np.sort(errors)[(len(errors) - 1) // 2], rel=1e-9)  # torch's lower median
    assert m.library_gap <= 1e-10  # the sweep's solver equals losslab.fit.least_squares_result (minimum norm) at the largest p
    assert m.proof["verdict"] == "convex" and m.proof["rule"]


def test_the_exact_expectation_and_the_z_scores_are_recomputed(quick_result):
    result = quick_result(NAME)
    s, m = result.settings, result.measured
    n, D, r, sigma = s["n"], s["features"], s["signal"], s["noise"]
    assert m.ps == sorted(set(range(1, D + 1)))  # quick: every p
    for i, p in enumerate(m.ps):
        e = belkin_hsu_xu(p, n, D, r, sigma)
        assert m.expected[i] == pytest.approx(e, rel=1e-12) if math.isfinite(e) else math.isinf(m.expected[i])
        assert m.z[i] == pytest.approx((m.mean[i] - e) / m.se[i], rel=1e-12) if math.isfinite(e) else math.isnan(m.z[i])
    assert [p for p in m.ps if math.isinf(m.expected[m.ps.index(p)])] == [n - 1, n, n + 1]


def test_the_claims_read_what_the_numbers_say(quick_result):
    result = quick_result(NAME)
    m = result.measured
    n = m.n
    judged = [i for i, p in enumerate(m.ps) if abs(p - n) >= 4]  # where the error's variance is finite
    near = [i for i, p in enumerate(m.ps) if abs(p - n) in (2, 3)]
    match = result.claim("mean-matches-exact").values
    assert match["z"] == pytest.approx(max(abs(m.z[i]) for i in judged)) and match["k"] == len(m.ps) - 7
    assert match["znear"] == pytest.approx(max(abs(m.z[i]) for i in near))
    top = int(np.argmax(m.mean))
    assert result.claim("peak-at-threshold").values["p"] == m.ps[top] and abs(m.ps[top] - n) <= 1
    second = result.claim("second-descent").values
    assert second["emax"] == m.mean[-1] < second["e2"] == m.mean[m.ps.index(n + 2)]
    under = min(m.mean[i] for i, p in enumerate(m.ps) if p <= n - 2)
    assert second["bu"] == under and second["rel"] == ("lower than" if m.mean[-1] < under else "not lower than")


def test_a_failed_match_is_reported_as_failed(quick_result):
    from dataclasses import replace

    result = quick_result(NAME)
    m = result.measured
    i = m.ps.index(1)
    bad = replace(m, z=[*m.z[:i], 9.0, *m.z[i + 1:]])
    claims = {c.key: c for c in get_experiment(NAME).claims(None, bad)}
    assert not claims["mean-matches-exact"].holds and "p = 1" in claims["mean-matches-exact"].evidence


def test_the_sweep_holds_the_threshold_and_the_largest_p():
    assert sweep(20, 60, 10) == [10, 17, 18, 19, 20, 21, 22, 23, 30, 40, 50, 60]
    assert sweep(6, 15, 4) == [3, 4, 5, 6, 7, 8, 9, 12, 15]
    assert math.isinf(expected_error(20, 20, 60, 1.0, 0.2)) and expected_error(0, 20, 60, 1.0, 0.2) == pytest.approx(1.04)


def test_a_stepped_sweep_runs_and_its_claims_hold():
    result = run_experiment(get_experiment(NAME), seed=1, overrides={"n": 8, "features": 40, "step": 5, "draws": 200})
    assert result.measured.ps == [5, 6, 7, 8, 9, 10, 11, 15, 20, 25, 30, 35, 40]
    assert result.passed, [c.evidence for c in result.claims if not c.holds]


@pytest.mark.parametrize(("overrides", "message"), [
    ({"n": 60}, "features >= n + 4"),
    ({"draws": 100_000}, "draws × n × features <= 50,000,000"),
    ({"noise": 0}, "expected noise to be a finite number > 0"),
    ({"rf_ratios": (2.0, 3.0, 4.0)}, "rf_ratios give widths N below 0.8·rf_n, within [0.8, 1.25]·rf_n and above 1.25·rf_n"),
    ({"rf_ratios": (0.5, 0.7, 1.5)}, "within [0.8, 1.25]·rf_n"),
    ({"rf_test": 100_000, "rf_ratios": (0.5, 1.0, 20.0)}, "(2·rf_n + rf_test) × the largest width <= 50,000,000"),
    ({"rf_draws": 2}, "expected rf_draws to be an integer"),
    ({"rf_ratios": (0.5, -1.0, 2.0)}, "expected rf_ratios to be"),
])
def test_bad_settings_are_refused(overrides, message):
    with pytest.raises(LosslabError, match=re.escape(message)):
        get_experiment(NAME).make_settings(overrides=overrides)
