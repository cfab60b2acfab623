"""train_ensemble(until_grad_norm=ε): runs freeze when ‖∇L‖ ≤ ε, the ensemble stops when all have."""

from __future__ import annotations

import pytest
import torch

from losslab import LosslabError, Problem
from losslab.fit import train, train_ensemble
from losslab.models import TwoLayer

F64 = torch.float64
SCALES = torch.tensor([1.0, 0.5, 0.1], dtype=F64)


def scaled_quadratic(params):
    """½ Σ c_i x_i²: GD with step η contracts coordinate i by (1 − η c_i) per step."""
    return 0.5 * (SCALES * params["x"] ** 2).sum()


def _steps_to(eps: float, x0: torch.Tensor, lr: float) -> int:
    """The first t with ‖∇L(x_t)‖ ≤ ε, by iterating the closed-form GD map x ← (1 − η c) x (no losslab)."""
    x, t = x0.clone(), 0
    while float((SCALES * x).norm()) > eps:
        x = (1 - lr * SCALES) * x
        t += 1
    return t


def test_runs_freeze_at_the_step_the_closed_form_says():
    prob = Problem.from_objective(scaled_quadratic, shapes={"x": (3,)}, init=1.0)
    theta0 = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 1e-3], [2.0, 0.0, 0.0], [0.0, 0.0, 50.0]], dtype=F64)
    eps, lr = 1e-6, 0.5
    runs = train_ensemble(prob, theta0=theta0, lr=lr, steps=400, until_grad_norm=eps, record_every=10)
    expected = [_steps_to(eps, x, lr) for x in theta0]
    expected = [t if t <= 400 else -1 for t in expected]
    assert runs.converged_at.tolist() == expected
    assert runs.converged.tolist() == [t >= 0 for t in expected]
    for k, t in enumerate(expected):  # frozen where it converged: the point after exactly t updates
        if t >= 0:
            torch.testing.assert_close(runs.theta[k], (1 - lr * SCALES) ** t * theta0[k], rtol=1e-12, atol=1e-300)
            assert float(runs.grad_norms[-1, k]) <= eps
    assert int(runs.steps[-1]) == (max(expected) if all(t >= 0 for t in expected) else 400)


def test_the_ensemble_stops_early_when_all_converged():
    prob = Problem.from_objective(scaled_quadratic, shapes={"x": (3,)}, init=1.0)
    runs = train_ensemble(prob, seeds=range(3), lr=1.0, steps=10_000, until_grad_norm=1e-8)
    assert bool(runs.converged.all())
    assert int(runs.steps[-1]) == int(runs.converged_at.max()) < 10_000


def test_unconverged_runs_match_plain_gd_and_train():
    X = torch.linspace(-1, 1, 12, dtype=F64)
    prob = Problem(TwoLayer(1, 3, "tanh"), X, torch.sin(3 * X))
    plain = train_ensemble(prob, seeds=[1, 2], lr=0.1, steps=50, record_every=10)
    until = train_ensemble(prob, seeds=[1, 2], lr=0.1, steps=50, record_every=10, until_grad_norm=1e-12)
    assert not until.converged.any() and until.converged_at.tolist() == [-1, -1]
    torch.testing.assert_close(until.theta, plain.theta, rtol=0, atol=1e-13)
    torch.testing.assert_close(until.losses, plain.losses, rtol=1e-13, atol=0)
    alone = train(prob, lr=0.1, steps=50, seed=2)
    torch.testing.assert_close(until.theta[1], alone.theta, rtol=0, atol=1e-12)
    assert plain.converged is None and plain.until_grad_norm is None


def test_a_diverging_run_leaves_the_batch_flagged():
    prob = Problem.from_objective(scaled_quadratic, shapes={"x": (3,)}, init=1.0)
    theta0 = torch.tensor([[1.0, 0.0, 0.0], [1e300, 0.0, 0.0]], dtype=F64)
    runs = train_ensemble(prob, theta0=theta0, lr=0.5, steps=200, until_grad_norm=1e-6)
    assert runs.converged.tolist() == [True, False] and runs.diverged.tolist() == [False, True]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"until_grad_norm": 0.0}, "until_grad_norm"),
    ({"until_grad_norm": -1e-3}, "until_grad_norm"),
    ({"until_grad_norm": float("nan")}, "until_grad_norm"),
    ({"until_grad_norm": "small"}, "until_grad_norm"),
    ({"until_grad_norm": 1e-6, "optimizer": "sgd"}, r"expected optimizer='gd' with until_grad_norm"),
])
def test_bad_until_grad_norm(kwargs, match):
    prob = Problem.from_objective(scaled_quadratic, shapes={"x": (3,)}, init=1.0)
    with pytest.raises(LosslabError, match=match) as info:
        train_ensemble(prob, seeds=[0], **kwargs)
    assert "\n" not in str(info.value)


def test_a_model_vmap_cannot_batch_is_refused_in_one_line_naming_train():
    import torch.nn as nn

    from losslab.models import Module

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, x):
            out = self.lin(x).squeeze(-1)
            return out * 2 if out.sum().item() > 0 else out

    g = torch.Generator().manual_seed(0)
    problem = Problem(Module(Branchy()), torch.randn(8, 2, generator=g), torch.randn(8, generator=g))
    for kwargs in ({}, {"until_grad_norm": 1e-3}, {"optimizer": "sgd", "batch_size": 4}):
        with pytest.raises(LosslabError, match=r"expected a model torch\.func\.vmap can batch .*losslab\.fit\.train") as info:
            train_ensemble(problem, seeds=[0, 1], steps=3, **kwargs)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("seeds", [3, 2.5, None])
def test_seeds_that_are_not_a_sequence_are_one_line_errors(seeds):
    X = torch.linspace(-1, 1, 6, dtype=torch.float64).reshape(-1, 1)
    problem = Problem(TwoLayer(1, 3), X, X[:, 0] ** 2)
    with pytest.raises(LosslabError, match=r"expected seeds") as info:
        train_ensemble(problem, seeds=seeds, steps=2)
    assert "\n" not in str(info.value)
