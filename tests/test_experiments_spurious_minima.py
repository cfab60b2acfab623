"""Tests for experiment 16 (spurious-minima): GD re-run by hand, end points against dense Hessians, claims by their numbers.

The references share no code with the experiment's training or curvature: gradient descent is iterated here with
``torch.func.grad`` of the objective, the step size checked against the dense Hessian's largest eigenvalue at the
teacher, and each spurious class's representative against ``torch.func.hessian`` (``references.dense_eigenvalues``)
rather than Lanczos.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from losslab.experiments import get_experiment, run_experiment
from losslab.experiments.spurious_minima import claims, rate
from losslab.objectives import relu_teacher_problem
from losslab.random_streams import child_seed

from _helpers import assert_evidence_shows_values
from references import dense_eigenvalues, dense_gradient

F64 = torch.float64
KEYS = ("rises-with-k", "overparameterisation-lowers-it", "spurious-are-minima", "runs-converge")
SMALL = {"ks": (3, 4), "starts": 10, "grad_norm": 1e-4, "max_steps": 3000}


@pytest.fixture(scope="module")
def small_run():
    exp = get_experiment("spurious-minima")
    return exp.make_settings(overrides=SMALL), run_experiment(exp, seed=2, overrides=SMALL)


def test_step_size_comes_from_the_dense_hessian_at_the_teacher(small_run):
    settings, result = small_run
    m = result.measured
    for k, lam, lr in zip(m.ks, m.sharpness, m.lrs, strict=True):
        problem = relu_teacher_problem(k, k)
        dense = float(dense_eigenvalues(problem.loss, torch.eye(k, dtype=F64).reshape(-1))[-1])
        assert lam == pytest.approx(dense, rel=1e-8)
        assert lr == pytest.approx(settings.lr_factor / dense, rel=1e-8)


def test_a_run_is_plain_gradient_descent_until_the_gradient_vanishes(small_run):
    settings, result = small_run
    m = result.measured
    config = m.configs[1]  # k = 3, n = 4
    k, n = config["k"], config["n"]
    problem = relu_teacher_problem(k, n)
    for j in (0, 7):
        theta = problem.init(child_seed(2, "restarts", n, j))
        at = -1
        for t in range(settings.max_steps + 1):
            g = dense_gradient(problem.loss, theta)
            if float(g.norm()) <= settings.grad_norm:
                at = t
                break
            if t < settings.max_steps:
                theta = theta - m.lrs[0] * g
        assert config["converged_at"][j] == at
        assert config["final_losses"][j] == pytest.approx(float(problem.loss(theta)), rel=1e-9, abs=1e-14)


def test_counts_follow_the_threshold(small_run):
    _, result = small_run
    m = result.measured
    for c in m.configs:
        losses = torch.tensor(c["final_losses"], dtype=F64)
        converged = torch.tensor(c["converged_at"]) >= 0
        assert c["global"] == int((converged & (losses < m.threshold)).sum())
        assert c["not_converged"] == int((~converged).sum())
        assert c["spurious_minima"] + c["other_spurious"] == int((converged & (losses >= m.threshold)).sum())
        assert c["global"] + c["spurious_minima"] + c["other_spurious"] + c["not_converged"] == c["starts"]


def test_quick_claims_hold_and_classes_are_minima_of_the_dense_hessian(quick_result):
    result = quick_result("spurious-minima")
    assert [c.key for c in result.claims] == list(KEYS)
    assert all(result.claim(k).holds for k in KEYS), [c.evidence for c in result.claims if not c.holds]
    m = result.measured
    found = 0
    for c in m.configs:
        problem = relu_teacher_problem(c["k"], c["n"])
        for cl in c["classes"]:
            theta = torch.tensor(cl["member"], dtype=F64)
            eig = dense_eigenvalues(problem.loss, theta)
            assert cl["kind"] == "minimum" and float(eig[0]) > 0
            assert abs(cl["min_eig"] - float(eig[0])) <= cl["min_bound"] + 1e-6 * float(eig[-1])
            assert float(problem.loss(theta)) >= m.threshold
            found += 1
    assert found >= 1
    assert result.figures[0].overlaps == ()
    for c in result.claims:
        assert_evidence_shows_values(c)


def test_claims_are_decided_by_their_numbers(small_run):
    settings, result = small_run
    m = result.measured

    def with_counts(spurious):  # spurious minima per config, in the order of m.configs
        configs = [dict(c, spurious_minima=s, global_=c["starts"] - s) for c, s in zip(m.configs, spurious, strict=True)]
        return dataclasses.replace(m, configs=configs)

    none = {c.key: c.holds for c in claims(settings, with_counts([0, 0, 0, 0]))}
    assert not none["rises-with-k"] and not none["overparameterisation-lowers-it"]
    clear = {c.key: c.holds for c in claims(settings, with_counts([0, 0, 8, 0]))}  # 0/10 → 8/10 at n = k; 0 at n = k + 1
    assert clear["rises-with-k"] and clear["overparameterisation-lowers-it"]
    reversed_ = {c.key: c.holds for c in claims(settings, with_counts([0, 0, 0, 8]))}
    assert not reversed_["overparameterisation-lowers-it"]
    failing = claims(settings, with_counts([0, 0, 0, 0]))
    for c in failing[:2]:  # a failing comparison reads "x SE, needs > 3", never "x SE (> 3)" as if met
        assert "needs > 3" in c.evidence and "(> 3)" not in c.evidence, c.evidence


@pytest.mark.parametrize("x, n", [(0, 60), (8, 10), (60, 60), (15, 100)])
def test_rates_carry_wilson_intervals_that_stay_open_at_zero_counts(x, n):
    z = 1.959963984540054  # the 97.5% normal quantile
    centre = (x + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(x * (n - x) / n + z * z / 4)  # Wilson (1927), written out
    r, lo, hi = rate({"spurious_minima": x, "starts": n})
    assert r == x / n
    assert lo == pytest.approx(max(centre - half, 0.0), abs=1e-12) and hi == pytest.approx(min(centre + half, 1.0), abs=1e-12)
    assert hi - lo > 0.05  # never an empty interval, also at 0 of n and n of n
    if x == 0:
        assert lo == 0.0 and hi == pytest.approx(z * z / (n + z * z))


def test_differences_are_judged_with_agresti_caffo_standard_errors():
    from losslab.experiments.spurious_minima import _differs, adjusted

    assert adjusted(0, 60) == pytest.approx((1 / 62, math.sqrt((1 / 62) * (61 / 62) / 62)))
    a, b = (15, 60), (0, 60)  # 25% against 0%: the Wald SE of 0/60 is 0; the adjusted one is not
    ra, rb = 16 / 62, 1 / 62
    se = math.sqrt(ra * (1 - ra) / 62 + rb * (1 - rb) / 62)
    assert _differs(a, b) == pytest.approx((ra - rb) / se) and _differs(b, b) == 0.0
    assert math.isfinite(_differs((0, 10), (10, 10)))


def test_a_threshold_above_one_is_refused_in_one_line():
    from losslab import LosslabError

    with pytest.raises(LosslabError, match=r"expected threshold to be a finite number > 0 and <= 1 .*got threshold=1e\+300"):
        get_experiment("spurious-minima").make_settings(overrides={"threshold": 1e300})
