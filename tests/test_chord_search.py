"""The chord search's pieces against their documented recipes and hand counts.

* ``random_pairs`` / ``symmetric_pairs``: a, b = c + s·r·g₁, c + s·r·g₂ and c ± s·r·g with r = max(RMS(c), 1) and
  g the float64 N(0, 1) draws of the seeded generator (cast to the centre's dtype): rebuilt here from that recipe.
* ``ChordSearch.evaluate``: the largest relative gap, the non-finite chords and the chords per strategy it
  reports, against the losses of L(w) = mean_x exp(w·x)² written out with ``math`` (it overflows for w·x > 354.9).
* ``ChordSearch.check_memory``: refuses exactly above ``memory_budget`` with the documented byte count, and says
  what to lower.
* ``symmetry_pairs``: skips only the symmetries that move a fixed group, and draws from the generator it is given.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from losslab import Problem, data
from losslab.convexity.chords import ChordSearch, random_pairs, symmetric_pairs
from losslab.convexity.symmetry import symmetry_pairs
from losslab.memory import MemoryBudgetError
from losslab.models import MLP, Module

F64 = torch.float64
SCALES = (0.01, 0.3, 10.0)
PER_SCALE = 4


def recipe(center: torch.Tensor, seed: int, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The documented pairs in float64: c ± s·r·g (symmetric) or c + s·r·g₁, c + s·r·g₂, s repeated per_scale times."""
    c = center.to(F64)
    r = max(math.sqrt(math.fsum(v * v for v in c.tolist()) / c.numel()), 1.0)
    s = torch.tensor([sc * r for sc in SCALES for _ in range(PER_SCALE)], dtype=F64)[:, None]
    k, p = len(SCALES) * PER_SCALE, c.numel()
    generator = torch.Generator().manual_seed(seed)
    if symmetric:
        g = torch.randn((k, p), generator=generator, dtype=F64)
        return c + s * g, c - s * g
    g = torch.randn((2, k, p), generator=generator, dtype=F64)
    return c + s * g[0], c + s * g[1]


CENTERS = {  # RMS 0.2 (r = 1: the floor) and RMS ≈ 3.3 with mixed signs (r = RMS)
    "small": torch.tensor([0.2, -0.2, 0.2, -0.2, 0.2], dtype=F64),
    "large": torch.tensor([5.0, -1.0, 0.5, -4.0, 2.0], dtype=F64),
}


@pytest.mark.parametrize("center", CENTERS)
@pytest.mark.parametrize(("pairs", "symmetric"), [(random_pairs, False), (symmetric_pairs, True)])
def test_pairs_follow_the_documented_recipe_in_float64(center, pairs, symmetric):
    c = CENTERS[center]
    A, B = pairs(c, SCALES, PER_SCALE, torch.Generator().manual_seed(7))
    A_ref, B_ref = recipe(c, 7, symmetric)
    assert A.dtype == B.dtype == F64 and A.shape == B.shape == (len(SCALES) * PER_SCALE, c.numel())
    assert torch.allclose(A, A_ref, rtol=0, atol=1e-12) and torch.allclose(B, B_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("pairs", "symmetric"), [(random_pairs, False), (symmetric_pairs, True)])
def test_float32_pairs_are_the_same_draws_in_float32(pairs, symmetric):
    c = CENTERS["large"].float()
    A, B = pairs(c, SCALES, PER_SCALE, torch.Generator().manual_seed(3))
    A_ref, B_ref = recipe(c, 3, symmetric)
    assert A.dtype == B.dtype == torch.float32
    assert torch.allclose(A.double(), A_ref, rtol=1e-6, atol=1e-6) and torch.allclose(B.double(), B_ref, rtol=1e-6, atol=1e-6)


# ---- evaluate: what the search reports ---------------------------------------------------------

XS = (-1.0, -0.5, 0.0, 0.5, 1.0)


class Exp(nn.Module):
    def forward(self, x):
        return torch.exp(x)


def exp_problem() -> Problem:
    """L(w) = mean_x exp(w·x)² (f = exp(w·x), targets 0), float64: convex, infinite once w·x > 354.9."""
    net = nn.Sequential(nn.Linear(1, 1, bias=False), Exp()).double()
    return Problem(Module(net), torch.tensor(XS, dtype=F64)[:, None], torch.zeros(len(XS), dtype=F64))


def hand_exp_loss(w: float) -> float:
    terms = []
    for x in XS:
        try:
            terms.append(math.exp(w * x) ** 2)
        except OverflowError:
            return math.inf
    return math.fsum(terms) / len(terms)


def test_evaluate_reports_the_largest_relative_gap_and_counts_the_nonfinite_chords():
    problem = exp_problem()
    ends = [(800.0, 0.0), (1.0, 3.0), (-2.0, 500.0), (-1.0, 0.5)]  # both ends finite only in the 2nd and 4th
    A = torch.tensor([[a] for a, _ in ends], dtype=F64)
    B = torch.tensor([[b] for _, b in ends], dtype=F64)
    lams = (0.1, 0.3, 0.9)  # none a float32 number: the screen's λ must be the float64 one
    nonfinite, best = 0, -math.inf
    for a, b in ends:
        for lam in lams:
            la, lb, lm = hand_exp_loss(a), hand_exp_loss(b), hand_exp_loss(lam * a + (1 - lam) * b)
            if not all(map(math.isfinite, (la, lb, lm))):
                nonfinite += 1  # e.g. (800, 0) at λ = 0.1: L(a) = inf, L(b) and L(m = 80) finite
                continue
            gap, scale = lm - lam * la - (1 - lam) * lb, abs(lm) + lam * abs(la) + (1 - lam) * abs(lb)
            best = max(best, gap / scale)
    assert nonfinite == 6 and best < 0  # a convex loss: every finite chord lies above it

    search = ChordSearch(problem, budget=1000)
    assert search.evaluate(A[:1], B[:1], "hand chords", "overflowing", lams) is None  # no finite chord: no gap seen
    assert search.best_relative_gap == -math.inf and search.best_source == ""
    assert search.evaluate(A, B, "hand chords", "here", lams) is None
    assert search.evaluate(A[1:], B[1:], "hand chords", "again", lams) is None  # the same best chord again: a tie
    assert search.best_relative_gap == pytest.approx(best, rel=1e-12)
    assert search.best_source == "hand chords here"  # where the largest gap was first seen
    assert search.nonfinite == 3 + nonfinite + 3  # (800, 0) and (−2, 500) at each λ (L(m) finite at some λ)
    assert search.tried == (1 + 4 + 3) * 3 and dict(search.by_strategy) == {"hand chords": (1 + 4 + 3) * 3}


# ---- check_memory -----------------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "itemsize"), [(torch.float64, 8), (torch.float32, 4)])
def test_check_memory_refuses_exactly_above_the_budget_and_says_what_to_lower(dtype, itemsize):
    X, y = data.cubic(10, seed=0)
    problem = Problem(MLP([1, 3, 1]), X.to(dtype), y.to(dtype))
    p, pairs = problem.n_params, 20
    problem = problem.with_memory_budget(pairs * p * (2 * 8 + 4 * itemsize))  # float64 draws, A, B, one λ's middles, a temporary
    search = ChordSearch(problem, budget=10_000)
    search.check_memory(pairs)  # fits exactly
    with pytest.raises(MemoryBudgetError) as refused:
        search.check_memory(pairs + 1)
    message = str(refused.value)
    assert message.startswith(f"{pairs + 1} chord(s) of p = {p:,} parameters needs ")
    assert "lower budget (fewer chords per scale) (or raise memory_budget)" in message


# ---- symmetry_pairs ---------------------------------------------------------------------------


def test_symmetries_moving_a_fixed_group_are_skipped_and_the_others_kept():
    X, y = data.cubic(10, seed=0)
    net = Problem(MLP([1, 4, 4, 1], activation="tanh"), X, y)
    problem = net.restrict(["W1", "b1", "W2"])  # layer 0's symmetries move W0 (fixed), layer 1's do not
    theta = problem.default_theta(0)
    names = [n for n, _p in net.model.symmetries(net.unflatten(net.default_theta(0)), torch.Generator().manual_seed(0))]
    assert names[0].startswith("layer 0") and any(n.startswith("layer 1") for n in names)  # skipped ones come first
    pairs = symmetry_pairs(problem, theta, torch.Generator().manual_seed(0))
    assert pairs and all(name.startswith("layer 1") for name, _a, _b in pairs)
    for _name, a, b in pairs:
        assert torch.equal(a, theta) and not torch.equal(a, b)
        assert problem.loss(a).item() == pytest.approx(problem.loss(b).item(), rel=1e-12)


def test_symmetry_pairs_draw_from_the_given_generator_only():
    X, y = data.cubic(10, seed=0)
    problem = Problem(MLP([1, 8, 1], activation="tanh"), X, y)
    theta = problem.init(0)
    drawn = []
    for global_seed, seed in ((1, 5), (2, 5), (3, 6)):
        torch.manual_seed(global_seed)  # the global stream must not matter
        drawn.append(symmetry_pairs(problem, theta, torch.Generator().manual_seed(seed)))
    same = [(n1 == n2 and torch.equal(b1, b2)) for (n1, _, b1), (n2, _, b2) in zip(drawn[0], drawn[1])]
    assert len(drawn[0]) == len(drawn[1]) and all(same)
    assert any(not torch.equal(b1, b2) for (_, _, b1), (_, _, b2) in zip(drawn[0], drawn[2]))  # another seed, other points
