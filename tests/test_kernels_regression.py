"""Tests for losslab.kernels.ntk_regression: the Linearized network trained to convergence, two independent ways.

(1) The closed form on Δθ = θ − θ₀: the minimum-norm least-squares solution J⁺r of a dense float64 Jacobian
(``torch.linalg.lstsq`` with LAPACK's SVD-based gelsd), predictions f(θ₀, X*) + J(X*)Δθ; (2) plain gradient
descent (:func:`losslab.fit.train`) on :class:`~losslab.models.Linearized` from θ₀, run until it has converged.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from losslab import LosslabError, MemoryBudgetError, Problem
from losslab.fit import train
from losslab.kernels import ntk_regression
from losslab.models import Linearized, Module, TwoLayer

from references import dense_jacobian

F64 = torch.float64


def _problem(n: int = 5, width: int = 4, seed: int = 0, **kwargs) -> Problem:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, generator=g, dtype=F64)
    return Problem(TwoLayer(d_in=2, width=width, activation="tanh"), X, torch.sin(2 * X[:, 0]) + X[:, 1], **kwargs)


def _closed_form(prob: Problem, theta0: torch.Tensor, X_new: torch.Tensor, ridge: float = 0.0) -> torch.Tensor:
    """f(θ₀, X*) + J(X*)Δθ with Δθ = argmin (1/n)‖JΔ − r‖² + λ‖Δ‖² (min-norm for λ = 0), from a dense Jacobian."""
    out = lambda X: (lambda t: prob.model.apply(prob.unflatten(t), X))
    J, J_new = dense_jacobian(out(prob.X), theta0), dense_jacobian(out(X_new), theta0)
    r = prob.y - out(prob.X)(theta0)
    if ridge:
        A = torch.cat([J, math.sqrt(prob.n * ridge) * torch.eye(J.shape[1], dtype=F64)])
        r = torch.cat([r, torch.zeros(J.shape[1], dtype=F64)])
        J = A
    delta = torch.linalg.lstsq(J, r[:, None], driver="gelsd").solution[:, 0]
    return out(X_new)(theta0) + J_new @ delta


@pytest.mark.parametrize("seed", [0, 1])
def test_predictions_equal_the_min_norm_closed_form_on_delta_theta(seed):
    prob = _problem(n=6, width=5, seed=seed)  # p = 20 > n = 6: many minimisers; GD from θ₀ picks the nearest
    theta0 = prob.init(seed + 10)
    X_new = torch.randn(9, 2, generator=torch.Generator().manual_seed(99), dtype=F64)
    fit = ntk_regression(prob, theta0, X_new)
    torch.testing.assert_close(fit.predictions, _closed_form(prob, theta0, X_new), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(fit.train_predictions, prob.y, rtol=1e-9, atol=1e-9)  # it interpolates
    assert fit.rank == 6


def test_ridge_matches_the_augmented_least_squares_solution():
    prob = _problem(n=6, width=5)
    theta0 = prob.init(3)
    X_new = torch.randn(4, 2, generator=torch.Generator().manual_seed(5), dtype=F64)
    fit = ntk_regression(prob, theta0, X_new, ridge=0.03)
    torch.testing.assert_close(fit.predictions, _closed_form(prob, theta0, X_new, ridge=0.03), rtol=1e-9, atol=1e-9)


def test_more_outputs_than_parameters_gives_the_least_squares_fit():
    prob = _problem(n=40, width=2)  # p = 8 < n = 40: Θ(X, X) has rank 8
    theta0 = prob.init(1)
    X_new = torch.randn(5, 2, generator=torch.Generator().manual_seed(6), dtype=F64)
    fit = ntk_regression(prob, theta0, X_new)
    assert fit.rank == prob.n_params
    torch.testing.assert_close(fit.predictions, _closed_form(prob, theta0, X_new), rtol=1e-9, atol=1e-9)
    by_kernel = ntk_regression(prob, theta0, X_new, implementation="kernel")  # Θ = JJᵀ: √ε-level accuracy only
    assert by_kernel.rank == prob.n_params
    torch.testing.assert_close(by_kernel.predictions, fit.predictions, rtol=1e-5, atol=1e-5)


def test_a_rank_deficient_multi_output_module_matches_the_pseudo_inverse_of_j():
    """The reviewer's case: N = 90 outputs > p = 33, where Θ = JJᵀ lost seven digits; J's SVD keeps float64 accuracy."""
    g = torch.Generator().manual_seed(4)
    with torch.random.fork_rng():  # the module's own init draws from torch's global generator: seed it here
        torch.manual_seed(4)
        net = torch.nn.Sequential(torch.nn.Linear(2, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()
    X = torch.randn(30, 2, generator=g, dtype=F64)
    prob = Problem(Module(net), X, torch.randn(30, 3, generator=g, dtype=F64))
    theta0 = prob.default_theta()
    out = lambda X: (lambda t: prob.model.apply(prob.unflatten(t), X))
    J = dense_jacobian(out(X), theta0)
    assert J.shape == (90, 33)
    r = (prob.y - out(X)(theta0)).reshape(-1)
    delta = torch.from_numpy(np.linalg.pinv(J.numpy()) @ r.numpy())  # NumPy's pinv: an independent SVD
    X_new = torch.randn(7, 2, generator=g, dtype=F64)
    fit = ntk_regression(prob, theta0, X_new)
    assert fit.rank == 33
    # two SVD-based solves agree to about eps·cond(J)·‖r‖ (cond(J) reaches 1e4–1e5 for such nets): allow that, not more
    tol = 100 * torch.finfo(F64).eps * float(torch.linalg.cond(J)) * float(r.norm())
    assert tol < 1e-8  # a tight bound: cond(J) of this seeded net is moderate
    torch.testing.assert_close(fit.train_predictions, out(X)(theta0) + (J @ delta).reshape(30, 3), rtol=0, atol=max(tol, 1e-12))
    J_new = dense_jacobian(out(X_new), theta0)
    torch.testing.assert_close(fit.predictions, out(X_new)(theta0) + (J_new @ delta).reshape(7, 3), rtol=0, atol=max(tol, 1e-12))


def test_the_two_implementations_agree_on_a_well_conditioned_problem_with_and_without_ridge():
    prob = _problem(n=6, width=5, seed=3)
    theta0 = prob.init(2)
    X_new = torch.randn(5, 2, generator=torch.Generator().manual_seed(8), dtype=F64)
    for ridge in (0.0, 0.05):
        a = ntk_regression(prob, theta0, X_new, ridge=ridge)
        b = ntk_regression(prob, theta0, X_new, ridge=ridge, implementation="kernel")
        torch.testing.assert_close(a.predictions, b.predictions, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(a.train_predictions, b.train_predictions, rtol=1e-9, atol=1e-9)


def test_a_tiny_memory_budget_builds_j_in_blocks_or_refuses():
    prob = _problem(n=12, width=3)
    theta0 = prob.init(0)
    X_new = torch.zeros(2, 2, dtype=F64)
    whole = ntk_regression(prob, theta0, X_new)
    p = prob.n_params
    small = ntk_regression(prob.with_memory_budget((2 * 12 * p + 12**2 + 12) * 8), theta0, X_new)  # J just fits
    torch.testing.assert_close(small.predictions, whole.predictions, rtol=1e-12, atol=1e-12)
    with pytest.raises(MemoryBudgetError, match=r"the 12 × 12 Jacobian of the training outputs and its SVD"):
        ntk_regression(prob.with_memory_budget(1000), theta0, X_new)


def test_predictions_equal_gradient_descent_on_the_linearized_network_run_to_convergence():
    prob = _problem(n=4, width=5, seed=2)
    theta0 = prob.init(4)
    lin = Problem(Linearized(prob.model, prob.unflatten(theta0)), prob.X, prob.y)
    J = dense_jacobian(lambda t: prob.model.apply(prob.unflatten(t), prob.X), theta0)
    evals = torch.linalg.eigvalsh(J @ J.T)  # the loss's curvature along the row space of J is (2/n)·evals
    lr = prob.n / (2 * float(evals[-1]))
    steps = math.ceil(float(evals[-1] / evals[0]) * math.log(1e15))  # (1 − λmin/λmax)^steps < 1e-15
    assert steps < 20_000
    run = train(lin, lr=lr, steps=steps, theta0=theta0, record_every=steps)
    X_new = torch.randn(6, 2, generator=torch.Generator().manual_seed(7), dtype=F64)
    by_gd = lin.output(run.theta, X_new)
    torch.testing.assert_close(ntk_regression(prob, theta0, X_new).predictions, by_gd, rtol=1e-9, atol=1e-9)


BAD = [
    ("bce loss", lambda: ntk_regression(Problem(TwoLayer(2, 3), torch.zeros(3, 2), torch.tensor([0.0, 1.0, 1.0]), "bce"),
                                        torch.zeros(12, dtype=F64), torch.zeros(1, 2)),
     r"expected the squared loss 'mse' .*, got loss 'bce'"),
    ("l2 penalty", lambda: ntk_regression(_problem(l2=0.1), _problem().init(0), torch.zeros(1, 2)), r"expected l2 = 0, got l2=0\.1"),
    ("negative ridge", lambda: ntk_regression(_problem(), _problem().init(0), torch.zeros(1, 2), ridge=-1.0),
     r"expected ridge to be a finite number >= 0"),
    ("wrong inputs", lambda: ntk_regression(_problem(), _problem().init(0), torch.zeros(1, 3)),
     r"expected X_new of shape \(n, 2\), got shape \(1, 3\)"),
    ("theta0 shape", lambda: ntk_regression(_problem(), torch.zeros(3, dtype=F64), torch.zeros(1, 2)), r"expected theta0 of shape \(16,\)"),
    ("not a problem", lambda: ntk_regression(None, None, None), r"expected a losslab\.Problem, got NoneType"),
    ("unknown implementation", lambda: ntk_regression(_problem(), _problem().init(0), torch.zeros(1, 2), implementation="svd"),
     r"expected implementation to be one of \('jacobian', 'kernel'\), got implementation='svd'"),
    ("module, wrong width", lambda: ntk_regression(_module_problem(), _module_problem().default_theta(), torch.zeros(4, 5, dtype=F64)),
     r"expected X_new of shape \(n, 2\) like the problem's inputs, got shape \(4, 5\)"),
    ("module, integer inputs", lambda: ntk_regression(_module_problem(), _module_problem().default_theta(),
                                                      torch.zeros(4, 2, dtype=torch.int64)),
     r"expected X_new to hold floating numbers \(torch\.float64\) like the problem's inputs, got torch\.int64"),
]


def _module_problem() -> Problem:
    net = torch.nn.Sequential(torch.nn.Linear(2, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1)).double()
    return Problem(Module(net), torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=F64), torch.zeros(6, 1, dtype=F64))


@pytest.mark.parametrize(("name", "call", "match"), BAD, ids=[c[0] for c in BAD])
def test_bad_inputs_say_what_was_expected_in_one_line(name, call, match):
    with pytest.raises(LosslabError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
