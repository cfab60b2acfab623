"""Non-finite values are errors: an overflowing loss never becomes a NaN result or a clean verdict.

The model is a user's module f(x) = exp(w·x + b) with the squared loss, in float32: at w = 50
the loss overflows (exp(50)² ≈ 2.7e43 > 3.4e38) on the inputs near 1, and is finite at w = 1.
Every analysis at the overflowing point must raise a one-line LosslabError that says what went
non-finite and at what scale of θ; a slice through it must count and locate its non-finite
points and not be called clean; a chord search must count the chords it could not use.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from losslab import LosslabError, Problem, check_convexity
from losslab._checks import NonFiniteError
from losslab.curvature import (
    GGNOperator,
    HessianOperator,
    classify,
    eigs,
    hutchinson,
    hutchpp,
    spectral_density,
    xtrace,
)
from losslab.landscape import discrete_convexity, line, plane
from losslab.models import Module


class Exp(nn.Module):
    def forward(self, x):
        return torch.exp(x)


def problem() -> Problem:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 1), Exp())
    x = torch.linspace(-1, 1, 21)[:, None]
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.fill_(0.0)
    return Problem(Module(net), x, torch.exp(0.5 * x[:, 0]))


def overflowing(p: Problem) -> torch.Tensor:
    return torch.tensor([50.0, 0.0], dtype=p.dtype)  # (weight, bias)


ANALYSES = {
    "gradient": lambda p, t: p.grad(t),
    "Hessian-vector product": lambda p, t: p.hvp(t, torch.ones_like(t)),
    "eigs (dense, p = 2)": lambda p, t: eigs(p, t, k=1),
    "eigs on the GGN": lambda p, t: eigs(GGNOperator(p, t), k=1),
    "HessianOperator.matvec": lambda p, t: HessianOperator(p, t).matvec(torch.ones_like(t)),
    "hutchinson": lambda p, t: hutchinson(p, t, samples=4),
    "hutch++": lambda p, t: hutchpp(p, t, samples=6),
    "xtrace": lambda p, t: xtrace(p, t, samples=4),
    "spectral_density": lambda p, t: spectral_density(p, t, probes=1, steps=2),
    "classify": lambda p, t: classify(p, t),
}


@pytest.mark.parametrize("name", list(ANALYSES))
def test_an_overflowing_point_is_a_clear_error_not_a_nan_result(name):
    p = problem()
    theta = overflowing(p)
    assert not torch.isfinite(p.loss(theta))  # the premise: the loss itself overflows there
    with pytest.raises(LosslabError, match=r"expected (a )?finite .*NaN/inf.*‖θ‖ = 50") as err:
        ANALYSES[name](p, theta)
    assert "\n" not in str(err.value) and "float64" in str(err.value)
    assert isinstance(err.value, NonFiniteError)  # the one kind the chord search may skip a centre for
    finite = torch.tensor([1.0, 0.0], dtype=p.dtype)
    ANALYSES[name](p, finite)  # and the same call is fine where the loss is finite


def test_a_slice_through_an_overflow_counts_and_locates_its_nonfinite_points_and_is_not_clean():
    p = problem()
    centre = torch.tensor([1.0, 0.0], dtype=p.dtype)
    s = line(p, centre, torch.tensor([60.0, 0.0]), steps=21)  # t ∈ [0, 1]: w from 1 to 60
    expected = int((~torch.isfinite(torch.stack([p.loss(centre + t * (torch.tensor([60.0, 0.0]) - centre)) for t in s.t]))).sum())
    assert expected > 0
    dc = discrete_convexity(s)
    assert dc.nonfinite == expected and dc.nonfinite_at.shape == (expected, 1)
    assert not dc.clean and "non-finite" in dc.summary() and "not clean" in dc.summary()
    assert bool((dc.nonfinite_at[:, 0] > 0.5).all())  # where: the large-w end
    s2 = plane(p, centre, torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), steps=9, span=60.0)
    dc2 = discrete_convexity(s2)
    assert dc2.nonfinite == int((~torch.isfinite(s2.losses)).sum()) > 0 and not dc2.clean
    ok = discrete_convexity(plane(p, centre, torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), steps=9, span=0.1))
    assert ok.nonfinite == 0 and ok.clean


def test_a_chord_search_says_how_many_chords_overflowed():
    # L(w) = mean(exp(2·w·x)) (f = exp(w·x), targets 0): convex in w, with no proof a module can give, and
    # overflowing in float32 once 2·|w·x| > 88. No chord may certify; the overflowing ones are counted.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 1, bias=False), Exp())
    x = torch.linspace(-1, 1, 21)[:, None]
    p = Problem(Module(net), x, torch.zeros(21))
    report = check_convexity(p, at=torch.tensor([30.0]), seed=0, budget=200, train_steps=0, by_group=False)
    assert report.verdict == "no violation found"  # a convex loss: a witness here would be unsound
    assert 0 < report.search.nonfinite_chords < report.search.chords  # the larger scales around w = 30 overflow
    assert f"{report.search.nonfinite_chords} of the chords had a non-finite loss" in report.explanation()
    assert report.to_dict()["search"]["nonfinite_chords"] == report.search.nonfinite_chords
    quiet = check_convexity(p, at=torch.tensor([0.1]), seed=0, budget=60, train_steps=0, by_group=False)
    assert quiet.search.nonfinite_chords == 0 and "non-finite" not in quiet.explanation()


def test_smallest_eigenpair_gives_nan_only_for_an_overflow_and_raises_every_other_error():
    """The chord search's negative-curvature stage skips a centre where the model overflows (NaN, zero vector); a
    bad setting or a memory refusal is the caller's error and must not be turned into "no eigenvalue"."""
    from losslab.convexity.hessian import smallest_eigenpair
    from losslab.memory import MemoryBudgetError

    p = problem()
    value, vector, products = smallest_eigenpair(p, overflowing(p))
    assert value != value and torch.equal(vector, torch.zeros(2, dtype=torch.float64)) and products >= 1
    with pytest.raises(NonFiniteError, match="overflows"):
        eigs(p, overflowing(p), k=1)
    with pytest.raises(LosslabError, match="tol") as refused:
        smallest_eigenpair(p, torch.zeros(2, dtype=p.dtype), tol=2.0)
    assert not isinstance(refused.value, NonFiniteError)
    big = Problem(Module(nn.Linear(40, 1).double()), torch.rand(5, 40, dtype=torch.float64), torch.rand(5, dtype=torch.float64))
    big = big.with_memory_budget(1000)
    with pytest.raises(MemoryBudgetError):
        smallest_eigenpair(big, big.init(0))
