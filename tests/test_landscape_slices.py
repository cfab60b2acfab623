"""Line and plane slices: every value equals Problem.loss at its exact point; the quadratic shortcut; .npz files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from losslab import LosslabError
from losslab.landscape import (
    LineSlice,
    PlaneSlice,
    filter_normalized,
    line,
    line_coordinates,
    load_slice,
    plane,
    plane_coordinates,
    random_direction,
)

DT = torch.float64


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    got, want = got.to(DT), want.to(DT)
    return float(((got - want).abs() / want.abs().clamp_min(1e-300)).max())


def test_plane_values_equal_loss_point_by_point(case):
    prob = case.problem()
    center = case.theta(prob)
    d1, d2 = case.direction(prob.groups, 1), case.direction(prob.groups, 2)
    s = plane(prob, center, d1, d2, steps=5, span=0.7, method="grid")
    assert s.method == "grid" and s.coefficients is None and s.losses.shape == (5, 5)
    assert s.alphas.tolist() == [-0.7, -0.35, 0.0, 0.35, 0.7]
    u, v = prob.flatten(d1), prob.flatten(d2)
    want = torch.empty(5, 5, dtype=DT)
    for i in range(5):
        for j in range(5):
            point = center + s.alphas[i] * u + s.betas[j] * v
            assert torch.equal(s.point(i, j), point)
            want[i, j] = prob.loss(point)
    assert torch.equal(s.points()[3, 1], s.point(3, 1))
    assert torch.equal(s.point(2, 2), center)  # α = β = 0 exactly
    assert rel_err(s.losses, want) <= 1e-12


@pytest.mark.parametrize("name", ["two-layer-tanh", "mlp-relu", "poly-2d-deg2", "linear-bce"])
def test_plane_float32_equals_loss(make_case, name):
    case = make_case(name)
    prob = case.problem(dtype=torch.float32)
    center = case.theta(prob.to(DT)).to(torch.float32)
    s = plane(prob, center, steps=4, span=0.5, seed=3, method="grid")
    assert s.losses.dtype == torch.float32 and s.d1.dtype == torch.float32
    points = s.points().reshape(16, -1)
    want32 = torch.stack([prob.loss(p) for p in points]).reshape(4, 4)
    want64 = torch.stack([prob.to(DT).loss(p.to(DT)) for p in points]).reshape(4, 4)
    assert rel_err(s.losses, want32) <= 1e-6
    assert rel_err(s.losses, want64) <= 1e-5


@pytest.mark.parametrize("extend", [(0.0, 0.0), (0.5, 0.5), (0.25, 1.0), (0.0, 2.0), 0.3])
def test_line_values_and_exact_ends(make_case, extend):
    case = make_case("two-layer-tanh-c")
    prob = case.problem()
    a, b = case.theta(prob, 0), case.theta(prob, 1)
    s = line(prob, a, b, steps=13, extend=extend)
    e0, e1 = (extend, extend) if isinstance(extend, float) else extend
    assert s.t.shape == (13,) and s.losses.shape == (13,)
    assert float(s.t[0]) == -e0 and float(s.t[-1]) == 1 + e1
    i0, i1 = s.t.tolist().index(0.0), s.t.tolist().index(1.0)
    points = s.points()
    assert torch.equal(points[i0], a) and torch.equal(points[i1], b)
    assert torch.equal(s.point(i1), b) and torch.equal(s.point(-1), points[-1]) and torch.equal(s.point(3), points[3])
    assert abs(float(s.losses[i0] - prob.loss(a))) <= 1e-12 * float(prob.loss(a))
    assert abs(float(s.losses[i1] - prob.loss(b))) <= 1e-12 * float(prob.loss(b))
    want = torch.stack([prob.loss((1 - t) * a + t * b) for t in s.t])
    assert rel_err(s.losses, want) <= 1e-12
    assert bool((s.t.diff() > 0).all())


def test_line_coordinates():
    assert line_coordinates(2).tolist() == [0.0, 1.0]
    assert line_coordinates(5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    t = line_coordinates(61, (0.5, 0.5))
    assert torch.allclose(t.diff(), torch.full((60,), 1 / 30, dtype=DT), rtol=0, atol=1e-15)
    assert line_coordinates(3, (0.0, 1.0)).tolist() == [0.0, 1.0, 2.0]
    assert plane_coordinates(3, 2.0).tolist() == [-2.0, 0.0, 2.0]
    assert plane_coordinates(2, 1.5).tolist() == [-1.5, 1.5]


QUADRATIC = {
    "polynomial": lambda make_case: make_case("poly-2d-deg2").problem(),
    "random features": lambda make_case: make_case("random-features").problem(l2=0.1),
    "linearized": lambda make_case: make_case("linearized-two-layer").problem(),
    "two-layer v only": lambda make_case: (lambda c: c.problem().restrict(["v"], at=c.params(0)))(make_case("two-layer-tanh")),
}


@pytest.mark.parametrize("kind", list(QUADRATIC))
def test_exact_quadratic_equals_grid(make_case, kind):
    prob = QUADRATIC[kind](make_case)
    center = torch.randn(prob.n_params, generator=torch.Generator().manual_seed(5), dtype=DT)
    quad = plane(prob, center, steps=9, span=2.0, seed=1)
    grid = plane(prob, center, steps=9, span=2.0, seed=1, method="grid")
    assert quad.method == "exact quadratic" and grid.method == "grid"
    assert quad.coefficients.shape == (6,) and quad.coefficients.dtype == DT
    assert torch.equal(quad.d1, grid.d1) and torch.equal(quad.d2, grid.d2)
    scale = float(grid.losses.abs().max())
    assert float((quad.losses - grid.losses).abs().max()) <= 1e-10 * scale
    assert float(quad.losses[4, 4]) == pytest.approx(float(prob.loss(center)), rel=1e-14)


@pytest.mark.parametrize("name", ["two-layer-tanh", "linear-sigmoid-mse", "linear-bce", "mlp-deep-linear"])
def test_exact_quadratic_not_used_where_not_exact(make_case, name):
    prob = make_case(name).problem()
    s = plane(prob, prob.init(0), steps=3, seed=0, method="auto")
    assert s.method == "grid" and s.coefficients is None
    with pytest.raises(LosslabError, match="method='exact quadratic'"):
        plane(prob, prob.init(0), steps=3, seed=0, method="exact quadratic")


def test_default_directions_are_seeded_and_filter_normalised(make_case):
    prob = make_case("mlp-relu").problem()
    center = prob.init(0)
    s1, s2, s3 = (plane(prob, center, steps=3, seed=seed) for seed in (7, 7, 8))
    assert torch.equal(s1.d1, s2.d1) and torch.equal(s1.d2, s2.d2) and torch.equal(s1.losses, s2.losses)
    assert not torch.equal(s1.d1, s3.d1) and not torch.equal(s1.d1, s1.d2)
    assert s1.seed == 7 and plane(prob, center, s1.d1, s1.d2, steps=3).seed is None
    assert torch.equal(s1.d1, filter_normalized(prob, center, random_direction(prob, seed=7)))
    assert torch.equal(plane(prob, center, steps=3).d1, plane(prob, center, steps=3, seed=0).d1)


def test_save_load_round_trip(tmp_path, make_case):
    prob = make_case("two-layer-tanh").problem()
    center = prob.init(0)
    slices = [
        plane(prob, center, steps=4, seed=2),
        plane(prob.restrict(["v"], at=center), center[prob.slices()["v"]], steps=3, seed=None, span=0.5),
        plane(prob.to(torch.float32), center.float(), steps=3, seed=1),
        line(prob, center, prob.init(1), steps=6, extend=(0.5, 0.0)),
    ]
    assert slices[1].method == "exact quadratic" and slices[1].seed == 0
    for k, s in enumerate(slices):
        path = tmp_path / f"slice{k}.npz"
        s.save(path)
        with np.load(path, allow_pickle=False) as data:  # plain arrays only
            assert str(data["kind"]) == ("line" if isinstance(s, LineSlice) else "plane")
        back = load_slice(path)
        assert type(back) is type(s) and back.description == s.description
        for name, value in vars(s).items():
            got = getattr(back, name)
            if isinstance(value, torch.Tensor):
                assert got.dtype == value.dtype and torch.equal(got, value), name
            else:
                assert got == value, name
    with pytest.raises(LosslabError, match="expected a plane slice file"):
        PlaneSlice.load(tmp_path / "slice3.npz")
    with pytest.raises(LosslabError, match="expected a line slice file"):
        LineSlice.load(tmp_path / "slice0.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(LosslabError, match="got a file with keys"):
        load_slice(tmp_path / "other.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.npz"] + [f"slice{k}.npz" for k in range(4)]  # no temp files left


def _bad(make_case):
    prob = make_case("two-layer-tanh").problem()
    return prob, prob.init(0), torch.ones(prob.n_params, dtype=DT)


BAD_PLANE = [
    ({"d1": "zeros"}, "expected a non-zero d1, got all zeros"),
    ({"d2": {"W": torch.zeros(4, 2)}}, "expected a non-zero d2"),
    ({"d1": torch.ones(5)}, r"expected d1 of shape \(16,\), got shape \(5,\)"),
    ({"d2": torch.ones(16, 1)}, r"expected d2 of shape \(16,\), got shape \(16, 1\)"),
    ({"d1": {"W": torch.ones(2, 4)}}, r"expected d1\['W'\] of shape \(4, 2\)"),
    ({"d1": {"U": torch.ones(4, 2)}}, "expected d1 groups among"),
    ({"d1": torch.full((16,), float("nan"))}, "expected d1 to be finite"),
    ({"steps": 1}, "expected steps to be an integer >= 2, got steps=1"),
    ({"steps": 2.5}, "expected steps to be an integer >= 2"),
    ({"span": 0.0}, "expected span to be a finite number > 0, got span=0.0"),
    ({"span": -1}, "expected span to be a finite number > 0"),
    ({"span": float("inf")}, "expected span to be a finite number > 0"),
    ({"method": "lanczos"}, "unknown method 'lanczos'"),
    ({"seed": -1}, r"expected seed to be an integer in \[0, 2\*\*63 - 1\], got seed=-1"),
    ({"center": torch.ones(3)}, r"expected center of shape \(16,\)"),
]


@pytest.mark.parametrize(("kwargs", "match"), BAD_PLANE)
def test_plane_bad_input(make_case, kwargs, match):
    prob, center, ones = _bad(make_case)
    args = {"center": center, "d1": ones, "d2": ones.flip(0) * torch.arange(16, dtype=DT), **kwargs}
    if isinstance(args["d1"], str):
        args["d1"] = torch.zeros(16, dtype=DT)
    with pytest.raises(LosslabError, match=match):
        plane(prob, args.pop("center"), args.pop("d1"), args.pop("d2"), **args)


BAD_LINE = [
    ({"b": "a"}, "expected two different points a and b"),
    ({"b": torch.ones(17)}, r"expected b of shape \(16,\), got shape \(17,\)"),
    ({"steps": 1}, "expected steps to be an integer >= 2, got steps=1"),
    ({"steps": 2, "extend": (0.5, 0.5)}, "expected steps >= 4 to include t=0 and t=1"),
    ({"extend": (-0.1, 0.0)}, "expected extend\\[0\\] to be a finite number >= 0"),
    ({"extend": (0.1, 0.2, 0.3)}, "expected extend as a pair"),
]


@pytest.mark.parametrize(("kwargs", "match"), BAD_LINE)
def test_line_bad_input(make_case, kwargs, match):
    prob, a, ones = _bad(make_case)
    args = {"a": a, "b": a + ones, **kwargs}
    if isinstance(args["b"], str):
        args["b"] = a.clone()
    with pytest.raises(LosslabError, match=match):
        line(prob, args.pop("a"), args.pop("b"), **args)


def test_restricted_problem_full_length_direction_hint(make_case):
    case = make_case("two-layer-tanh")
    sub = case.problem().restrict(["W"], at=case.params(0))
    with pytest.raises(LosslabError, match="restricted to \\['W'\\]: pass a dict"):
        plane(sub, sub.init(0), torch.ones(16, dtype=DT), torch.ones(8, dtype=DT))
    with pytest.raises(LosslabError, match="fixed in this problem"):
        plane(sub, sub.init(0), {"v": torch.ones(4, dtype=DT)}, torch.ones(8, dtype=DT))
