"""train's stopping rules and its loss schedule, against GD written out by hand; bad inputs; threads restored.

The reference runs are plain loops θ ← θ − lr·∇L(θ) with ∇ by ``torch.func.grad`` of the loss written out
(``references.mse_of``: mean((f − y)²) on the model's outputs), not losslab's gradients or losses.
"""

from __future__ import annotations

import math

import pytest
import torch

from losslab import LosslabError, Problem
from losslab import data as D
from losslab.fit import STOP_REASONS, TrainingDiverged, train
from losslab.models import Polynomial, TwoLayer

from references import dense_gradient, mse_of

F64 = torch.float64


@pytest.fixture
def net_problem() -> Problem:
    X, y = D.teacher(40, d_in=2, width=3, seed=1)
    return Problem(TwoLayer(2, 6, "tanh"), X, y)


def hand_gd(problem: Problem, lr: float, steps: int, theta0: torch.Tensor):
    """θ_t, L(θ_t), ‖∇L(θ_t)‖ for t = 0..steps by a hand loop on the written-out loss."""
    loss = mse_of(problem)
    theta, thetas, losses, norms = theta0.clone(), [], [], []
    for t in range(steps + 1):
        g = dense_gradient(loss, theta)
        thetas.append(theta)
        losses.append(float(loss(theta)))
        norms.append(float(g.norm()))
        if t < steps:
            theta = theta - lr * g
    return thetas, losses, norms


def test_until_loss_stops_at_the_first_step_at_or_below_the_threshold(net_problem):
    theta0 = net_problem.init(0)
    thetas, losses, _ = hand_gd(net_problem, 0.3, 200, theta0)
    threshold = 0.5 * (losses[0] + losses[-1])  # crossed part of the way
    first = next(t for t, v in enumerate(losses) if v <= threshold)
    assert 0 < first < 200
    run = train(net_problem, lr=0.3, steps=200, theta0=theta0, until_loss=threshold)
    assert (run.stopped, run.stopped_at) == ("until_loss", first)
    torch.testing.assert_close(run.theta, thetas[first], rtol=0, atol=1e-12)
    assert run.loss_steps.tolist() == list(range(first + 1))  # gd: the loss at every step, which it computes anyway
    assert run.losses.tolist() == pytest.approx(losses[: first + 1], rel=1e-12)
    assert run.final_loss <= threshold < float(run.losses[-2])
    assert int(run.steps[-1]) == first and torch.equal(run.thetas[-1], run.theta)


def test_until_grad_norm_stops_where_the_full_batch_gradient_is_small_enough():
    X, y = D.cubic(30, noise=0.1, seed=0)
    problem = Problem(Polynomial(1, 3), X, y)  # convex: the gradient norm falls to zero
    theta0 = problem.init(0)
    thetas, _, norms = hand_gd(problem, 0.4, 400, theta0)
    threshold = math.sqrt(norms[0] * norms[-1])  # crossed part of the way
    first = next(t for t, v in enumerate(norms) if v <= threshold)
    assert 0 < first < 400
    run = train(problem, lr=0.4, steps=400, theta0=theta0, until_grad_norm=threshold)
    assert (run.stopped, run.stopped_at) == ("until_grad_norm", first)
    torch.testing.assert_close(run.theta, thetas[first], rtol=0, atol=1e-12)
    assert run.grad_norms.tolist() == pytest.approx(norms[: first + 1], rel=1e-10)
    assert float(run.grad_norms[-1]) <= threshold < float(run.grad_norms[-2])


def test_a_callback_sees_every_gd_step_and_stops_the_run_when_it_returns_true(net_problem):
    theta0 = net_problem.init(2)
    thetas, losses, _ = hand_gd(net_problem, 0.2, 30, theta0)
    seen = []

    def stop_at_twelve(step, theta, loss):
        seen.append((step, theta, loss))
        theta.zero_()  # a copy: the run must not see this
        return step == 12

    run = train(net_problem, lr=0.2, steps=30, theta0=theta0, callback=stop_at_twelve)
    assert (run.stopped, run.stopped_at) == ("callback", 12)
    assert [s for s, _, _ in seen] == list(range(13))
    assert [v for _, _, v in seen] == pytest.approx(losses[:13], rel=1e-12)
    torch.testing.assert_close(run.theta, thetas[12], rtol=0, atol=1e-12)


def test_a_callback_returning_none_or_false_runs_every_step(net_problem):
    run = train(net_problem, lr=0.1, steps=7, callback=lambda step, theta, loss: None if step % 2 else False)
    assert (run.stopped, run.stopped_at, len(run.losses)) == ("steps", 7, 8)


def test_rules_are_named_in_order_loss_then_gradient_then_callback(net_problem):
    stop_all = train(net_problem, lr=0.1, steps=10, until_loss=1e9, until_grad_norm=1e9, callback=lambda *a: True)
    assert (stop_all.stopped, stop_all.stopped_at) == ("until_loss", 0)  # θ_0 meets them all: no update made
    assert torch.equal(stop_all.theta, net_problem.init(0)) and stop_all.losses.shape == (1,)
    assert train(net_problem, lr=0.1, steps=10, until_grad_norm=1e9, callback=lambda *a: True).stopped == "until_grad_norm"
    assert set(STOP_REASONS) == {"steps", "until_loss", "until_grad_norm", "callback"}


def test_sgd_computes_the_full_batch_loss_only_on_the_recording_schedule(net_problem):
    seen = []
    run = train(net_problem, optimizer="sgd", lr=0.1, steps=50, batch_size=8, seed=4, record_every=10,
                callback=lambda step, theta, loss: seen.append(step))
    assert run.loss_steps.tolist() == run.steps.tolist() == [0, 10, 20, 30, 40, 50] == seen
    loss = mse_of(net_problem)
    for theta, value, norm in zip(run.thetas, run.losses, run.grad_norms, strict=True):
        assert float(value) == pytest.approx(float(loss(theta)), rel=1e-12)
        assert float(norm) == pytest.approx(float(dense_gradient(loss, theta).norm()), rel=1e-10)
    assert (run.stopped, run.stopped_at) == ("steps", 50)


@pytest.mark.parametrize(("optimizer", "batch_size"), [("sgd", 8), ("adam", 10)])
def test_minibatch_runs_check_the_stopping_rules_on_the_schedule(net_problem, optimizer, batch_size):
    full = train(net_problem, optimizer=optimizer, lr=0.05, steps=120, batch_size=batch_size, seed=1, record_every=5)
    threshold = 0.5 * float(full.losses[0] + full.losses[-1])
    first = int(full.loss_steps[int(torch.nonzero(full.losses <= threshold)[0])])
    run = train(net_problem, optimizer=optimizer, lr=0.05, steps=120, batch_size=batch_size, seed=1, record_every=5,
                until_loss=threshold)
    assert (run.stopped, run.stopped_at) == ("until_loss", first) and first % 5 == 0
    assert torch.equal(run.theta, full.thetas[first // 5]) and run.loss_steps.tolist() == list(range(0, first + 1, 5))


def test_adam_full_batch_records_the_loss_at_every_step(net_problem):
    run = train(net_problem, optimizer="adam", lr=0.01, steps=25, record_every=10)
    assert run.loss_steps.tolist() == list(range(26)) and run.steps.tolist() == [0, 10, 20, 25]


def test_a_diverging_sgd_run_ends_its_partial_trajectory_with_a_recorded_loss():
    X, y = D.cubic(40, noise=0.1, seed=0)
    problem = Problem(Polynomial(1, 3), X, y)
    with pytest.raises(TrainingDiverged) as info:
        train(problem, optimizer="sgd", lr=50.0, steps=400, batch_size=8, record_every=50)
    partial, step = info.value.trajectory, info.value.step
    assert int(partial.loss_steps[-1]) == int(partial.steps[-1]) == partial.stopped_at == step - 1
    assert float(partial.losses[-1]) == pytest.approx(float(mse_of(problem)(partial.theta)), rel=1e-12)


def test_the_callers_thread_count_is_restored(net_problem):
    before = torch.get_num_threads()
    seen = []
    try:
        torch.set_num_threads(2)
        train(net_problem, steps=3, callback=lambda *a: seen.append(torch.get_num_threads()))  # "auto": one thread inside
        assert torch.get_num_threads() == 2 and seen == [1] * 4
        train(net_problem, steps=3, threads=None, callback=lambda *a: seen.append(torch.get_num_threads()))
        assert seen[4:] == [2] * 4 and torch.get_num_threads() == 2
        with pytest.raises(ZeroDivisionError):
            train(net_problem, steps=3, callback=lambda *a: 1 / 0)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"until_loss": -1.0}, r"expected until_loss to be a finite number >= 0, got until_loss=-1.0"),
        ({"until_loss": math.nan}, r"expected until_loss to be a finite number >= 0, got until_loss=nan"),
        ({"until_loss": math.inf}, r"got until_loss=inf"),
        ({"until_loss": "small"}, r"expected until_loss to be a number >= 0, got until_loss='small'"),
        ({"until_grad_norm": -1e-3}, r"expected until_grad_norm to be a finite number >= 0, got until_grad_norm=-0.001"),
        ({"until_grad_norm": math.nan}, r"got until_grad_norm=nan"),
        ({"callback": 3}, r"expected callback to be a function callback\(step, theta, loss\) -> bool \| None, got callback=3"),
        ({"callback": lambda s, t, v: 1}, r"expected callback\(step, theta, loss\) to return True, False or None, got 1 at step 0"),
        ({"callback": lambda s, t, v: torch.tensor(True)}, r"to return True, False or None, got tensor\(True\)"),
        ({"every": 5}, r"every=5 sets how often track= quantities are recorded, got track=\(\)"),
    ],
)
def test_bad_stopping_inputs_are_one_line_errors(net_problem, kwargs, match):
    with pytest.raises(LosslabError, match=match) as info:
        train(net_problem, **{"steps": 3, **kwargs})
    assert "\n" not in str(info.value)
