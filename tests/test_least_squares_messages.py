"""least_squares refusals name what is wrong and the fix (``check_least_squares``'s documented messages).

The fix for a model affine only in some groups is the largest declared affine set: the free part of it
when one is free, else the whole set from the full problem. A hand-written model declares two affine sets
of different sizes whose names sort the other way round (the shorter one is the lexicographic maximum).
"""

from __future__ import annotations

import pytest
import torch

from losslab import LosslabError, Problem
from losslab import data as D
from losslab.fit import least_squares
from losslab.models import MLP, Linear
from losslab.models.base import Model

F64 = torch.float64


class _TwoAffineSets(Model):
    """tanh(u·x)·(a + b)·x + z·x: affine in {a, b} and in {z} (each declared on its own), in no set with u."""

    def __init__(self):
        self.d_in, self.shapes = 1, {"a": (), "b": (), "u": (), "z": ()}
        self.affine_sets = (frozenset({"a", "b"}), frozenset({"z"}))

    def init(self, *, seed: int = 0, dtype: torch.dtype = F64):
        return {g: torch.full((), 0.5, dtype=dtype) for g in self.shapes}

    def logit(self, params, X):
        x = X[:, 0]
        return torch.tanh(params["u"] * x) * (params["a"] + params["b"]) * x + params["z"] * x

    def describe(self) -> str:
        return "TwoAffineSets"


def _refusal(problem) -> str:
    with pytest.raises(LosslabError) as info:
        least_squares(problem)
    return str(info.value)


def _two_sets() -> Problem:
    x = torch.linspace(-1, 1, 10, dtype=F64)
    return Problem(_TwoAffineSets(), x, x)


def test_the_largest_affine_set_with_free_groups_is_the_fix():
    assert _refusal(_two_sets()) == (
        "least_squares expects a model affine in the free groups ['a', 'b', 'u', 'z'], got TwoAffineSets, which is affine "
        "only in ['a', 'b'] or ['z']; restrict to groups ['a', 'b'] with problem.restrict(['a', 'b'], at=params), "
        "or use losslab.fit.train for the non-convex problem"
    )


def test_the_largest_affine_set_is_the_fix_when_none_is_free():
    assert _refusal(_two_sets().restrict(["u"])) == (
        "least_squares expects a model affine in the free groups ['u'], got TwoAffineSets, which is affine only in "
        "['a', 'b'] or ['z']; none of them is free here: fit groups ['a', 'b'] with "
        "problem.full().restrict(['a', 'b'], at=params), or use losslab.fit.train for the non-convex problem"
    )


def test_a_model_with_no_affine_groups_is_sent_to_linearized_or_train():
    x = torch.linspace(-1, 1, 8, dtype=F64)[:, None]
    model = MLP([1, 3, 1], out_activation="tanh")
    assert _refusal(Problem(model, x, x[:, 0])) == (
        f"least_squares expects a model affine in the free groups ['W0', 'b0', 'W1', 'b1'], got {model.describe()}, "
        "which declares no affine parameter groups; linearize it with losslab.models.Linearized(model, params0), "
        "or use losslab.fit.train"
    )


def test_a_sigmoid_output_is_sent_to_train_or_bce():
    X, y = D.logistic_labels(20, seed=0)
    message = _refusal(Problem(Linear(2, output="sigmoid"), X, y))
    assert message.startswith("least_squares expects a model whose output is affine in its parameters, got Linear(d_in=2, ")
    assert message.endswith(
        "with a sigmoid output (sigmoid of an affine logit is not affine); use losslab.fit.train, "
        "or loss='bce' on the logit for logistic regression"
    )


def test_a_loss_other_than_mse_is_sent_to_train():
    X, y = D.logistic_labels(20, seed=0)
    assert _refusal(Problem(Linear(2), X, y, loss="bce")) == (
        "least_squares expects the squared loss 'mse', got loss 'bce', which has no closed-form minimiser; "
        "use losslab.fit.train(problem, ...) instead (it is still convex when the logit is affine)"
    )
