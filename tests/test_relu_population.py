"""The closed-form population loss of a ReLU student against a ReLU teacher (Cho & Saul 2009; Safran & Shamir 2018)."""

from __future__ import annotations

import math

import pytest
import torch

from losslab import LosslabError
from losslab.objectives import relu_kernel, relu_population_loss, relu_teacher_problem
from losslab.random_streams import generator

from references import dense_eigenvalues

F64 = torch.float64


def _monte_carlo(W: torch.Tensor, V: torch.Tensor, samples: int, seed: int) -> tuple[float, float]:
    """(mean, standard error) of ½(Σ relu(Wx) − Σ relu(Vx))² over Gaussian x: direct evaluation, no formula."""
    x = torch.randn(samples, W.shape[1], generator=generator(seed, "data"), dtype=F64)
    values = 0.5 * (torch.relu(x @ W.T).sum(1) - torch.relu(x @ V.T).sum(1)) ** 2
    return float(values.mean()), float(values.std() / math.sqrt(samples))


@pytest.mark.parametrize(("n", "k", "seed"), [(3, 3, 0), (4, 3, 1), (2, 5, 2)])
def test_population_loss_matches_monte_carlo(n, k, seed):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(n, k, generator=g, dtype=F64)
    V = torch.eye(k, dtype=F64)
    mean, se = _monte_carlo(W, V, 400_000, seed)
    assert abs(float(relu_population_loss(W, V)) - mean) < 4 * se


def test_kernel_matches_monte_carlo_at_every_angle():
    x = torch.randn(400_000, 2, generator=generator(0, "data"), dtype=F64)
    w = torch.tensor([[1.5, 0.0]], dtype=F64)
    for phi in (0.0, 0.3, math.pi / 2, 2.5, math.pi):
        v = torch.tensor([[0.8 * math.cos(phi), 0.8 * math.sin(phi)]], dtype=F64)
        values = torch.relu(x @ w.T) * torch.relu(x @ v.T)
        se = float(values.std()) / math.sqrt(len(x))
        assert abs(float(relu_kernel(w, v)) - float(values.mean())) < 4 * se + 1e-12


def test_hand_cases():
    w = torch.tensor([[0.3, -1.2, 2.0]], dtype=F64)
    assert float(relu_kernel(w, w)) == pytest.approx(float((w**2).sum()) / 2, rel=1e-14)  # E relu(z)² = σ²/2
    assert float(relu_kernel(w, -w)) == pytest.approx(0.0, abs=1e-15)  # relu(z)·relu(−z) = 0
    e1, e2 = torch.eye(2, dtype=F64)[:1], torch.eye(2, dtype=F64)[1:]
    assert float(relu_kernel(e1, e2)) == pytest.approx(1 / (2 * math.pi), rel=1e-14)  # E relu(z₁) E relu(z₂) = (1/√(2π))²
    V = torch.eye(4, dtype=F64)
    assert float(relu_population_loss(V[[2, 0, 3, 1]], V)) == pytest.approx(0.0, abs=1e-14)  # a permutation of the teacher
    one = torch.zeros(1, 4, dtype=F64)
    assert float(relu_population_loss(one, V)) == pytest.approx(0.5 * (4 / 2 + 12 / (2 * math.pi)), rel=1e-14)


def _finite_difference_gradient(f, theta: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    out = torch.empty_like(theta)
    for i in range(len(theta)):
        e = torch.zeros_like(theta)
        e[i] = h
        out[i] = (f(theta + e) - f(theta - e)) / (2 * h)
    return out


@pytest.mark.parametrize("where", ["random", "near the teacher", "two parallel units", "a zero unit"])
def test_gradient_matches_finite_differences(where):
    problem = relu_teacher_problem(3, 4)
    theta = problem.init(5)
    V = torch.eye(3, dtype=F64)
    if where == "near the teacher":
        theta = torch.cat([V, V[:1] * 1e-3]).reshape(-1) + 1e-4 * theta
    elif where == "two parallel units":
        theta = torch.cat([V, 0.5 * V[:1]]).reshape(-1)
    elif where == "a zero unit":
        theta = theta.clone()
        theta[:3] = 0.0
    grad = problem.grad(theta)
    assert bool(torch.isfinite(grad).all())
    if where == "a zero unit":  # not differentiable at a zero row: the finite value autograd gives is all that is claimed
        return
    fd = _finite_difference_gradient(lambda t: float(problem.loss(t)), theta)
    torch.testing.assert_close(grad, fd, rtol=1e-6, atol=1e-8)


def test_hessian_at_the_teacher_matches_finite_differences_of_the_gradient():
    problem = relu_teacher_problem(3, 3)
    theta = torch.eye(3, dtype=F64).reshape(-1)
    h = 1e-6
    columns = []
    for i in range(9):
        e = torch.zeros(9, dtype=F64)
        e[i] = h
        columns.append((problem.grad(theta + e) - problem.grad(theta - e)) / (2 * h))
    fd = torch.stack(columns, 1)
    hvps = torch.stack([problem.hvp(theta, torch.eye(9, dtype=F64)[i]) for i in range(9)], 1)
    torch.testing.assert_close(hvps, fd, rtol=1e-5, atol=1e-7)
    assert dense_eigenvalues(problem.loss, theta)[0] > 0.05  # a strict minimum: F = 0 only at permutations of V


def test_xavier_init_and_loss_at_it():
    problem = relu_teacher_problem(6, 7)
    draws = torch.stack([problem.init(s) for s in range(50)])
    bound = math.sqrt(6 / 13)
    assert float(draws.abs().max()) <= bound and float(draws.abs().max()) > 0.95 * bound
    assert float(draws.var()) == pytest.approx(bound**2 / 3, rel=0.1)  # U(−a, a) has variance a²/3
    assert problem.groups == ("W",) and problem.n_params == 42


@pytest.mark.parametrize(("call", "match"), [
    (lambda: relu_population_loss(torch.ones(3, dtype=F64), torch.eye(3, dtype=F64)), r"expected W of shape \(\?, \?\)|W"),
    (lambda: relu_population_loss(torch.ones(2, 4, dtype=F64), torch.eye(3, dtype=F64)), "V"),
    (lambda: relu_kernel([[1.0]], torch.eye(1, dtype=F64)), "expected A as a floating-point torch tensor"),
    (lambda: relu_teacher_problem(0, 3), "k"),
    (lambda: relu_teacher_problem(3, 2.5), "n"),
])
def test_bad_input(call, match):
    with pytest.raises(LosslabError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
