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

from _helpers import hand_loss

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
