"""Soundness of the non-convexity certificate, checked independently of the code that issues it.

* Adversarial convex problems — inputs of size 1e4, chords a few ulps wide around the exact
  minimiser, float32 and float64 — on which no chord may ever be certified: rounding noise there
  is far above the 1e-12 relative floor, so only the float32 discrepancy term of the rounding
  bound keeps it from being taken for a violation.
* Witnesses re-checked by a float64 loss written out by hand in references.py (v·tanh(Wx + b), mean squared
  error, ``math.fsum``), not through losslab's model, loss or ``chord_gap``.
* A witness of a restricted problem is refused by a restriction at other fixed values.
"""

from __future__ import annotations

import math

import pytest
import torch

from losslab import Problem, check_convexity, data
from losslab.convexity import chord_gap
from losslab.convexity.chords import ChordSearch, random_pairs, symmetric_pairs
from losslab.fit import least_squares
from losslab.models import Linear, TwoLayer

from _helpers import gen
from references import hand_two_layer_tanh_mse

DT = torch.float64


# ---- adversarial convex problems: nothing may be certified -----------------------------------


def ill_scaled_linear(dtype: torch.dtype, seed: int = 0) -> tuple[Problem, torch.Tensor]:
    """Linear + mse with inputs ≈ 1e4 (all alike: an ill-conditioned design) and targets fitted to 1e-6,
    with its least-squares minimiser in float64."""
    g = gen(seed)
    n, d = 64, 4
    X = 1e4 * (1 + 0.01 * torch.randn(n, d, generator=g, dtype=DT))
    y = X @ torch.randn(d, generator=g, dtype=DT) + 1.0 + 1e-6 * torch.randn(n, generator=g, dtype=DT)
    problem = Problem(Linear(d), X.to(dtype), y.to(dtype))
    return problem, problem.flatten(least_squares(problem)).to(DT)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_chord_of_an_ill_scaled_convex_problem_is_certified_near_its_minimiser(dtype):
    """Rounding in float64 there is ~1e-8 of the loss (4e4-sized outputs, 1e-6 residuals), far above 1e-12."""
    problem, theta = ill_scaled_linear(dtype)
    g = gen(1)
    tried = held = noisy = 0
    size = float(theta.abs().max())
    for scale in (1e-15, 1e-14, 1e-13, 1e-12, 1e-11):  # chords of a few ulps of θ up to where curvature shows
        for _ in range(80):
            a = theta + scale * size * torch.randn(theta.shape, generator=g, dtype=DT)
            b = theta + scale * size * torch.randn(theta.shape, generator=g, dtype=DT)
            for lam in (0.25, 0.5, 0.75):
                check = chord_gap(problem, a, b, lam)
                tried += 1
                held += check.holds
                noisy += check.gap > 1e-12 * (abs(check.losses[2]) + abs(check.losses[0]) + abs(check.losses[1]))
    assert tried == 1200
    assert noisy > 50  # the adversary works: many rounded gaps are "positive" beyond the relative floor
    assert held == 0  # ... and the bound covers every one of them


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_chord_search_certifies_nothing_around_the_minimiser_of_an_ill_scaled_convex_problem(dtype):
    problem, theta = ill_scaled_linear(dtype, seed=2)
    search = ChordSearch(problem, budget=1800)
    g = gen(3)
    center = theta.to(dtype)
    for pairs in (random_pairs, symmetric_pairs):
        assert search.evaluate(*pairs(center, (1e-12, 1e-9, 1e-6, 1e-3), 75, g), "adversarial", "") is None
    assert search.tried == 1800


def test_a_convex_quadratic_in_float32_with_huge_inputs_is_never_certified_along_its_valley():
    """The flat direction of a rank-1 design: the loss is constant along it in exact arithmetic."""
    x = torch.full((32, 2), 1e4, dtype=DT)
    x[:, 1] += torch.linspace(-1, 1, 32, dtype=DT)  # nearly collinear columns
    problem = Problem(Linear(2), x.float(), (x @ torch.tensor([1.0, -1.0], dtype=DT)).float())
    theta = problem.flatten(least_squares(problem)).to(DT)
    valley = torch.tensor([1.0, 1.0, -2e4], dtype=DT)  # X·[1, 1] − 2e4 ≈ linspace(−1, 1): nearly flat
    held = [chord_gap(problem, theta + s * valley, theta - s * valley, lam).holds
            for s in torch.logspace(-12, -4, 30).tolist() for lam in (0.3, 0.5)]
    assert len(held) == 60 and not any(held)


# ---- witnesses re-checked by a hand-written float64 loss -------------------------------------


def assert_witness_rechecks_by_hand(witness, X: torch.Tensor, y: torch.Tensor, width: int) -> None:
    """The chord lies below the loss by more than the stated bound, recomputed without losslab."""
    a, b, lam = witness.a, witness.b, witness.lam
    assert 0 < lam < 1 and a.dtype == b.dtype == DT
    la, lb = hand_two_layer_tanh_mse(a, X, y, width), hand_two_layer_tanh_mse(b, X, y, width)
    lm = hand_two_layer_tanh_mse(lam * a + (1 - lam) * b, X, y, width)
    gap = lm - lam * la - (1 - lam) * lb
    assert gap > witness.bound > 0
    assert gap == pytest.approx(witness.gap, rel=1e-6, abs=witness.bound)
    assert (la, lb, lm) == pytest.approx(witness.losses, rel=1e-9)


@pytest.mark.parametrize("groups", [None, ["W"], ["b"]])
def test_witnesses_recheck_with_a_hand_written_float64_loss(groups):
    X, y = data.cubic(24, seed=0)
    problem = Problem(TwoLayer(1, 5, "tanh"), X, y)
    assert problem.full().groups == ("W", "b", "v")  # the layout hand_two_layer_tanh_mse reads
    report = check_convexity(problem, groups=groups, budget=600, train_steps=30, by_group=False)
    assert report.verdict == "non-convex"
    assert_witness_rechecks_by_hand(report.witness, X, y, width=5)
    if groups is not None:  # a and b differ only in the analysed group, and sit at the analysis point elsewhere
        start = problem.default_theta(0)
        free = torch.zeros(problem.n_params, dtype=torch.bool)
        offsets = {"W": (0, 5), "b": (5, 10), "v": (10, 15)}
        for g in groups:
            free[offsets[g][0]:offsets[g][1]] = True
        assert torch.equal(report.witness.a[~free], start[~free]) and torch.equal(report.witness.b[~free], start[~free])
        assert not torch.equal(report.witness.a[free], report.witness.b[free])


def test_a_float32_search_gives_a_witness_that_rechecks_by_hand_in_float64():
    X, y = data.cubic(24, seed=1)
    problem = Problem(TwoLayer(1, 5, "tanh"), X.float(), y.float())
    report = check_convexity(problem, budget=600, train_steps=30, by_group=False)
    assert report.verdict == "non-convex"
    assert_witness_rechecks_by_hand(report.witness, X.float().double(), y.float().double(), width=5)


# ---- a witness belongs to its problem: other fixed values are refused ------------------------


def test_a_restricted_witness_is_refused_by_a_restriction_at_other_fixed_values():
    X, y = data.cubic(24, seed=0)
    problem = Problem(TwoLayer(1, 5, "tanh"), X, y)
    here, there = problem.init(5), problem.init(6)
    report = check_convexity(problem, groups=["W"], at=here, budget=600, train_steps=30, by_group=False)
    assert report.verdict == "non-convex"
    w = report.witness
    assert w.verify(problem.restrict(["W"], at=here)).holds  # its own problem
    assert w.verify(problem).holds  # the full problem holds every restriction's chords
    other = w.verify(problem.restrict(["W"], at=there))  # same free group, other b and v: not its chord
    assert not other.holds and "fixed values" in other.reason and "b" in other.reason and "v" in other.reason
    one_off = {**problem.unflatten(here), "v": problem.unflatten(there)["v"]}
    refused = w.verify(problem.restrict(["W"], at=one_off))
    assert not refused.holds and "['v']" in refused.reason
    wider = w.verify(problem.restrict(["W", "b"], at=here))  # W and b free, v at the same value: the chord lies in it
    assert wider.holds
    narrower = w.verify(problem.restrict(["b"], at=here))  # W held fixed, but the chord moves W
    assert not narrower.holds and "differ in groups ['W']" in narrower.reason


def test_a_refused_verification_reports_no_gap_and_an_infinite_bound():
    X, y = data.cubic(24, seed=0)
    problem = Problem(TwoLayer(1, 5, "tanh"), X, y)
    w = check_convexity(problem, groups=["W"], at=problem.init(5), budget=600, train_steps=30, by_group=False).witness
    refused = w.verify(problem.restrict(["W"], at=problem.init(6)))
    assert refused.holds is False and math.isnan(refused.gap) and refused.bound == math.inf
    assert len(refused.losses) == 3 and all(math.isnan(v) for v in refused.losses)


def test_a_float32_restricted_witness_is_checked_against_its_fixed_values_in_float64():
    X, y = data.cubic(24, seed=1)
    problem = Problem(TwoLayer(1, 5, "tanh"), X.float(), y.float())
    here = problem.init(5)
    w = check_convexity(problem, groups=["W"], at=here, budget=600, train_steps=30, by_group=False).witness
    assert w.a.dtype == DT and w.verify(problem.restrict(["W"], at=here)).holds
    assert not w.verify(problem.restrict(["W"], at=problem.init(6))).holds
