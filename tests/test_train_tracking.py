"""Curvature tracked during training: λ_max, the Hessian trace and ‖H − GGN‖_F against dense float64 references.

The references (``tests/references.py``) are ``torch.func.hessian`` of the squared loss written out on the
model's outputs, ``torch.linalg.eigvalsh`` of it, its trace, and the GGN Jᵀ H_ℓ J from ``torch.func.jacrev``:
none of losslab's operators, Lanczos or trace estimators. The MLP has p = 67 > 30 parameters, so λ_max goes
through Lanczos (not the dense path ``eigs`` takes for p ≤ 30).
"""

from __future__ import annotations

import pytest
import torch

from losslab import LosslabError, Problem
from losslab import data as D
from losslab.fit import TRACKABLE, tracking_cost, train
from losslab.fit.tracking import LANCZOS_MAX_PRODUCTS
from losslab.models import MLP

from references import dense_eigenvalues, dense_ggn, dense_hessian, mse_of, output_loss_of, outputs_of

ALL = ("lambda_max", "trace", "nonlinearity")
SPREAD = 4.0  # an estimate within SPREAD standard errors of the dense value


@pytest.fixture(scope="module")
def problem() -> Problem:
    X, y = D.teacher(20, d_in=2, width=3, seed=3)
    return Problem(MLP([2, 6, 6, 1], "tanh"), X, 3 * y)


@pytest.fixture(scope="module")
def tracked(problem):
    """GD for 25 steps, all three quantities every 10 steps (records at 0, 10, 20, 25)."""
    return train(problem, lr=0.05, steps=25, seed=7, record_every=5, track=ALL, every=10)


def dense_references(problem: Problem, theta: torch.Tensor) -> tuple[float, float, float]:
    """(λ_max, tr H, ‖H − GGN‖_F) at θ from dense float64 matrices."""
    H = dense_hessian(mse_of(problem), theta)
    G = dense_ggn(outputs_of(problem), output_loss_of(problem), theta)
    return float(dense_eigenvalues(mse_of(problem), theta)[-1]), float(torch.trace(H)), float(torch.linalg.norm(H - G))


def test_records_are_at_every_tenth_step_and_the_last(problem, tracked):
    track = tracked.curvature
    assert problem.n_params == 67
    assert track.steps.tolist() == [0, 10, 20, 25] == [t for t in range(26) if t % 10 == 0 or t == 25]
    assert all(len(v) == 4 for v in (track.lambda_max, track.lambda_max_bound, track.trace, track.nonlinearity))


def test_lambda_max_is_within_its_bound_of_the_dense_largest_eigenvalue(problem, tracked):
    track = tracked.curvature
    for t, value, bound in zip(track.steps.tolist(), track.lambda_max.tolist(), track.lambda_max_bound.tolist(), strict=True):
        want, _, _ = dense_references(problem, tracked.thetas[t // 5])
        assert abs(value - want) <= bound + 1e-12 * want
        assert value <= want * (1 + 1e-12)  # a Ritz value never exceeds λ_max
        assert abs(value - want) <= 1e-8 * want  # converged to eigs' default tolerance
    assert bool(track.lambda_max_converged.all())


def test_trace_and_nonlinearity_are_within_their_standard_errors_of_the_dense_values(problem, tracked):
    track = tracked.curvature
    for i, t in enumerate(track.steps.tolist()):
        _, trace, frob = dense_references(problem, tracked.thetas[t // 5])
        assert abs(float(track.trace[i]) - trace) <= SPREAD * float(track.trace_stderr[i])
        assert abs(float(track.nonlinearity[i]) - frob) <= SPREAD * float(track.nonlinearity_stderr[i])
        assert 0 < float(track.nonlinearity_stderr[i]) < 0.5 * frob  # an error bar of the right size, not a vacuous one


def test_a_sketch_spanning_all_parameters_gives_the_exact_trace(problem):
    run = train(problem, lr=0.05, steps=4, seed=1, record_every=2, track="trace", every=2, track_samples=3 * 67)
    for i, t in enumerate(run.curvature.steps.tolist()):
        _, trace, _ = dense_references(problem, run.thetas[t // 2])
        assert float(run.curvature.trace[i]) == pytest.approx(trace, rel=1e-9)
    assert run.curvature.products.tolist() == [2 * 67] * 3  # Hutch++ on a full sketch: A S and A Q


def test_the_nonlinearity_of_a_model_affine_in_its_parameters_is_exactly_zero():
    X, y = D.teacher(20, d_in=2, width=3, seed=3)
    problem = Problem(MLP([2, 6, 6, 1], "tanh"), X, y).restrict(["W2", "b2"], at=MLP([2, 6, 6, 1], "tanh").init(seed=0))
    run = train(problem, lr=0.1, steps=3, track=("nonlinearity",), every=1)
    assert run.curvature.nonlinearity.tolist() == [0.0] * 4  # the last layer alone: f is affine in it


def test_the_cost_is_stated_before_the_run_and_the_records_keep_within_it(problem, tracked):
    cost = tracking_cost(problem, ALL, every=10, steps=25)
    assert tracked.tracking_cost == cost and tracked.curvature.cost == cost
    assert cost.records == 4 and cost.per_record == {"lambda_max": LANCZOS_MAX_PRODUCTS, "trace": 30, "nonlinearity": 30}
    assert cost.per_record_total == 360 and cost.total == 1440 and cost.capped
    used = tracked.curvature.products
    assert len(used) == 4 and bool((used >= 60).all()) and bool((used <= cost.per_record_total).all())
    assert tracked.curvature.total_products == int(used.sum()) <= cost.total
    line = cost.line()
    assert "\n" not in line and "every 10 steps (4 records)" in line and "≤ 1,440 in total" in line


def test_the_cost_line_is_printed_with_the_progress_bar(problem, capsys):
    train(problem, lr=0.05, steps=3, track=("trace",), every=3, progress=True)
    assert tracking_cost(problem, ("trace",), every=3, steps=3).line() in capsys.readouterr().out.replace("\n", " ")


def test_records_are_seeded(problem, tracked):
    again = train(problem, lr=0.05, steps=25, seed=7, record_every=5, track=ALL, every=10)
    for name in ("lambda_max", "lambda_max_bound", "trace", "trace_stderr", "nonlinearity", "products"):
        assert torch.equal(getattr(again.curvature, name), getattr(tracked.curvature, name)), name
    other = train(problem, lr=0.05, steps=25, seed=8, theta0=tracked.thetas[0], record_every=5, track=ALL, every=10)
    assert torch.equal(other.theta, tracked.theta)  # the same run (gd draws nothing once θ_0 is given) ...
    assert not torch.equal(other.curvature.trace, tracked.curvature.trace)  # ... but other probes


def test_an_early_stop_is_tracked_at_its_last_step(problem):
    run = train(problem, lr=0.05, steps=40, track=("lambda_max",), every=10, callback=lambda t, theta, loss: t == 13)
    assert run.stopped_at == 13 and run.curvature.steps.tolist() == [0, 10, 13]
    want, _, _ = dense_references(problem, run.theta)
    assert abs(float(run.curvature.lambda_max[-1]) - want) <= float(run.curvature.lambda_max_bound[-1]) + 1e-12 * want


def test_sgd_tracks_on_its_own_schedule(problem):
    run = train(problem, optimizer="sgd", lr=0.05, steps=30, batch_size=5, record_every=15, track=("trace",), every=10)
    assert run.curvature.steps.tolist() == [0, 10, 20, 30] and run.loss_steps.tolist() == [0, 15, 30]


def test_without_track_there_are_no_records(problem):
    run = train(problem, steps=2)
    assert run.curvature is None and run.tracking_cost is None
    assert TRACKABLE == ALL


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"track": ("sharpness",)}, r"unknown tracked quantity 'sharpness': expected names from 'lambda_max', 'trace', 'nonlinearity'"),
        ({"track": ("trace", "trace")}, r"expected each tracked quantity once, got track=\('trace', 'trace'\)"),
        ({"track": 5}, r"expected track to be a tuple of names from .*got track=5; e.g. track=\('lambda_max',\)"),
        ({"track": [1]}, r"got track=\[1\]"),
        ({"track": ("trace",), "every": 0}, r"expected every to be an integer >= 1, got every=0"),
        ({"track": ("trace",), "every": 2.5}, r"got every=2.5"),
        ({"track": ("trace",), "track_samples": 5}, r"expected samples to be an integer >= 6, got samples=5"),
    ],
)
def test_bad_tracking_inputs_to_train_are_one_line_errors(problem, kwargs, match):
    with pytest.raises(LosslabError, match=match) as info:
        train(problem, **{"steps": 3, **kwargs})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("problem", ("trace",), 1, 1), {}, r"expected a losslab.Problem, got str"),
        ((None, (), 1, 1), {}, r"expected at least one tracked quantity, got track=\(\)"),
        ((None, ("trace",), 1, 0), {}, r"expected steps to be an integer >= 1, got steps=0"),
        ((None, ("trace",), -3, 10), {}, r"expected every to be an integer >= 1, got every=-3"),
        ((None, ("eigs",), 1, 1), {}, r"unknown tracked quantity 'eigs'"),
        ((None, ("trace",), 1, 1), {"samples": 2}, r"got samples=2"),
    ],
)
def test_bad_inputs_to_tracking_cost_are_one_line_errors(problem, args, kwargs, match):
    args = (problem if args[0] is None else args[0], *args[1:])
    with pytest.raises(LosslabError, match=match) as info:
        tracking_cost(*args, **kwargs)
    assert "\n" not in str(info.value)


def test_an_objectives_nonlinearity_is_its_whole_hessian_norm_exact_when_samples_reach_p():
    from references import dense_hessian

    def rosenbrock(params):
        x, y = params["xy"][0], params["xy"][1]
        return (1 - x) ** 2 + 100 * (y - x**2) ** 2

    problem = Problem.from_objective(rosenbrock, shapes={"xy": (2,)})
    theta0 = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    run = train(problem, lr=1e-4, steps=2, theta0=theta0, track=("nonlinearity",), every=1)
    assert run.tracking_cost.per_record == {"nonlinearity": 2}  # p unit vectors, not 30 probes
    loss = lambda t: rosenbrock({"xy": t})
    for t, theta in zip(run.curvature.steps.tolist(), run.thetas, strict=True):
        exact = float(torch.linalg.matrix_norm(dense_hessian(loss, theta)))  # the GGN of an objective is 0
        assert float(run.curvature.nonlinearity[t]) == pytest.approx(exact, rel=1e-12)
    assert run.curvature.nonlinearity_stderr.tolist() == [0.0] * 3 and run.curvature.products.tolist() == [2] * 3
