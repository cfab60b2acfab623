"""Tests for experiment 14 (lazy-vs-rich): the network, the twin, the measurements and the fit against references.

References share no code with the experiment's measurements: the network is written out with torch ops, the
twin is gradient descent on f(θ₀) + J(θ − θ₀) with a dense float64 Jacobian (``references.dense_jacobian``), the
Hessian and its model-curvature part are dense (``references.dense_hessian`` / ``dense_nonlinearity``), and the
exponent fit is redone with numpy's polyfit and the textbook standard error of a slope.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from losslab import Problem
from losslab.experiments import get_experiment, run_experiment
from losslab.experiments._lazy_rich_model import ScaledTwoLayer, linearized_outputs, step_size, train_and_measure, width_sweep
from losslab.experiments.lazy_vs_rich import width_exponent

from _helpers import assert_evidence_shows_values
from references import dense_gradient, dense_hessian, dense_jacobian, dense_nonlinearity

F64 = torch.float64
KEYS = ("lazy-as-tau-grows", "lazy-loss-convex", "lazy-tests-worse", "rich-features-move", "weight-travel-exponent",
        "ntk-change-exponent", "mean-field-stays-rich")


def _hand(params, X, alpha, tau, params0=None):
    """τ·(m^(−α) v·tanh(W x/√d + b) − the same at θ₀), written out."""
    def h(p):
        return (torch.tanh(X @ p["W"].T / math.sqrt(X.shape[1]) + p["b"]) * p["v"]).sum(1) / p["v"].shape[0] ** alpha
    return tau * (h(params) - (h(params0) if params0 is not None else 0.0))


def _tiny(n=12, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=F64)
    X_test = torch.randn(20, d, generator=g, dtype=F64)
    target = lambda Z: torch.tanh(2 * Z[:, 0]) + torch.tanh(2 * Z[:, 1])
    return X, target(X) + 0.1 * torch.randn(n, generator=g, dtype=F64), X_test, target(X_test)


@pytest.mark.parametrize(("kind", "alpha"), [("ntk", 0.5), ("mean-field", 1.0)])
def test_the_network_is_the_formula_and_centred_at_its_start(kind, alpha):
    X = _tiny()[0]
    plain = ScaledTwoLayer(3, 7, kind, 2.5)
    p0, p1 = plain.init(seed=1), plain.init(seed=2)
    assert all(float(t.std()) > 0.3 for t in p0.values())  # every parameter N(0, 1)
    torch.testing.assert_close(plain.apply(p1, X), _hand(p1, X, alpha, 2.5), rtol=1e-13, atol=1e-13)
    centred = ScaledTwoLayer(3, 7, kind, 2.5, centre=p0)
    torch.testing.assert_close(centred.apply(p1, X), _hand(p1, X, alpha, 2.5, p0), rtol=1e-13, atol=1e-13)
    assert float(centred.apply(p0, X).abs().max()) == 0.0
    assert step_size(centred, 0.5) == pytest.approx(0.5 / 2.5**2 * (7 if kind == "mean-field" else 1))


def test_the_twin_is_gradient_descent_on_the_dense_linearisation():
    X, y, X_test, _ = _tiny()
    model = ScaledTwoLayer(3, 5, "ntk", 2.0, centre=ScaledTwoLayer(3, 5, "ntk", 2.0).init(seed=3))
    prob = Problem(model, X, y)
    theta0 = prob.flatten(model.centre)
    out = lambda Z: (lambda t: model.apply(prob.unflatten(t), Z))
    J, J_test = dense_jacobian(out(X), theta0), dense_jacobian(out(X_test), theta0)
    loss = lambda t: ((J @ (t - theta0) - y) ** 2).mean()  # f(θ₀) = 0
    lr, theta, want = 0.05, theta0.clone(), []
    for t in range(1, 31):
        theta = theta - lr * dense_gradient(loss, theta)
        if t in (10, 30):
            want.append(J_test @ (theta - theta0))
    got = linearized_outputs(prob, theta0, X_test, lr, [10, 30])
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_one_run_measures_travel_kernel_change_and_curvature_share_as_dense_references_do():
    X, y, X_test, f_test = _tiny()
    model = ScaledTwoLayer(3, 4, "ntk", 0.5, centre=ScaledTwoLayer(3, 4, "ntk", 0.5).init(seed=4))
    how = {"lr": 0.2, "steps": 20, "checkpoints": 4, "ntk_points": 6, "probes": 400}
    run = train_and_measure(model, (X, y, X_test, f_test), how, seed=0)
    prob = Problem(model, X, y)
    theta0 = prob.flatten(model.centre)
    hand_loss = lambda t: ((_hand(prob.unflatten(t), X, 0.5, 0.5, model.centre) - y) ** 2).mean()
    theta, at = theta0.clone(), {}
    for t in range(1, 21):
        theta = theta - step_size(model, 0.2) * dense_gradient(hand_loss, theta)
        at[t] = theta
    assert run.checkpoints == [5, 10, 15, 20]
    assert run.weight_travel == pytest.approx([float((at[t] - theta0).norm() / theta0.norm()) for t in run.checkpoints], rel=1e-9)
    J = lambda t: dense_jacobian(lambda u: _hand(prob.unflatten(u), X[:6], 0.5, 0.5, model.centre), t)
    K0, K1 = J(theta0) @ J(theta0).T, J(theta) @ J(theta).T
    assert run.ntk_change == pytest.approx(float((K1 - K0).norm() / K0.norm()), rel=1e-9)
    outputs = lambda t: _hand(prob.unflatten(t), X, 0.5, 0.5, model.centre)
    H = dense_hessian(hand_loss, theta)
    N = dense_nonlinearity(outputs, lambda z: ((z - y) ** 2).mean(), theta)
    assert run.nonlinear_share == pytest.approx(float(N.norm() / H.norm()), rel=0.15)  # 400 probes: ~4% each
    assert run.train_loss == pytest.approx(float(hand_loss(theta)), rel=1e-10)
    f_end = _hand(prob.unflatten(theta), X_test, 0.5, 0.5, model.centre)
    assert run.test_error == pytest.approx(float(((f_end - f_test) ** 2).mean() / f_test.var()), rel=1e-9)


def test_the_width_sweep_trains_each_start_as_plain_gradient_descent():
    X, y, X_test, f_test = _tiny()
    how = {"lr": 0.3, "steps": 15, "ntk_points": 5}
    out = width_sweep("mean-field", [3, 6], [11, 12], (X, y, X_test, f_test), how)
    model = ScaledTwoLayer(3, 6, "mean-field", 1.0)
    prob = Problem(model, X, y)
    theta0 = prob.init(12)
    loss = lambda t: ((_hand(prob.unflatten(t), X, 1.0, 1.0) - y) ** 2).mean()
    theta = theta0.clone()
    for _ in range(15):
        theta = theta - 0.3 * 6 * dense_gradient(loss, theta)
    assert out["weight_travel"][1][1] == pytest.approx(float((theta - theta0).norm() / theta0.norm()), rel=1e-8)
    f_end = _hand(prob.unflatten(theta), X_test, 1.0, 1.0)
    assert out["test_error"][1][1] == pytest.approx(float(((f_end - f_test) ** 2).mean() / f_test.var()), rel=1e-8)
    assert [len(row) for row in out["ntk_change"]] == [2, 2]


def test_width_exponent_is_the_log_log_least_squares_slope_with_a_t_interval():
    widths = [16, 32, 64, 128]
    rng = np.random.default_rng(0)
    values = [[3.0 * m**-0.7 * math.exp(rng.normal(0, 0.05)) for m in widths] for _ in range(3)]
    fit = width_exponent(widths, values)
    x, y = np.log(widths * 3), np.log([v for row in values for v in row])
    slope, intercept = np.polyfit(x, y, 1)
    se = math.sqrt(((y - slope * x - intercept) ** 2).sum() / (len(x) - 2) / ((x - x.mean()) ** 2).sum())
    t = scipy.stats.t.ppf(0.975, len(x) - 2)
    assert fit.slope == pytest.approx(slope, rel=1e-12) and fit.prefactor == pytest.approx(math.exp(intercept), rel=1e-10)
    assert (fit.low, fit.high) == pytest.approx((slope - t * se, slope + t * se), rel=1e-10)
    exact = width_exponent(widths, [[2.0 * m**-0.5 for m in widths]] * 2)
    assert exact.slope == pytest.approx(-0.5, abs=1e-12) and exact.high - exact.low < 1e-6  # an exact power law: no spread


def test_quick_claims_at_seed_0_read_by_key(quick_result):
    result = quick_result("lazy-vs-rich")
    assert [c.key for c in result.claims] == list(KEYS)
    m = result.measured
    assert m.linearized_verdict == "convex"
    assert result.claim("lazy-as-tau-grows").holds and result.claim("rich-features-move").holds
    assert result.claim("weight-travel-exponent").holds and result.claim("mean-field-stays-rich").holds
    assert all(f.overlaps == () for f in result.figures)
    for c in result.claims:
        assert_evidence_shows_values(c)


def test_too_few_steps_for_the_rich_network_to_learn_fails_honestly():
    exp = get_experiment("lazy-vs-rich")
    overrides = {"steps": 10, "taus": (0.03, 30.0), "widths": (8, 16, 32), "width_seeds": 1, "n": 32, "ntk_points": 8,
                 "probes": 4, "tau_width": 16}
    result = run_experiment(exp, seed=0, overrides=overrides)
    assert not result.claim("lazy-tests-worse").holds  # ten steps: nothing has been learnt yet, lazy or not


def _measured(*, last_distance=0.002, share0=0.3, weight_slope=-0.5, ntk_slope=-1.0, noise=0.02, seed=0):
    """A synthetic LazyVsRichMeasured: a clean τ sweep and power-law width sweeps with log-normal noise."""
    from losslab.experiments.lazy_vs_rich import LazyVsRichMeasured

    rng = np.random.default_rng(seed)
    widths = [32, 64, 128, 256, 512]
    law = lambda c, b: [[c * m**b * math.exp(rng.normal(0, noise)) for m in widths] for _ in range(3)]
    return LazyVsRichMeasured(
        taus=[0.03, 30.0], checkpoints=[1, 2], tau_weight_travel=[[1.0, 3.0], [0.001, 0.002]],
        tau_linear_distance=[[0.5, 0.9], [0.001, last_distance]], tau_ntk_change=[4.0, 0.002], tau_test_error=[0.05, 0.15],
        tau_linear_test_error=[0.2, 0.15], tau_train_loss=[0.01, 0.1], tau_nonlinear_share=[share0, 0.001],
        linearized_verdict="convex", widths=widths, ntk_weight_travel=law(3.0, weight_slope), ntk_ntk_change=law(10.0, ntk_slope),
        ntk_test_error=[[0.2] * 5] * 3, mf_weight_travel=law(1.2, 0.0), mf_ntk_change=law(3.0, 0.0), mf_test_error=[[0.1] * 5] * 3,
    )


def _judge(m):
    from losslab.experiments.lazy_vs_rich import LazyVsRichSettings, claims

    return {c.key: c for c in claims(LazyVsRichSettings(), m)}


def test_the_ntk_exponent_verdict_rests_on_its_interval_not_on_a_tolerance_around_minus_one():
    fast = _judge(_measured(ntk_slope=-0.8))["ntk-change-exponent"]  # far from −1, but its CI is below −1/2: holds
    assert fast.holds and "upper end" in fast.evidence and "b − (−1) = +0.2" in fast.evidence
    slow = _judge(_measured(ntk_slope=-0.55, noise=0.2))["ntk-change-exponent"]  # CI reaches above −1/2: fails
    fit = width_exponent([32, 64, 128, 256, 512], _measured(ntk_slope=-0.55, noise=0.2).ntk_ntk_change)
    assert fit.high >= -0.5 and not slow.holds
    assert f"upper end {fit.high:.3f}, needs < -0.500" in slow.evidence


def test_the_weight_exponent_needs_minus_a_half_inside_its_interval_and_within_the_tolerance():
    assert _judge(_measured())["weight-travel-exponent"].holds
    off = _judge(_measured(weight_slope=-0.65, noise=0.01))["weight-travel-exponent"]  # tight CI around −0.65
    assert not off.holds and "−0.5 outside it, needs inside" in off.evidence and "needs ≤ 0.1" in off.evidence
    assert "half-width" in off.evidence


def test_a_small_curvature_share_fails_even_when_it_is_many_times_the_lazy_one():
    c = _judge(_measured(share0=0.05))["rich-features-move"]  # 50× the lazy share, but only 5% of the Hessian
    assert not c.holds
    assert "‖H − GGN‖_F/‖H‖_F = 0.05, needs ≥ 0.1" in c.evidence and "ratio 50 ≥ 10" in c.evidence
    assert "at the end of the 300-step horizon" in c.statement


def test_failing_evidence_never_reads_as_if_the_threshold_were_met():
    judged = _judge(_measured(last_distance=0.0716))
    for key in ("lazy-as-tau-grows", "lazy-loss-convex"):
        assert not judged[key].holds
        assert "0.0716 ≤" not in judged[key].evidence and "0.0716, needs ≤ 0.05" in judged[key].evidence
    assert judged["lazy-tests-worse"].holds and "ratio 3 ≥ 2" in judged["lazy-tests-worse"].evidence


def test_figures_have_short_names_and_readable_captions():
    from losslab.report.sections.lazy_vs_rich import tau_sweep, width_scaling

    m = _measured()
    tau, width = tau_sweep(m), width_scaling(m)
    assert (tau.name, width.name) == ("tau", "width")  # the report writes lazy-vs-rich-tau.png
    assert "NTK NTK" not in width.caption and "NTK change (NTK parameterisation) ∝ m^" in width.caption


def test_taus_must_be_positive_by_the_constraint_itself():
    from losslab.experiments.lazy_vs_rich import LazyVsRichSettings

    constraint = LazyVsRichSettings.__dataclass_fields__["taus"].metadata["constraint"]
    assert not constraint.ok((0.0, 1.0)) and constraint.ok((0.03, 30.0))
    assert ">= 1e-06" in constraint.describe()  # --show-settings states the positivity the rule used to add
