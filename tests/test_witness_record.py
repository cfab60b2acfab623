"""A witness is the promise "non-convex, re-checkable by anyone": its record, rebuilt and re-checked by hand.

* ``ChordWitness.to_dict`` carries the chord (a, b, λ) with every group, its gap, bound, the three losses,
  the analysed groups and the source. The chord rebuilt from the JSON text is re-checked with a float64 loss
  written out by hand in references.py (v·tanh(Wx + b), squared error, ``math.fsum``), not losslab's model or ``chord_gap``.
* A witness rebuilt from the JSON's plain lists verifies to the same numbers (lists are read in float64).
* ``chord_gap`` evaluates in float64 whatever the dtype of the points it is given.
* In a float32 problem, ``verify`` still compares the groups in float64 (a chord that moves a fixed group
  by less than a float32 ulp is refused) and ``params`` gives the witness's float64 points.
* A gap exactly equal to its rounding bound certifies nothing: a witness holds iff gap > bound.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from losslab import Problem, check_convexity, data
from losslab.convexity import chord_gap
from losslab.convexity.witness import ChordWitness
from losslab.models import Module, TwoLayer

from references import hand_two_layer_tanh_mse

F64 = torch.float64
WIDTH = 5
NAN = float("nan")


@pytest.fixture  # per test, not per module: mutmut credits a test with the calls its own fixtures make
def restricted_witness():
    """A witness of TwoLayer(1, 5, tanh) on cubic data with only W free, at init(5)."""
    X, y = data.cubic(24, seed=0)
    problem = Problem(TwoLayer(1, WIDTH, "tanh"), X, y)
    assert problem.full().groups == ("W", "b", "v")  # the layout hand_two_layer_tanh_mse reads
    here = problem.init(5)
    report = check_convexity(problem, groups=["W"], at=here, budget=600, train_steps=30, by_group=False)
    assert report.verdict == "non-convex"
    return problem, here, report.witness, X, y


def test_the_json_record_rebuilds_a_chord_that_rechecks_by_hand(restricted_witness):
    problem, here, w, X, y = restricted_witness
    d = json.loads(json.dumps(w.to_dict()))
    assert set(d) == {"a", "b", "lam", "gap", "bound", "losses", "groups", "source"}
    assert set(d["losses"]) == {"a", "b", "middle"}
    a, b, lam = torch.tensor(d["a"], dtype=F64), torch.tensor(d["b"], dtype=F64), d["lam"]
    assert torch.equal(a, w.a) and torch.equal(b, w.b) and lam == w.lam  # exact float64 round trip
    assert 0 < lam < 1
    la, lb = hand_two_layer_tanh_mse(a, X, y, WIDTH), hand_two_layer_tanh_mse(b, X, y, WIDTH)
    lm = hand_two_layer_tanh_mse(lam * a + (1 - lam) * b, X, y, WIDTH)
    assert la != pytest.approx(lb, rel=1e-6)  # the record cannot mix up its losses unnoticed
    assert (d["losses"]["a"], d["losses"]["b"], d["losses"]["middle"]) == pytest.approx((la, lb, lm), rel=1e-12)
    gap = lm - lam * la - (1 - lam) * lb
    assert gap > d["bound"] >= 1e-12 * (abs(lm) + lam * abs(la) + (1 - lam) * abs(lb))  # the relative floor
    assert d["gap"] == pytest.approx(gap, rel=1e-9, abs=d["bound"])
    # the record names the analysed group and carries the fixed ones in the points: the chord is one of
    # the restricted problem, re-checkable against it
    assert d["groups"] == ["W"] and d["source"] == w.source and d["source"]
    fixed = torch.ones(problem.n_params, dtype=torch.bool)
    fixed[:WIDTH] = False
    assert torch.equal(a[fixed], here[fixed]) and torch.equal(b[fixed], here[fixed])
    rebuilt = ChordWitness(a, b, lam, d["gap"], d["bound"], (la, lb, lm), tuple(d["groups"]), d["source"])
    assert rebuilt.verify(problem.restrict(d["groups"], at=here)).holds


def test_a_witness_rebuilt_from_json_lists_verifies_to_the_same_numbers(restricted_witness):
    problem, here, w, _X, _y = restricted_witness
    d = json.loads(json.dumps(w.to_dict()))
    own = w.verify(problem.restrict(["W"], at=here))
    from_lists = ChordWitness(d["a"], d["b"], d["lam"], d["gap"], d["bound"], (NAN,) * 3, tuple(d["groups"]), d["source"])
    again = from_lists.verify(problem.restrict(["W"], at=here))
    assert again.holds and (again.gap, again.bound, again.losses) == (own.gap, own.bound, own.losses)
    direct = chord_gap(problem, d["a"], d["b"], d["lam"])
    assert (direct.gap, direct.losses) == (own.gap, own.losses)


def test_chord_gap_evaluates_in_float64_whatever_the_points_dtype():
    X, y = data.cubic(24, seed=0)
    problem = Problem(TwoLayer(1, WIDTH, "tanh"), X, y)
    a32, b32 = problem.init(1).float(), 3 * problem.init(2).float()
    lam = 0.3  # not a float32 number: a float32 middle point would be another point
    in32 = chord_gap(problem, a32, b32, lam)
    in64 = chord_gap(problem, a32.double(), b32.double(), lam)
    assert (in32.gap, in32.bound, in32.losses, in32.holds) == (in64.gap, in64.bound, in64.losses, in64.holds)
    a, b = a32.double(), b32.double()
    assert in32.losses[2] == pytest.approx(hand_two_layer_tanh_mse(lam * a + (1 - lam) * b, X, y, WIDTH), rel=1e-12)


def float32_problem_and_chord():
    """A float32 TwoLayer problem restricted to W at init(0), and a float64 chord of it (b, v at their values)."""
    X, y = data.cubic(24, seed=0)
    full = Problem(TwoLayer(1, 3, "tanh"), X.float(), y.float())
    restricted = full.restrict(["W"], at=full.init(0))
    a = restricted.embed(full.unflatten(full.init(1))["W"].reshape(-1)).to(F64)
    b = restricted.embed(full.unflatten(full.init(2))["W"].reshape(-1)).to(F64)
    return full, restricted, a, b


def test_a_float32_problem_refuses_a_chord_that_moves_a_fixed_group_below_float32_resolution():
    full, restricted, a, b = float32_problem_and_chord()
    assert chord_gap(full, a, b, 0.5).holds  # a witness of the full problem, in W alone
    assert ChordWitness(a, b, 0.5, NAN, NAN, (NAN,) * 3, ("W",), "by hand").verify(restricted).holds
    b_moved = b.clone()
    b_moved[-1] *= 1 + 1e-12  # v's last entry, far less than a float32 ulp: the chord now moves v
    refused = ChordWitness(a, b_moved, 0.5, NAN, NAN, (NAN,) * 3, ("W",), "by hand").verify(restricted)
    assert not refused.holds and "differ in groups ['v']" in refused.reason


def test_params_are_the_witness_points_in_float64_even_for_a_float32_problem():
    full, _restricted, a, b = float32_problem_and_chord()
    w = ChordWitness(a, b, 0.5, NAN, NAN, (NAN,) * 3, ("W",), "by hand")
    pa, pb = w.params(full)
    for point, params in ((a, pa), (b, pb)):
        assert all(v.dtype == F64 for v in params.values())
        assert torch.equal(torch.cat([params[g].reshape(-1) for g in ("W", "b", "v")]), point)  # (W, b, v) order


class Bump(nn.Module):
    """f(x) = c·x·w·(1 − w): zero at w = 0 and w = 1, c/4·x at w = 1/2."""

    def __init__(self, c: float):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1, dtype=F64))
        self.c = c

    def forward(self, x):
        return self.c * x[:, 0] * self.w * (1 - self.w)


@pytest.mark.parametrize(("c", "holds"), [(2.0**-478, False), (2.0**-477, True)])
def test_a_gap_equal_to_its_bound_certifies_nothing(c, holds):
    # L(w) = (c·w(1−w))² at x = 1, y = 0: L(0) = L(1) = 0 and L(1/2) = c²/16. With c = 2⁻⁴⁷⁸ the gap is 2⁻⁹⁶⁰,
    # exactly the absolute floor of the bound (float32 underflows to 0 there, so the discrepancy term is
    # 1000·2⁻²⁹·2⁻⁹⁶⁰, below the floor): gap = bound, no certificate. Twice c: gap = 4·2⁻⁹⁶⁰ > bound.
    problem = Problem(Module(Bump(c)), torch.ones(1, 1, dtype=F64), torch.zeros(1, dtype=F64))
    v = chord_gap(problem, torch.tensor([0.0], dtype=F64), torch.tensor([1.0], dtype=F64), 0.5)
    assert v.losses == (0.0, 0.0, (c / 4) ** 2) and v.bound == 2.0**-960
    assert v.gap == (c / 4) ** 2 and (v.gap == v.bound) == (not holds)
    assert v.holds is holds
    assert v.reason == ("" if holds else "the gap does not exceed the rounding bound")
