"""Tests for losslab.landscape.barrier and bezier_path: every number against direct evaluation of the loss.

The references: ``problem.loss`` at each point, one point at a time, the points built by hand
((1 − t)·a + t·b and (1 − t)²·a + 2t(1 − t)·c + t²·b), and the two barrier heights computed from those
values with Python's max; a convex loss (least squares) has zero barrier above the chord.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from losslab import LosslabError, Problem
from losslab.landscape import barrier, bezier_path, bezier_points
from losslab.models import MLP, Module, Polynomial, TwoLayer

F64 = torch.float64


def _X(n, d, seed):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


X = _X(40, 3, 0)
Y = torch.tanh(X @ torch.tensor([1.0, -2.0, 0.5], dtype=F64))
PROBLEMS = {
    "two-layer-mse": Problem(TwoLayer(3, 6, "tanh"), X, Y),
    "mlp-cross-entropy": Problem(MLP([3, 5, 4, 3], "relu"), X, (Y > 0).long() + (Y > 0.5).long(), loss="cross_entropy"),
    "sequential": Problem(Module(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()), X, Y),
}


def _direct(problem, points):
    return [float(problem.loss(p)) for p in points]


@pytest.mark.parametrize("name", sorted(PROBLEMS))
@pytest.mark.parametrize("steps", [2, 7, 25])
def test_barrier_equals_direct_evaluation(name, steps):
    problem = PROBLEMS[name]
    a, b = problem.init(0), problem.init(1)
    r = barrier(problem, a, b, steps=steps)
    ts = [k / (steps - 1) for k in range(steps)]
    want = _direct(problem, [(1 - t) * a + t * b for t in ts])
    assert r.t.tolist() == pytest.approx(ts, abs=1e-15)
    assert r.losses.tolist() == pytest.approx(want, rel=1e-10)
    la, lb = float(problem.loss(a)), float(problem.loss(b))
    assert (r.loss_a, r.loss_b) == (pytest.approx(la, rel=1e-12), pytest.approx(lb, rel=1e-12))
    assert r.height_above_mean == pytest.approx(max(want) - (la + lb) / 2, rel=1e-9, abs=1e-12)
    assert r.height_above_chord == pytest.approx(max(v - ((1 - t) * la + t * lb) for t, v in zip(ts, want)), rel=1e-9, abs=1e-12)
    assert r.t_max == ts[max(range(steps), key=want.__getitem__)]


def test_barrier_of_a_convex_loss_is_zero_above_the_chord_and_equals_the_midpoint_rise_for_equal_endpoints():
    x = torch.linspace(-1, 1, 9, dtype=F64)
    problem = Problem(Polynomial(1, 2), x, x**2)
    a, b = torch.tensor([0.3, -1.0, 2.0], dtype=F64), torch.tensor([-0.5, 1.0, 0.0], dtype=F64)
    r = barrier(problem, a, b, steps=11)
    assert r.height_above_chord == pytest.approx(0.0, abs=1e-14)  # t = 0 gives 0; a convex loss never exceeds its chord
    # a double well: L(θ) = mean((θ² x − x)²)-like by symmetry, endpoints ±1 of one coordinate, equal losses
    sym = Problem(TwoLayer(1, 1, "tanh"), x[:, None], torch.tanh(x))
    p = sym.unflatten(sym.init(0))
    flipped = {"W": -p["W"], "b": -p["b"], "v": -p["v"]}  # tanh is odd: the same function, the same loss
    r = barrier(sym, sym.flatten(p), sym.flatten(flipped), steps=5)
    assert r.loss_a == pytest.approx(r.loss_b, rel=1e-12)
    mid = float(sym.loss(torch.zeros(3, dtype=F64)))  # the midpoint of θ and −θ is 0
    assert r.losses[2].item() == pytest.approx(mid, rel=1e-12)
    assert r.height_above_mean == pytest.approx(r.height_above_chord, rel=1e-12)


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_bezier_endpoints_are_a_and_b_and_its_losses_equal_direct_evaluation(name):
    problem = PROBLEMS[name]
    a, b = problem.init(0), problem.init(1)
    path = bezier_path(problem, a, b, steps=9, train_steps=5, lr=0.01, points=3)
    c = path.control
    ts = [k / 8 for k in range(9)]
    pts = bezier_points(a, c, b, torch.tensor(ts, dtype=F64))
    assert torch.equal(pts[0], a) and torch.equal(pts[-1], b)
    by_hand = [(1 - t) ** 2 * a + 2 * t * (1 - t) * c + t**2 * b for t in ts]
    assert all(torch.allclose(p, q, rtol=1e-14, atol=1e-14) for p, q in zip(pts, by_hand))
    assert path.curve.losses.tolist() == pytest.approx(_direct(problem, by_hand), rel=1e-10)
    assert path.curve.losses[0].item() == pytest.approx(float(problem.loss(a)), rel=1e-12)
    assert path.curve.losses[-1].item() == pytest.approx(float(problem.loss(b)), rel=1e-12)
    assert path.training_losses.shape == (6,)


def test_bezier_without_training_is_the_straight_segment_and_adam_is_the_first_step_by_hand():
    problem = PROBLEMS["two-layer-mse"]
    a, b = problem.init(0), problem.init(1)
    flat = bezier_path(problem, a, b, steps=7, train_steps=0)
    assert torch.allclose(flat.control, (a + b) / 2, rtol=0, atol=0)
    assert flat.curve.losses.tolist() == pytest.approx(barrier(problem, a, b, steps=7).losses.tolist(), rel=1e-10)
    # one Adam step (bias-corrected moments g and g², eps 1e-8) moves c by lr·g/(|g| + eps) against the node average's gradient
    lr, points = 0.01, 4
    one = bezier_path(problem, a, b, steps=3, train_steps=1, lr=lr, points=points)
    ts = (torch.arange(points, dtype=F64) + 0.0) / points  # step 0: no shift
    c0 = ((a + b) / 2).clone().requires_grad_(True)
    avg = sum(problem.loss((1 - t) ** 2 * a + 2 * t * (1 - t) * c0 + t**2 * b) for t in ts) / points
    (g,) = torch.autograd.grad(avg, c0)
    assert one.training_losses[0].item() == pytest.approx(float(avg.detach()), rel=1e-12)
    assert torch.allclose(one.control, (a + b) / 2 - lr * g / (g.abs() + 1e-8), rtol=0, atol=1e-12)


def test_a_tiny_memory_budget_trains_the_same_curve_chunk_by_chunk():
    """The nodes of the curve's objective go through in chunks within the budget; the gradients add up to the same step."""
    problem = PROBLEMS["two-layer-mse"]
    a, b = problem.init(0), problem.init(1)
    whole = bezier_path(problem, a, b, steps=5, train_steps=6, lr=0.01, points=16)
    tiny = problem.with_memory_budget(3 * problem._bytes_per_point)  # one node per vmapped call
    assert tiny.chunk_size() // 3 == 1
    chunked = bezier_path(tiny, a, b, steps=5, train_steps=6, lr=0.01, points=16)
    torch.testing.assert_close(chunked.control, whole.control, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(chunked.training_losses, whole.training_losses, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(chunked.curve.losses, whole.curve.losses, rtol=1e-12, atol=1e-14)


def test_training_lowers_the_curves_average_loss():
    problem = PROBLEMS["two-layer-mse"]
    a, b = problem.init(0), problem.init(1)
    path = bezier_path(problem, a, b, steps=11, train_steps=150, lr=0.02, points=4)
    assert path.training_losses[-1] < path.training_losses[0]
    assert float(path.curve.losses.mean()) < float(barrier(problem, a, b, steps=11).losses.mean())


P = PROBLEMS["two-layer-mse"]
OTHER = PROBLEMS["sequential"]
BAD = [
    ("not-a-problem", lambda: ("problem", P.init(0), P.init(1), {}), "expected a losslab Problem"),
    ("a-from-another-problem", lambda: (P, OTHER.init(0), P.init(1), {}), r"expected a of shape \(30,\), got shape \(21,\)"),
    ("b-matrix", lambda: (P, P.init(0), P.init(1)[None], {}), r"expected b of shape \(30,\), got shape \(1, 30\)"),
    ("b-inf", lambda: (P, P.init(0), torch.full((30,), float("inf"), dtype=F64), {}), "expected b to be finite"),
    ("a-string", lambda: (P, "theta", P.init(1), {}), "expected a to be a tensor or array of numbers"),
    ("steps-1", lambda: (P, P.init(0), P.init(1), {"steps": 1}), "expected steps to be an integer >= 2, got steps=1"),
    ("steps-float", lambda: (P, P.init(0), P.init(1), {"steps": 2.5}), "expected steps to be an integer >= 2"),
    ("implementation", lambda: (P, P.init(0), P.init(1), {"implementation": "fast"}), "unknown implementation 'fast'"),
    # refused before any memory is allocated (10¹² points of t would need 16 TB)
    ("steps-huge", lambda: (P, P.init(0), P.init(1), {"steps": 10**12}),
     r"expected steps <= 10000000 \(grid points of t\), got steps=1000000000000; use a few dozen"),
]
BEZIER_ONLY = [
    ("lr-0", lambda: (P, P.init(0), P.init(1), {"lr": 0}), "expected lr to be a finite number > 0, got lr=0"),
    ("points-0", lambda: (P, P.init(0), P.init(1), {"points": 0}), "expected points to be an integer >= 1, got points=0"),
    ("points-huge", lambda: (P, P.init(0), P.init(1), {"points": 10**12}), r"expected points <= 10000000"),
    ("train-steps-neg", lambda: (P, P.init(0), P.init(1), {"train_steps": -1}), "expected train_steps to be an integer >= 0"),
    ("diverging", lambda: (P, P.init(0), P.init(1), {"lr": 1e300, "train_steps": 3}), "expected a finite loss along the curve"),
]


@pytest.mark.parametrize(("case", "make", "match"), BAD, ids=[c for c, _, _ in BAD])
@pytest.mark.parametrize("fn", [barrier, bezier_path])
def test_bad_inputs_give_one_line_errors(fn, case, make, match):
    problem, a, b, kwargs = make()
    if fn is bezier_path:
        kwargs = {"train_steps": 1, **kwargs}
    with pytest.raises(LosslabError, match=match) as err:
        fn(problem, a, b, **kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("case", "make", "match"), BEZIER_ONLY, ids=[c for c, _, _ in BEZIER_ONLY])
def test_bad_bezier_inputs_give_one_line_errors(case, make, match):
    problem, a, b, kwargs = make()
    with pytest.raises(LosslabError, match=match) as err:
        bezier_path(problem, a, b, **kwargs)
    assert "\n" not in str(err.value)


def test_non_finite_losses_give_non_finite_heights_not_false_numbers():
    """+inf on the grid: infinite heights; NaN anywhere on the grid: NaN heights (the barrier is undefined)."""
    inverse = Problem.from_objective(lambda q: 1.0 / (q["x"] ** 2).sum(), shapes={"x": (1,)})
    r = barrier(inverse, torch.tensor([-1.0], dtype=F64), torch.tensor([1.0], dtype=F64), steps=3)
    assert r.losses.tolist() == [1.0, float("inf"), 1.0] and r.height_above_mean == r.height_above_chord == float("inf")
    root = Problem.from_objective(lambda q: torch.sqrt(1 - (q["x"] ** 2).sum()), shapes={"x": (1,)})
    r = barrier(root, torch.tensor([0.5], dtype=F64), torch.tensor([2.0], dtype=F64), steps=5)  # NaN from t = ½ on
    assert r.losses[:2].isfinite().all() and r.losses[2:].isnan().all()
    assert torch.isnan(torch.tensor([r.height_above_mean, r.height_above_chord])).all() and r.t_max == 0.5
