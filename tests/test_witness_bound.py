"""chord_gap's rounding bound recomputed by hand, and what it refuses (kills the surviving mutants of docs/mutation.md).

The bound of a chord (a, b, λ) is max(1e-12·S, 1000·2⁻²⁹·D, 2⁻⁹⁶⁰) with S = |L(m)| + λ|L(a)| + (1−λ)|L(b)|
and D = d_m + λ·d_a + (1−λ)·d_b, d the float32–float64 discrepancy of each loss (witness module docstring).
Here the float64 losses come from the hand-written loss of tests/_helpers (not losslab's loss code), the
float32 ones from the problem in float32, and the formula is written out again.
"""

from __future__ import annotations

import math

import pytest
import torch

from losslab import Problem, data
from losslab.convexity import chord_gap
from losslab.fit.least_squares import least_squares_result
from losslab.models import Polynomial, TwoLayer

from references import hand_loss

F64 = torch.float64


def expected(problem: Problem, a: torch.Tensor, b: torch.Tensor, lam: float):
    m = lam * a + (1 - lam) * b
    la, lb, lm = (hand_loss(problem, t) for t in (a, b, m))
    f32 = problem.full().to(torch.float32)
    da, db, dm = (abs(float(f32.loss(t.to(torch.float32))) - v) for t, v in ((a, la), (b, lb), (m, lm)))
    scale = abs(lm) + lam * abs(la) + (1 - lam) * abs(lb)
    discrepancy = dm + lam * da + (1 - lam) * db
    gap = lm - lam * la - (1 - lam) * lb
    return gap, max(1e-12 * scale, 1000 * 2.0**-29 * discrepancy, 2.0**-960), (la, lb, lm)


@pytest.mark.parametrize(("seed", "lam"), [(0, 0.5), (1, 0.25), (2, 0.75), (3, 0.1)])
def test_the_bound_is_the_documented_formula(seed, lam):
    x, y = data.cubic(40, seed=0)
    problem = Problem(TwoLayer(1, 4, "tanh"), x, y)
    a, b = problem.init(seed), 3 * problem.init(seed + 10)
    v = chord_gap(problem, a, b, lam)
    gap, bound, losses = expected(problem, a, b, lam)
    assert v.bound == pytest.approx(bound, rel=1e-6) and v.bound > 2.0**-960
    assert v.gap == pytest.approx(gap, rel=1e-9, abs=1e-12)
    assert v.losses == pytest.approx(losses, rel=1e-12)
    assert v.holds == (v.gap > v.bound)
    assert v.reason == ("" if v.holds else "the gap does not exceed the rounding bound")


def test_some_chord_of_the_net_holds_and_some_does_not():
    x, y = data.cubic(40, seed=0)
    problem = Problem(TwoLayer(1, 4, "tanh"), x, y)
    outcomes = {chord_gap(problem, problem.init(s), 3 * problem.init(s + 10), lam).holds
                for s in range(6) for lam in (0.1, 0.5, 0.9)}
    assert outcomes == {True, False}  # the reason's two branches are both reached above


@pytest.mark.parametrize("lam", [0.0, 1.0, -0.5, 1.5, math.nan])
def test_lambda_outside_the_open_interval_is_refused(lam):
    x, y = data.cubic(10, seed=0)
    problem = Problem(Polynomial(1, 2), x, y)
    v = chord_gap(problem, problem.init(0), problem.init(1), lam)
    assert not v.holds and math.isnan(v.gap) and v.bound == math.inf and all(math.isnan(t) for t in v.losses)
    assert v.reason == f"expected λ in (0, 1), got λ={lam!r}"


def test_least_squares_returns_the_problems_dtype():
    x, y = data.cubic(30, seed=0)
    for dtype in (torch.float32, F64):
        res = least_squares_result(Problem(Polynomial(1, 3), x, y).to(dtype))
        assert res.theta.dtype == dtype


def test_the_discrepancy_term_decides_the_bound_of_an_ill_scaled_problem():
    """Inputs of size 1e4 near the least-squares minimiser: float32 loses the residual, so the float32–float64
    discrepancy term (not the 1e-12 relative floor) sets the bound — the case the bound exists for."""
    g = torch.Generator().manual_seed(0)
    x = 1e4 + torch.rand(50, generator=g, dtype=F64)
    problem = Problem(Polynomial(1, 1), x, 3.0 + 2.0 * x)
    star = torch.tensor([3.0, 2.0], dtype=F64)
    a, b = star + torch.tensor([3e-3, -2e-7], dtype=F64), star - torch.tensor([1e-3, 1e-7], dtype=F64)  # unequal ends
    v = chord_gap(problem, a, b, 0.25)
    _, bound, _ = expected(problem, a, b, 0.25)
    m = 0.25 * a + 0.75 * b
    scale = sum(abs(hand_loss(problem, t)) * w for t, w in ((m, 1.0), (a, 0.25), (b, 0.75)))
    assert bound > 1e3 * 1e-12 * scale  # the discrepancy term, by far
    assert v.bound == pytest.approx(bound, rel=1e-6) and not v.holds  # a convex loss: never certified


def test_a_float32_counterpart_that_overflows_is_refused_with_the_float64_losses():
    class Exp(torch.nn.Module):
        def forward(self, z):
            return torch.exp(z)

    from losslab.models import Module

    net = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False), Exp()).double()
    x = torch.linspace(0, 1, 5, dtype=F64)[:, None]
    problem = Problem(Module(net), x, torch.zeros(5, dtype=F64))
    a, b = torch.tensor([100.0], dtype=F64), torch.tensor([0.0], dtype=F64)  # exp(100)² overflows float32, not float64
    v = chord_gap(problem, a, b, 0.5)
    la, lb, lm = (hand_loss(problem, t) for t in (a, b, 0.5 * a + 0.5 * b))
    assert math.isfinite(la) and v.losses == pytest.approx((la, lb, lm), rel=1e-12)
    assert v.gap == pytest.approx(lm - 0.5 * la - 0.5 * lb, rel=1e-12)
    assert v.bound == math.inf and v.holds is False and v.reason == "a loss or its float32 counterpart is not finite"


@pytest.mark.parametrize("which", ["a", "b"])
def test_one_bad_point_is_enough_to_refuse(which):
    x, y = data.cubic(10, seed=0)
    problem = Problem(Polynomial(1, 2), x, y)
    good, bad_shape, bad_value = problem.init(0), torch.zeros(4, dtype=F64), torch.tensor([0.0, math.nan, 1.0], dtype=F64)
    for bad, reason in ((bad_shape, "expected points of shape (3,)"), (bad_value, "expected finite points")):
        a, b = (bad, good) if which == "a" else (good, bad)
        v = chord_gap(problem, a, b, 0.5)
        assert not v.holds and math.isnan(v.gap) and v.bound == math.inf and v.reason == reason
