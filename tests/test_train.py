"""Tests for losslab.fit.train: convergence on convex quadratics, reproducibility, divergence, bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from losslab import LosslabError, Problem
from losslab import data as D
from losslab.fit import TrainingDiverged, Trajectory, least_squares_result, train
from losslab.fit.minibatches import batch_indices
from losslab.models import Polynomial, RandomFeatures, TwoLayer
from losslab.random_streams import generator

from references import dense_eigenvalues, dense_gradient

F64 = torch.float64


@pytest.fixture
def cubic_problem() -> Problem:
    X, y = D.cubic(50, noise=0.1, seed=0)
    return Problem(Polynomial(1, 3), X, y)


@pytest.fixture
def net_problem() -> Problem:
    X, y = D.teacher(40, d_in=2, width=3, seed=1)
    return Problem(TwoLayer(2, 8, "tanh"), X, y)


def test_gd_on_a_convex_quadratic_converges_to_least_squares(cubic_problem):
    # Hessian (2/n)ΦᵀΦ has eigenvalues in [0.028, 2.16]: lr = 0.4 contracts by <= 0.989 per step
    run = train(cubic_problem, optimizer="gd", lr=0.4, steps=3000)
    ls = least_squares_result(cubic_problem)
    torch.testing.assert_close(run.theta, ls.theta, rtol=0, atol=1e-8)
    assert run.final_loss == pytest.approx(ls.loss, rel=1e-12)
    assert bool((run.losses[1:] <= run.losses[:-1] + 1e-15).all())  # monotone for lr < 2/L


def test_gd_from_theta0_converges_to_the_minimiser_nearest_theta0():
    """Overparameterised (p > n): GD never leaves θ0 + rowspace(Φ), so it finds least_squares(theta0=θ0)."""
    X, y = D.teacher(6, d_in=10, seed=0)
    prob = Problem(RandomFeatures(10, 30, "tanh", seed=1), X, y)
    theta0 = prob.init(seed=5)
    # lr and steps from the dense Hessian (a quadratic: GD contracts the rowspace error by 1 − λ_min⁺/λ_max per step)
    ev = dense_eigenvalues(prob.loss, theta0)
    top, low = float(ev[-1]), float(ev[ev > 1e-10 * ev[-1]].min())
    steps = math.ceil(math.log(1e-11) / math.log(1 - low / top))
    run = train(prob, lr=1 / top, steps=steps, theta0=theta0)
    expected = least_squares_result(prob, theta0=theta0).theta
    torch.testing.assert_close(run.theta, expected, rtol=0, atol=1e-8)
    assert not torch.allclose(expected, least_squares_result(prob).theta, atol=1e-3)  # differs from the min-norm one


def test_one_gd_step_is_theta_minus_lr_grad(cubic_problem):
    theta0 = cubic_problem.init(seed=3)
    run = train(cubic_problem, lr=0.1, steps=1, theta0=theta0)
    torch.testing.assert_close(run.theta, theta0 - 0.1 * cubic_problem.grad(theta0), rtol=0, atol=1e-15)
    assert run.losses.shape == (2,)
    assert float(run.losses[0]) == pytest.approx(float(cubic_problem.loss(theta0)), rel=1e-15)


def test_one_sgd_step_uses_the_seeded_first_minibatch(cubic_problem):
    theta0 = cubic_problem.init(seed=0)
    run = train(cubic_problem, optimizer="sgd", lr=0.1, steps=1, batch_size=8, seed=11, theta0=theta0)
    idx = torch.randperm(50, generator=generator(11, "minibatches"))[:8]  # train's documented minibatch stream
    g = dense_gradient(lambda th: cubic_problem.loss(th, indices=idx), theta0)
    torch.testing.assert_close(run.theta, theta0 - 0.1 * g, rtol=0, atol=1e-15)
    assert run.batch_size == 8


def test_minibatches_cover_each_epoch_without_replacement():
    batches = batch_indices(10, 4, torch.Generator().manual_seed(0))
    for _ in range(3):
        epoch = [next(batches) for _ in range(3)]
        assert [len(b) for b in epoch] == [4, 4, 2]
        assert sorted(torch.cat(epoch).tolist()) == list(range(10))


def test_first_adam_step_moves_each_coordinate_by_lr(cubic_problem):
    run = train(cubic_problem, optimizer="adam", lr=1e-3, steps=1, seed=2)
    step = (run.thetas[-1] - run.thetas[0]).abs()
    torch.testing.assert_close(step, torch.full_like(step, 1e-3), rtol=1e-4, atol=0)


def test_adam_decreases_the_loss_of_a_two_layer_net(net_problem):
    run = train(net_problem, optimizer="adam", lr=0.02, steps=300, seed=0)
    assert run.losses.shape == (301,)
    assert run.final_loss < 0.2 * float(run.losses[0])
    assert set(run.params) == {"W", "b", "v"}


@pytest.mark.parametrize(("optimizer", "batch_size"), [("gd", None), ("sgd", 8), ("adam", None), ("adam", 10)])
def test_same_seed_reproduces_exactly(net_problem, optimizer, batch_size):
    a = train(net_problem, optimizer=optimizer, lr=0.05, steps=40, batch_size=batch_size, seed=3)
    b = train(net_problem, optimizer=optimizer, lr=0.05, steps=40, batch_size=batch_size, seed=3)
    assert torch.equal(a.losses, b.losses) and torch.equal(a.thetas, b.thetas) and torch.equal(a.theta, b.theta)
    assert torch.equal(a.steps, b.steps)


def test_different_seed_changes_the_sgd_batches(net_problem):
    theta0 = net_problem.init(seed=0)
    a = train(net_problem, optimizer="sgd", lr=0.05, steps=30, batch_size=8, seed=1, theta0=theta0)
    b = train(net_problem, optimizer="sgd", lr=0.05, steps=30, batch_size=8, seed=2, theta0=theta0)
    assert torch.equal(a.thetas[0], b.thetas[0])
    assert not torch.equal(a.theta, b.theta)


def test_different_seed_changes_the_start(net_problem):
    a = train(net_problem, steps=5, seed=1)
    b = train(net_problem, steps=5, seed=2)
    assert torch.equal(a.thetas[0], net_problem.init(seed=1))
    assert not torch.equal(a.thetas[0], b.thetas[0])


def test_recorded_steps_and_thetas(cubic_problem):
    run = train(cubic_problem, lr=0.1, steps=20, record_every=7)
    assert isinstance(run, Trajectory)
    assert run.steps.tolist() == [0, 7, 14, 20]
    assert run.thetas.shape == (4, 4)
    assert torch.equal(run.thetas[-1], run.theta)
    for k, theta in zip(run.steps.tolist(), run.thetas):
        assert float(cubic_problem.loss(theta)) == float(run.losses[k])
    default = train(cubic_problem, lr=0.1, steps=250)
    assert default.steps.tolist()[:3] == [0, 2, 4] and default.steps.tolist()[-1] == 250
    assert (run.optimizer, run.lr, run.seed, run.batch_size) == ("gd", 0.1, 0, None)


def test_training_a_restricted_problem_keeps_the_fixed_groups(net_problem):
    params0 = net_problem.model.init(seed=4)
    prob = net_problem.restrict(["v"], at=params0)
    top = float(dense_eigenvalues(prob.loss, prob.init(0))[-1])  # a quadratic in v: lr < 2/λ_max descends
    run = train(prob, lr=1 / top, steps=400, seed=0)
    assert run.theta.shape == (8,)
    assert torch.equal(run.params["W"], params0["W"]) and torch.equal(run.params["b"], params0["b"])
    best = least_squares_result(prob).loss  # the minimum over v: training approaches it from above
    assert best - 1e-12 <= run.final_loss < best + 0.05 * (float(run.losses[0]) - best)


def test_divergence_raises_with_the_lr_and_the_partial_trajectory(cubic_problem):
    with pytest.raises(TrainingDiverged, match=r"diverged at step \d+ .*lower lr \(got lr=1000\)") as info:
        train(cubic_problem, optimizer="gd", lr=1e3, steps=500)
    err = info.value
    assert isinstance(err, LosslabError)
    partial = err.trajectory
    assert len(partial.losses) == err.step >= 2
    assert torch.isfinite(partial.losses).all() and torch.isfinite(partial.thetas).all()
    assert int(partial.steps[-1]) == err.step - 1 and torch.equal(partial.thetas[-1], partial.theta)
    assert float(partial.losses[-1]) > float(partial.losses[0])


def test_non_finite_loss_at_the_start_is_not_blamed_on_lr(cubic_problem):
    with pytest.raises(LosslabError, match=r"expected a finite loss at the start theta0, got loss=inf") as info:
        train(cubic_problem, theta0=torch.full((4,), 1e200, dtype=F64))
    assert not isinstance(info.value, TrainingDiverged)


def test_progress_bar_runs(cubic_problem):
    run = train(cubic_problem, lr=0.1, steps=5, progress=True)
    assert run.losses.shape == (6,)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimizer": "lbfgs"}, r"unknown optimizer 'lbfgs': expected one of 'gd', 'sgd', 'adam'"),
        ({"lr": 0.0}, r"expected lr to be a finite number > 0, got lr=0.0"),
        ({"lr": -1}, r"got lr=-1"),
        ({"lr": math.nan}, r"got lr=nan"),
        ({"lr": "fast"}, r"got lr='fast'"),
        ({"steps": 0}, r"expected steps to be an integer >= 1, got steps=0"),
        ({"steps": 2.0}, r"got steps=2.0"),
        ({"optimizer": "sgd", "batch_size": 0}, r"expected batch_size to be an integer in \[1, n=50\], got batch_size=0"),
        ({"optimizer": "sgd", "batch_size": 51}, r"got batch_size=51"),
        ({"optimizer": "gd", "batch_size": 10}, r"gd takes full-batch steps.*use optimizer='sgd'"),
        ({"record_every": 0}, r"expected record_every to be an integer >= 1, got record_every=0"),
        ({"theta0": torch.zeros(3)}, r"expected theta0 of shape \(4,\), got shape \(3,\)"),
        ({"seed": -1}, r"expected seed to be an integer in \[0, 2\*\*63 - 1\], got seed=-1"),
    ],
)
def test_bad_inputs(cubic_problem, kwargs, match):
    with pytest.raises(LosslabError, match=match):
        train(cubic_problem, **{"steps": 3, **kwargs})


def test_not_a_problem():
    with pytest.raises(LosslabError, match=r"expected a losslab.Problem, got str"):
        train("cubic")
