"""smallest_eigenpair's settings are used as documented, checked against the dense float64 Hessian.

TwoLayer(1, 12, tanh) on cubic data has p = 36 > 30 parameters, so the thick-restart Lanczos path (not the dense
one) is taken; its reference is ``torch.func.hessian`` of the loss.

* ``seed`` defaults to 0 and is passed on (another seed starts Lanczos elsewhere);
* ``tol`` bounds the returned pair's residual ‖Hy − λy‖ ≤ tol·‖H‖₂ (``criterion="residual"``), a loose tol
  takes fewer products than the default;
* ``max_products`` caps the Hessian-vector products;
* an overflowing model gives NaN and a zero vector in float64, shape (p,), as documented.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from losslab import Problem, data
from losslab.convexity.hessian import smallest_eigenpair
from losslab.models import Module, TwoLayer

from references import dense_hessian

F64 = torch.float64


@pytest.fixture(scope="module")
def saddle():
    X, y = data.cubic(30, seed=0)
    problem = Problem(TwoLayer(1, 12, "tanh"), X, y)
    theta = problem.init(0)
    H = dense_hessian(problem.loss, theta)
    assert problem.n_params == 36 and torch.linalg.eigvalsh(H)[0] < 0
    return problem, theta, H


def test_the_default_seed_is_zero_and_another_seed_starts_elsewhere(saddle):
    problem, theta, H = saddle
    default, zero, one = (smallest_eigenpair(problem, theta, **kw) for kw in ({}, {"seed": 0}, {"seed": 1}))
    assert default[0] == zero[0] and torch.equal(default[1], zero[1]) and default[2] == zero[2]
    assert not torch.equal(default[1], one[1])
    exact = float(torch.linalg.eigvalsh(H)[0])
    for value, vector, _count in (zero, one):
        assert value == pytest.approx(exact, rel=1e-6) and vector.dtype == F64


@pytest.mark.parametrize("tol", [1e-2, 1e-3])
def test_tol_bounds_the_residual_of_the_returned_pair(saddle, tol):
    problem, theta, H = saddle
    value, vector, count = smallest_eigenpair(problem, theta, tol=tol)
    residual = float(torch.linalg.vector_norm(H @ vector - value * vector))
    assert residual <= tol * float(torch.linalg.matrix_norm(H, 2))
    assert count < smallest_eigenpair(problem, theta)[2]  # the default tol (1e-8 in float64) takes more products


def test_max_products_caps_the_hessian_vector_products(saddle):
    problem, theta, H = saddle
    value, vector, count = smallest_eigenpair(problem, theta, max_products=8)
    assert count <= 8
    assert value >= float(torch.linalg.eigvalsh(H)[0]) - 1e-12  # a Ritz value: never below λ_min
    assert float(vector @ H @ vector) == pytest.approx(value, rel=1e-9)


class Exp(nn.Module):
    def forward(self, x):
        return torch.exp(x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_an_overflowing_model_gives_nan_and_a_float64_zero_vector(dtype):
    # f = exp(w·x + b), squared loss: at w = 800 the loss overflows in float32 and float64 alike
    net = nn.Sequential(nn.Linear(1, 1), Exp()).to(dtype)
    x = torch.linspace(-1, 1, 21, dtype=dtype)[:, None]
    problem = Problem(Module(net), x, torch.zeros(21, dtype=dtype))
    value, vector, count = smallest_eigenpair(problem, torch.tensor([800.0, 0.0], dtype=dtype))
    assert math.isnan(value) and count >= 1
    assert vector.dtype == F64 and vector.shape == (2,) and torch.equal(vector, torch.zeros(2, dtype=F64))
