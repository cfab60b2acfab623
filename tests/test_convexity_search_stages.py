"""The later stages of check_convexity's witness search, each run where it decides the report.

Stage 2 (symmetry pairs), stage 3 (training: a diverging start, minibatches, a DataLoader),
stage 4 (negative curvature: the Lanczos start follows the seed) and stage 5 (L2: one group
scaled at a time). Points, radii and eigenvalues are rebuilt here and checked against dense
``torch.func.hessian`` of hand-written float64 losses.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from losslab import Problem, check_convexity, data
from losslab.convexity.analyze import GROUP_SCALES, _radius_steps
from losslab.fit import train
from losslab.models import Module, TwoLayer
from losslab.random_streams import child_seed

from _helpers import Untraced
from references import dense_eigenvalues, linear_bce, two_layer_tanh_mse

DT = torch.float64


@pytest.mark.parametrize("dtype", [DT, torch.float32])
def test_l2_stage_scales_one_group_and_confirms_negative_curvature_at_the_documented_radii(dtype):
    """Radii max(‖θ‖, 1)·10^(−4 … 0) in 9 steps, along the eigenvector, around the analysis point with one group ×t."""
    x, y = data.cubic(64, seed=0)
    problem = Problem(TwoLayer(1, 3, "tanh"), x.to(dtype), y.to(dtype), l2=10.0)
    report = check_convexity(problem, seed=0, budget=1000, train_steps=0, by_group=False)
    w, s = report.witness, report.search
    assert report.verdict == "non-convex" and report.by_group == {}
    assert w.verify(problem).holds
    found = re.fullmatch(r"negative curvature \(λ_min = (\S+)\) at the analysis point with (W|b|v) ×(\d+)", w.source)
    assert found, w.source
    group, t = found[2], float(found[3])
    assert s.by_strategy["negative curvature"] >= 1 and s.chords == sum(s.by_strategy.values())
    loss = lambda theta: two_layer_tanh_mse(theta, x, y, 3) + 10.0 * (theta**2).sum()  # the loss with L2, written out
    a, b = w.a, w.b
    mid = (a + b) / 2
    assert float(loss(w.lam * a + (1 - w.lam) * b) - w.lam * loss(a) - (1 - w.lam) * loss(b)) > w.bound
    if dtype == DT:
        start = problem.init(0)
        scaled = start.clone()
        sl = problem.slices()[group]
        scaled[sl] *= t
        assert torch.allclose(mid, scaled, rtol=0, atol=1e-12 * float(scaled.abs().max()))
        radius = float((a - b).norm()) / 2 / max(float(scaled.norm()), 1.0)
        k = (math.log10(radius) + 4) * 2
        assert abs(k - round(k)) < 1e-9 and 0 <= round(k) <= 8, radius
        names = ["the analysis point"] + [f"the analysis point with {g} ×{f:g}" for f in GROUP_SCALES for g in ("W", "b", "v")]
        assert [n for n, _ in s.curvature] == names[: len(s.curvature)] and s.curvature[-1][0] == w.source.split(" at ", 1)[1]
        for name, value in s.curvature:
            point = start.clone()
            if "×" in name:
                g, f = name.rsplit(" ", 2)[-2:]
                point[problem.slices()[g]] *= float(f[1:])
            exact = float(dense_eigenvalues(loss, point)[0])
            assert value == pytest.approx(exact, rel=1e-9), name
        assert float(found[1]) == pytest.approx(s.curvature[-1][1], rel=1e-2)
        assert s.hvps == problem.n_params * len(s.curvature)  # p = 9 ≤ 30: p products per Hessian


@pytest.mark.parametrize(("theta", "radius"), [([0.3, 0.4], 1.0), ([0.0, 0.0, 0.0], 1.0), ([3.0, 4.0], 5.0), ([-2.0, 1.0, 2.0], 3.0)])
def test_the_curvature_stage_radii_are_max_norm_1_times_powers_of_ten(theta, radius):
    """The documented radii: max(‖θ‖, 1) · 10^(−4), 10^(−3.5), …, 1."""
    expected = radius * 10 ** (-4 + 0.5 * torch.arange(9, dtype=DT))
    steps = _radius_steps(torch.tensor(theta, dtype=DT))
    assert steps.dtype == DT and torch.allclose(steps, expected, rtol=1e-12, atol=0)


def untraced(d_in: int = 2) -> Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Module(Untraced(d_in))


def test_l2_stage_skips_groups_that_are_zero_and_scales_the_others():
    x, y = data.logistic_labels(40, seed=0)
    l2 = 0.5
    problem = Problem(untraced(), x, y, loss="bce", l2=l2)
    at = torch.tensor([0.0, 0.0, 0.4], dtype=DT)  # the weight is zero: scaling it moves nothing

    def loss(theta):
        return linear_bce(theta, x, y) + l2 * (theta**2).sum()

    report = check_convexity(problem, at=at, budget=30, train_steps=0, by_group=False)
    s = report.search
    assert report.verdict == "no violation found"
    assert [n for n, _ in s.curvature] == ["the analysis point"] + [f"the analysis point with lin.bias ×{t:g}" for t in GROUP_SCALES]
    for (_, value), t in zip(s.curvature, (1.0, *GROUP_SCALES)):
        point = at.clone()
        point[2] *= t
        assert value == pytest.approx(float(dense_eigenvalues(loss, point)[0]), rel=1e-9)
    assert "negative curvature" not in s.by_strategy  # λ_min > 0 everywhere: nothing to confirm


def test_symmetry_pairs_at_a_trained_net_are_a_permutation_of_its_hidden_units():
    x, y = data.cubic(30, seed=0)
    problem = Problem(TwoLayer(1, 3, "tanh"), x, y)
    at = train(problem, optimizer="adam", lr=1e-2, steps=300, seed=0).theta.detach()
    reports = []
    for global_seed in range(4):  # the draws come from the seed's own stream, not torch's global one
        torch.manual_seed(global_seed)
        reports.append(check_convexity(problem, at=at, seed=2, budget=90, train_steps=0, by_group=False))
    w, s = reports[0].witness, reports[0].search
    assert all(r.to_dict() == reports[0].to_dict() for r in reports[1:])
    assert w.source == "symmetry pairs (permute hidden units) at the analysis point"
    assert s.by_strategy["symmetry pairs"] >= 1 and s.chords == sum(s.by_strategy.values())
    assert torch.equal(w.a, at)
    W, b, v = at[:3], at[3:6], at[6:]
    perm = [int((W - w.b[i]).abs().argmin()) for i in range(3)]  # the unit each row of b's W came from
    assert sorted(perm) == [0, 1, 2] and perm != [0, 1, 2]
    assert torch.equal(w.b, torch.cat([W[perm], b[perm], v[perm]]))
    loss = lambda theta: two_layer_tanh_mse(theta, x, y, 3)
    assert float(loss(w.a)) == pytest.approx(float(loss(w.b)), rel=1e-12)
    assert float(loss(0.5 * (w.a + w.b)) - 0.5 * loss(w.a) - 0.5 * loss(w.b)) > w.bound


class SqrtGain(torch.nn.Module):
    """x ↦ √w·x: with target 0 the loss is w·mean(x²), linear (convex) for w ≥ 0 and NaN below."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1, dtype=DT))

    def reset_parameters(self):
        torch.nn.init.uniform_(self.w, 1.0, 2.0)

    def forward(self, x):
        return torch.sqrt(self.w) * x[:, 0]


def test_a_start_whose_training_diverges_is_skipped_and_the_next_is_trained():
    x = torch.linspace(0.5, 1, 10, dtype=DT)[:, None]
    problem = Problem(Module(SqrtGain(), d_in=1), x, torch.zeros(10, dtype=DT))
    budget = 864
    s = check_convexity(problem, at=torch.tensor([0.02]), seed=0, budget=budget, train_steps=5, by_group=False).search
    restarts = [child_seed(0, "restarts", k) for k in (1, 2)]
    # Adam moves w by about 0.01 a step: from 0.02 it crosses 0 (NaN); from init(·) ∈ [1, 2] it does not
    assert s.centers == ("the analysis point", "θ = 0", f"init seed {restarts[0]}", f"init seed {restarts[1]}",
                         f"trained from init seed {restarts[0]}")
    assert [n for n, _ in s.curvature] == ["the analysis point", f"trained from init seed {restarts[0]}"]
    assert "chords between trained points" not in s.by_strategy  # one trained point: no chord between two
    assert 0 < s.nonfinite_chords < s.chords
    assert 0.7 * budget <= s.chords <= budget  # the one trained point gets the trained points' quarter


def large_logistic(n: int):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 2, generator=g, dtype=DT)
    return x, (x[:, 0] + 0.5 * torch.randn(n, generator=g, dtype=DT) > 0).to(DT)


def test_training_on_large_in_memory_data_uses_minibatches_from_the_seed():
    x, y = large_logistic(1100)
    problem = Problem(untraced(), x, y, loss="bce")
    at = torch.tensor([0.7, -0.4, 0.3], dtype=DT)

    def curvature_after_training(seed: int) -> float:
        s = check_convexity(problem, at=at, seed=seed, budget=30, train_steps=3, by_group=False).search
        return dict(s.curvature)["trained from the analysis point"]

    one = curvature_after_training(1)
    assert curvature_after_training(1) == one
    assert curvature_after_training(2) != one  # another seed, other minibatches, another trained point


def test_a_dataloader_of_two_batches_is_trained_full_batch():
    x, y = large_logistic(1100)
    problem = Problem(untraced(), DataLoader(TensorDataset(x, y), batch_size=550), loss="bce")
    assert problem.data.count == 2
    report = check_convexity(problem, budget=30, train_steps=1, by_group=False)
    assert report.verdict == "no violation found"
    assert "trained from the analysis point" in dict(report.search.curvature)


def test_the_lanczos_start_of_the_curvature_stage_follows_the_seed():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(80, 40, generator=g, dtype=DT)
    y = (x[:, 0] > 0).to(DT)
    problem = Problem(untraced(40), x, y, loss="bce")  # p = 41 > 30: Lanczos, from a seeded start
    at = 0.1 * torch.randn(41, generator=g, dtype=DT)

    def curvature(seed: int):
        s = check_convexity(problem, at=at, seed=seed, budget=30, train_steps=0, by_group=False).search
        return s.curvature, s.hvps

    first = curvature(1)
    assert curvature(1) == first
    assert curvature(2) != first
    exact = float(dense_eigenvalues(problem.loss, at)[0])
    assert first[0][0][1] == pytest.approx(exact, rel=1e-2)
