"""Problem.from_objective: an analytic objective L(params) through every analysis (verdict, curvature, landscape, training)."""

from __future__ import annotations

import math

import pytest
import torch

from losslab import LosslabError, Problem, check_convexity
from losslab.curvature import classify, eigs
from losslab.fit import train, train_ensemble
from losslab.landscape import line, plane

from references import dense_eigenvalues, dense_gradient, dense_hessian

F64 = torch.float64
A = torch.tensor([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]], dtype=F64)  # positive definite, eigenvalues known
B = torch.tensor([1.0, -2.0, 0.5], dtype=F64)


def quadratic(params):
    """½ xᵀAx − bᵀx: convex, minimised at A⁻¹b."""
    x = params["x"]
    return 0.5 * x @ A @ x - B @ x


def double_well(params):
    """Σ (x_i² − 1)² + y²: non-convex in x (two wells per coordinate), convex in y."""
    return ((params["x"] ** 2 - 1) ** 2).sum() + (params["y"] ** 2).sum()


def flat(t: torch.Tensor, problem: Problem):
    """The objective written directly on a flat θ (the reference: no Problem involved)."""
    return {"x": t[:3]} if problem.groups == ("x",) else {"x": t[:2], "y": t[2:]}


@pytest.fixture
def quad():
    return Problem.from_objective(quadratic, shapes={"x": (3,)}, init=0.5)


@pytest.fixture
def well():
    return Problem.from_objective(double_well, shapes={"x": (2,), "y": (1,)}, init=0.7)


def test_loss_grad_hvp_and_batch_match_direct_evaluation(well):
    ref = lambda t: double_well(flat(t, well))
    gen = torch.Generator().manual_seed(0)
    Theta = torch.randn(5, 3, generator=gen, dtype=F64)
    torch.testing.assert_close(well.loss_batch(Theta), torch.stack([ref(t) for t in Theta]), rtol=1e-14, atol=0)
    t, v = Theta[0], Theta[1]
    assert float(well.loss(t)) == pytest.approx(float(ref(t)), rel=1e-14)
    torch.testing.assert_close(well.grad(t), dense_gradient(ref, t), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(well.hvp(t, v), dense_hessian(ref, t) @ v, rtol=1e-12, atol=1e-14)
    assert well.batching_note is None  # vmap batches it
    assert "objective double_well" in well.describe() and "p=3" in well.describe()


def test_init_is_seeded_and_scaled(quad):
    a, b = quad.init(3), quad.init(3)
    assert torch.equal(a, b) and not torch.equal(a, quad.init(4))
    draws = torch.stack([quad.init(s) for s in range(400)])
    assert float(draws.std()) == pytest.approx(0.5, rel=0.1)


def test_a_callable_init_draws_from_the_seed_stream():
    prob = Problem.from_objective(quadratic, shapes={"x": (3,)}, init=lambda g: {"x": torch.rand(3, generator=g, dtype=F64)})
    x = prob.init(1)
    assert torch.equal(x, prob.init(1)) and bool(((x >= 0) & (x < 1)).all())


def test_convexity_verdict_is_honest(quad, well):
    convex = check_convexity(quad, budget=200, train_steps=20)
    assert convex.verdict == "no violation found" and convex.proof is None  # an opaque function: nothing proven
    nonconvex = check_convexity(well, budget=400, train_steps=0)
    assert nonconvex.verdict == "non-convex"
    w = nonconvex.witness
    a, b = w.a.to(F64), w.b.to(F64)
    f = lambda t: double_well(flat(t, well))
    assert float(f(w.lam * a + (1 - w.lam) * b)) > w.lam * float(f(a)) + (1 - w.lam) * float(f(b))
    assert nonconvex.by_group["y"].verdict == "no violation found"


def test_curvature_eigs_and_classify(quad, well):
    minimum = torch.linalg.solve(A, B)
    res = eigs(quad, minimum, k=3, which="largest")
    torch.testing.assert_close(res.values.sort().values, torch.linalg.eigvalsh(A), rtol=1e-8, atol=1e-10)
    assert classify(quad, minimum).kind == "minimum"
    saddle = torch.tensor([0.0, 1.0, 0.0], dtype=F64)  # x₁ at the top of its well, x₂ at a bottom
    assert dense_eigenvalues(lambda t: double_well(flat(t, well)), saddle)[0] < 0
    assert classify(well, saddle).kind == "saddle"
    assert classify(well, torch.tensor([1.0, -1.0, 0.0], dtype=F64)).kind == "minimum"
    assert classify(well, torch.tensor([0.5, -1.0, 0.0], dtype=F64)).kind == "not a critical point"


def test_landscape_line_and_plane(well):
    f = lambda t: double_well(flat(t, well))
    a = torch.tensor([1.0, -1.0, 0.0], dtype=F64)
    b = torch.tensor([-1.0, -1.0, 0.5], dtype=F64)
    sl = line(well, a, b, steps=11)
    expect = torch.stack([f((1 - t) * a + t * b) for t in sl.t.to(F64)])
    torch.testing.assert_close(sl.losses.to(F64), expect, rtol=1e-12, atol=1e-12)
    assert float(sl.losses[5]) > float(sl.losses[0])  # the chord between two wells crosses the ridge
    d = torch.tensor([1.0, 0.0, 0.0], dtype=F64)
    e = torch.tensor([0.0, 0.0, 1.0], dtype=F64)
    pl = plane(well, a, d, e, steps=5, span=1.0)
    i, j = 1, 3
    point = a + pl.alphas[i].to(F64) * d + pl.betas[j].to(F64) * e
    assert float(pl.losses[i, j]) == pytest.approx(float(f(point)), rel=1e-12, abs=1e-12)


def test_train_and_train_ensemble_reach_the_closed_form_minimum(quad):
    minimum = torch.linalg.solve(A, B)
    run = train(quad, lr=0.2, steps=400, seed=0)
    torch.testing.assert_close(run.theta, minimum, rtol=0, atol=1e-8)
    runs = train_ensemble(quad, seeds=range(4), lr=0.2, steps=400)
    torch.testing.assert_close(runs.theta, minimum.expand(4, 3), rtol=0, atol=1e-8)
    assert float(runs.final_losses.max()) == pytest.approx(float(quadratic({"x": minimum})), abs=1e-12)


def test_restrict_and_float32(well):
    only_y = well.restrict(["y"], at=torch.tensor([1.0, 1.0, 2.0], dtype=F64))
    assert float(only_y.loss(torch.tensor([3.0], dtype=F64))) == pytest.approx(9.0)
    f32 = well.to(torch.float32)
    assert f32.loss(torch.ones(3)).dtype == torch.float32 and float(f32.loss(torch.ones(3))) == pytest.approx(1.0)


def _vector(params):
    return params["x"] * 2


def _nan(params):
    return params["x"].sum() * math.nan


def _fails(params):
    return params["missing"].sum()


def _edits_in_place(p):
    p["x"][0] = 0.0
    return (p["x"] ** 2).sum()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"fn": _vector, "shapes": {"x": (3,)}}, r"expected fn to return a scalar \(0-dim\) tensor, got shape \(3,\)"),
    ({"fn": _nan, "shapes": {"x": (3,)}}, r"expected a finite objective at init\(seed=0\), got nan"),
    ({"fn": _fails, "shapes": {"x": (3,)}}, r"expected fn to evaluate at params of shapes \{x: \(3,\)\}"),
    ({"fn": lambda p: 1.0, "shapes": {"x": (3,)}}, "expected fn to return a 0-dim torch tensor, got float"),
    ({"fn": quadratic, "shapes": {"x": (0,)}}, "expected shapes as group name → tuple of positive ints"),
    ({"fn": quadratic, "shapes": {}}, "expected shapes as a non-empty dict"),
    ({"fn": quadratic, "shapes": {"x": (3,)}, "init": -1.0}, "init"),
    ({"fn": quadratic, "shapes": {"x": (3,)}, "init": lambda g: {"x": torch.zeros(4)}}, r"expected group 'x' of shape \(3,\)"),
    ({"fn": "quadratic", "shapes": {"x": (3,)}}, "expected fn as a callable"),
    ({"fn": quadratic, "shapes": {"x": (3,)}, "dtype": torch.int64}, "float32 or float64"),
    ({"fn": _edits_in_place, "shapes": {"x": (3,)}}, r"expected fn to leave its params unchanged, got an in-place edit"),
    ({"fn": lambda p: torch.tensor((p["x"] ** 2).sum().item(), dtype=torch.float64), "shapes": {"x": (3,)}},
     r"expected fn to be differentiable in its params, got a value with no gradient path"),
    ({"fn": lambda p: (p["x"] ** 2).sum().detach(), "shapes": {"x": (3,)}}, r"no gradient path to them \(\.item\(\)"),
    ({"fn": lambda p: ((p["x"].float() + 100.0) ** 2).sum(), "shapes": {"x": (4,)}},
     r"expected fn to return a torch.float64 value like its params, got torch.float32"),
    ({"fn": lambda p: (p["x"].clamp_(-1, 1) ** 2).sum(), "shapes": {"x": (3,)}}, "expected fn to leave its params unchanged"),
    ({"fn": quadratic, "shapes": {"x": (10**6, 10**6)}}, r"expected at most 2,147,483,648 parameters in shapes, got 1,000,000,000,000"),
    ({"fn": quadratic, "shapes": {"x": (3,)}, "init": lambda g: {"x": [1.0, 2.0, 3.0]}},
     "expected init\\(generator\\) to return real tensors, got list for group 'x'"),
    ({"fn": quadratic, "shapes": {"x": (3,)}, "init": lambda g: {"x": torch.ones(3, dtype=torch.complex128)}},
     "got a torch.complex128 tensor for group 'x'"),
])
def test_bad_objectives_give_one_line_errors(kwargs, match):
    fn = kwargs.pop("fn")
    with pytest.raises(LosslabError, match=match) as info:
        Problem.from_objective(fn, **kwargs)
    assert "\n" not in str(info.value)


def test_the_ggn_of_an_objective_is_zero_and_its_hessian_operator_the_dense_hessian(well):
    from losslab.curvature import GGNOperator, HessianOperator

    theta = torch.tensor([0.3, -1.2, 0.4], dtype=F64)
    eye = torch.eye(3, dtype=F64)
    ggn = torch.stack([GGNOperator(well, theta).matvec(e) for e in eye])
    assert torch.equal(ggn, torch.zeros(3, 3, dtype=F64))  # the identity loss has no curvature in its output
    hess = torch.stack([HessianOperator(well, theta).matvec(e) for e in eye])
    torch.testing.assert_close(hess, dense_hessian(lambda t: double_well(flat(t, well)), theta), rtol=1e-12, atol=1e-12)


def test_a_float32_rounding_objective_gets_no_false_certificate_in_float32():
    """The float32 problem of the same function: its rounding is judged in float32, and it is not called non-convex."""
    from losslab import Verdict, check_convexity

    pr = Problem.from_objective(lambda p: ((p["x"] + 100.0) ** 2).sum(), shapes={"x": (4,)}, dtype=torch.float32)
    assert check_convexity(pr, seed=0).verdict != Verdict.NON_CONVEX


def test_the_callers_theta_is_never_edited_by_the_objective():
    pr = Problem.from_objective(quadratic, shapes={"x": (3,)})
    theta = torch.tensor([5.0, -5.0, 0.5], dtype=torch.float64)
    before = theta.clone()
    pr.loss(theta), pr.grad(theta)
    assert torch.equal(theta, before)
