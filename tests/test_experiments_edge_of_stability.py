"""Tests for experiment 18 (edge-of-stability): GD re-run by hand, λ_max against a dense eigensolver, the claims by key.

The references share no code with the experiment's curvature or gradients: the MLP's squared loss is written
out by hand in float64, its gradient is ``torch.func.grad`` of that loss and its sharpness the largest
eigenvalue of ``torch.func.hessian`` (``references.dense_eigenvalues``).
"""

from __future__ import annotations

import math

import pytest
import torch

from losslab import data as D
from losslab.experiments import get_experiment, run_experiment
from losslab.experiments.edge_of_stability import BAND, EDGE, training_problem

from _helpers import assert_evidence_shows_values
from references import dense_eigenvalues, dense_gradient

F64 = torch.float64
KEYS = ("progressive-sharpening", "reaches-the-edge", "stays-at-the-edge", "loss-falls-not-monotonically")


def hand_loss(settings, X, y):
    """mean((f − y)²) of the tanh MLP [d_in, width, width, 1] on a flat θ, in the problem's flattening order."""
    d, h = settings.d_in, settings.width
    shapes = [(h, d), (h,), (h, h), (h,), (1, h), (1,)]
    sizes = [math.prod(s) for s in shapes]

    def loss(theta):
        W0, b0, W1, b1, W2, b2 = (p.reshape(s) for p, s in zip(torch.split(theta, sizes), shapes, strict=True))
        f = (torch.tanh(torch.tanh(X @ W0.T + b0) @ W1.T + b1) @ W2.T + b2)[:, 0]
        return ((f - y) ** 2).mean()

    return loss


@pytest.fixture(scope="module")
def short_run():
    """A 30-step run (sharpness every 10 steps) at seed 1, with its settings."""
    exp = get_experiment("edge-of-stability")
    overrides = {"steps": 30, "every": 10}
    return exp.make_settings(overrides=overrides), run_experiment(exp, seed=1, overrides=overrides)


def test_flattening_order_is_the_hand_losss():
    settings = get_experiment("edge-of-stability").make_settings()
    problem = training_problem(settings, 0)
    assert problem.groups == ("W0", "b0", "W1", "b1", "W2", "b2")
    theta = problem.init(0)
    assert float(problem.loss(theta)) == pytest.approx(float(hand_loss(settings, *_xy(settings, 0))(theta)), rel=1e-12)


def test_gd_trajectory_is_plain_gradient_descent_on_the_hand_loss(short_run):
    settings, result = short_run
    problem = training_problem(settings, 1)
    loss = hand_loss(settings, *_xy(settings, 1))
    theta, losses = problem.init(1), []
    for _ in range(settings.steps):
        losses.append(float(loss(theta)))
        theta = theta - settings.lr * dense_gradient(loss, theta)
    losses.append(float(loss(theta)))
    m = result.measured
    assert torch.allclose(m.theta_final, theta, rtol=1e-10, atol=1e-12)
    assert m.losses == pytest.approx(losses, rel=1e-10)
    assert m.sharpness_steps == [0, 10, 20, 30] and m.threshold == 2 / settings.lr


def test_sharpness_matches_a_dense_eigensolver_at_two_recorded_points(short_run):
    settings, result = short_run
    m = result.measured
    loss = hand_loss(settings, *_xy(settings, 1))
    start = dense_eigenvalues(loss, training_problem(settings, 1).init(1))[-1]
    end = dense_eigenvalues(loss, m.theta_final)[-1]
    for got, bound, want in ((m.sharpness[0], m.sharpness_bounds[0], start), (m.sharpness[-1], m.sharpness_bounds[-1], end)):
        assert abs(got - float(want)) <= max(bound, 1e-8 * float(want))
        assert got <= float(want) * (1 + 1e-12)  # a Ritz value never exceeds λ_max
    assert m.sharpness_converged


def _xy(settings, seed):
    """The experiment's data, rebuilt from losslab.data (the data set is not what these tests check)."""
    X, y = D.teacher(settings.n, d_in=settings.d_in, width=settings.teacher_width, activation="tanh", seed=seed)
    return X, settings.label_scale * (y - y.mean()) / y.std()


def test_quick_claims_hold_at_seed_0_and_read_by_key(quick_result):
    result = quick_result("edge-of-stability")
    assert [c.key for c in result.claims] == list(KEYS)
    assert all(result.claim(k).holds for k in KEYS), [c.evidence for c in result.claims if not c.holds]
    m, thr = result.measured, result.measured.threshold
    edge = result.claim("reaches-the-edge")
    assert edge.values["peak"] == max(m.sharpness) >= EDGE * thr
    stays = result.claim("stays-at-the-edge")
    assert BAND[0] * thr <= stays.values["med"] <= BAND[1] * thr
    assert result.claim("loss-falls-not-monotonically").values["rises"] >= 1
    assert result.figures[0].overlaps == ()
    for c in result.claims:
        assert_evidence_shows_values(c)
        assert c.plain or c.key == "loss-falls-not-monotonically"


def test_a_run_too_short_to_reach_the_edge_fails_honestly(short_run):
    _, result = short_run
    assert not result.claim("stays-at-the-edge").holds or not result.claim("loss-falls-not-monotonically").holds
    failing = [c for c in result.claims if not c.holds]
    assert failing
    for c in failing:  # a failing comparison reads "x, needs ≥ y" (or "needs to be within"), never "x ≥ y" as if met
        assert "needs" in c.evidence, c.evidence


def test_a_diverging_step_size_fails_every_claim_saying_where_it_diverged_and_draws_without_warnings():
    import warnings

    from losslab.report.sections.edge_of_stability import sharpness_and_loss

    exp = get_experiment("edge-of-stability")
    overrides = {"steps": 300, "every": 10, "lr": 1.0}
    result = run_experiment(exp, seed=0, overrides=overrides)
    m = result.measured
    # an independent check of the divergence step: GD by hand on the hand-written loss until the loss is not finite
    settings = exp.make_settings(overrides=overrides)
    loss = hand_loss(settings, *_xy(settings, 0))
    theta, step = training_problem(settings, 0).init(0), 0
    while math.isfinite(float(loss(theta))) and step < 300:
        theta, step = theta - 1.0 * dense_gradient(loss, theta), step + 1
    assert m.diverged_at == step < 300
    assert len(m.losses) == step and all(math.isfinite(v) for v in m.losses)
    for c in result.claims:
        assert not c.holds
        assert c.evidence.startswith(f"training diverged at step {step} "), c.evidence
        assert "nan-fold" not in c.evidence and "= nan" not in c.evidence.lower()  # no NaN printed as a number
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure = sharpness_and_loss(m)
    assert f"diverged at step {step}" in figure.caption and "falls from" not in figure.caption


def test_a_step_size_that_diverges_at_the_first_step_is_reported_and_drawn_in_plain_numbers():
    import warnings

    from losslab.report.sections.edge_of_stability import sharpness_and_loss, sharpness_table

    result = run_experiment(get_experiment("edge-of-stability"), seed=0, overrides={"steps": 30, "every": 10, "lr": 1e300})
    assert result.measured.diverged_at == 1 and result.measured.sharpness_steps == [0]
    for c in result.claims:
        assert not c.holds and c.evidence.startswith("training diverged at step 1 ")
        assert len(c.evidence) < 500  # ratios like 5.4e+300 in short form, not 300 printed digits
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "at step 0 only" in sharpness_and_loss(result.measured).caption
        sharpness_table(result.measured)
