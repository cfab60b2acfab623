"""Linear(d_in, bias=False): w·x without an intercept, against numpy, scikit-learn and the restrict route it replaces."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression

from losslab import LosslabError, Problem
from losslab.convexity import check_convexity
from losslab.fit import least_squares, least_squares_result
from losslab.models import Linear
from losslab.models.base import check_params

from references import dense_hessian

F64 = torch.float64


def _data(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=F64), torch.randn(n, generator=g, dtype=F64)


def test_groups_shapes_init_and_description():
    model = Linear(4, bias=False)
    assert model.groups == ("w",) and model.shapes == {"w": (4,)} and model.n_params == 4
    assert model.affine_sets == (frozenset({"w"}),) and model.link is None
    assert model.describe() == "Linear(d_in=4, bias=False)"
    assert Linear(2, "sigmoid", bias=False).describe() == "Linear(d_in=2, output='sigmoid', bias=False)"
    assert Linear(4).describe() == "Linear(d_in=4)" and Linear(4).groups == ("w", "c")
    p = model.init(seed=3)
    assert list(p) == ["w"] and p["w"].dtype == F64
    torch.testing.assert_close(p["w"], Linear(4).init(seed=3)["w"], rtol=0, atol=0)  # the same weights, no intercept


def test_outputs_match_numpy():
    X, _ = _data(9, 3, 0)
    w = np.array([0.5, -1.0, 2.0])
    params = {"w": torch.tensor(w, dtype=F64)}
    np.testing.assert_allclose(Linear(3, bias=False).apply(params, X).numpy(), X.numpy() @ w, rtol=1e-14)
    z = X.numpy() @ w
    np.testing.assert_allclose(Linear(3, "sigmoid", bias=False).apply(params, X).numpy(), 1 / (1 + np.exp(-z)), rtol=1e-14)


def test_the_convexity_proof_names_w_alone():
    X, y = _data(12, 3, 1)
    report = check_convexity(Problem(Linear(3, bias=False), X, y), seed=0)
    assert report.verdict == "convex" and report.groups == ("w",)
    assert "Linear(d_in=3, bias=False) is affine in {w} by construction (the logit w·x is linear in w)" in report.proof.statement
    # independent: the Hessian of (1/n)‖Xw − y‖² is the constant 2XᵀX/n, positive semi-definite
    problem = Problem(Linear(3, bias=False), X, y)
    H = dense_hessian(problem.loss, torch.randn(3, dtype=F64))
    torch.testing.assert_close(H, 2 * X.T @ X / 12, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("n", "d"), [(30, 4), (6, 15)])
def test_least_squares_matches_scikit_learn_without_intercept(n, d):
    """n > d: the unique fit; n < d: scikit-learn's lstsq also returns the minimum-norm interpolant."""
    X, y = _data(n, d, 2)
    w = least_squares(Problem(Linear(d, bias=False), X, y))["w"]
    ref = LinearRegression(fit_intercept=False).fit(X.numpy(), y.numpy())
    np.testing.assert_allclose(w.numpy(), ref.coef_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(w.numpy(), np.linalg.pinv(X.numpy()) @ y.numpy(), rtol=0, atol=1e-9)


def test_it_equals_the_restrict_route_it_replaces():
    X, y = _data(8, 20, 3)
    old = Problem(Linear(20), X, y).restrict(["w"], at={"w": torch.zeros(20, dtype=F64), "c": torch.zeros((), dtype=F64)})
    new = Problem(Linear(20, bias=False), X, y)
    torch.testing.assert_close(least_squares_result(new).theta, least_squares_result(old).theta, rtol=0, atol=1e-12)
    theta = torch.randn(20, dtype=F64)
    assert float(new.loss(theta)) == pytest.approx(float(old.loss(theta)), rel=1e-14)


def test_params_with_an_intercept_are_refused():
    with pytest.raises(LosslabError, match=re.escape("expected parameter groups ['w'], got ['w', 'c']")):
        check_params(Linear(2, bias=False), {"w": torch.zeros(2, dtype=F64), "c": torch.zeros((), dtype=F64)})


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"bias": "no"}, "expected bias True or False, got bias='no'; pass bias=False for w·x without an intercept"),
    ({"bias": 0}, "expected bias True or False, got bias=0"),
    ({"bias": None}, "expected bias True or False, got bias=None"),
    ({"d_in": 0, "bias": False}, "expected d_in to be an integer >= 1, got d_in=0"),
    ({"output": "tanh", "bias": False}, "expected output None or 'sigmoid', got output='tanh'"),
])
def test_bad_arguments(kwargs, message):
    kwargs = {"d_in": 2, **kwargs}
    with pytest.raises(LosslabError, match=re.escape(message)) as err:
        Linear(**kwargs)
    assert "\n" not in str(err.value)
