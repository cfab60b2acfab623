"""Curvature operators against dense float64 references built independently with torch.func.

H is checked against ``torch.func.hessian`` of the loss; the GGN against Jᵀ H_ℓ J + 2·l2·I from
``torch.func.jacrev`` of the outputs and the Hessian of the output loss written with
``torch.nn.functional``; H − GGN against both H_ref − G_ref and Σ_i r_i ∇²z_i from
``torch.func.hessian`` of the outputs — every product form (matvec, matmat, @, to_dense,
to_scipy) on every tiny case, with l2 > 0, restricted problems and float32.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from losslab import LosslabError, Problem
from losslab.curvature import (
    DifferenceOperator,
    GGNOperator,
    HessianOperator,
    MatrixOperator,
    NonlinearityOperator,
    loss_output,
    nonlinearity_curvature,
)
from losslab.models import MLP, Linearized, Polynomial, RandomFeatures, TwoLayer

from _helpers import gen
from references import dense_ggn, dense_hessian, dense_nonlinearity, output_loss_of, outputs_of

DT = torch.float64
L2 = 0.05


def dense_references(problem: Problem, theta: torch.Tensor) -> dict[str, torch.Tensor]:
    """Dense H, GGN + 2·l2·I, H − GGN (as Σ r_i ∇²z_i) in float64, from tests/references.py."""
    z, ell = outputs_of(problem), output_loss_of(problem)
    return {
        "H": dense_hessian(problem.loss, theta),
        "G": dense_ggn(z, ell, theta) + 2 * problem.l2 * torch.eye(len(theta), dtype=DT),
        "N": dense_nonlinearity(z, ell, theta),
    }


def operators(problem: Problem, theta: torch.Tensor) -> dict[str, object]:
    return {"H": HessianOperator(problem, theta), "G": GGNOperator(problem, theta), "N": NonlinearityOperator(problem, theta)}


def assert_operator_equals(op, A: torch.Tensor, scale: float | None = None, seed: int = 0) -> None:
    """Every way to apply ``op`` equals the dense A (float64, to 1e-11 relative to ``scale``, default max |A|)."""
    p = A.shape[0]
    scale = float(A.abs().max()) if scale is None else scale
    tol = dict(rtol=0, atol=1e-11 * scale)
    v = torch.randn(p, generator=gen(seed), dtype=DT)
    V = torch.randn(p, 3, generator=gen(seed + 1), dtype=DT)
    torch.testing.assert_close(op.matvec(v), A @ v, **tol)
    torch.testing.assert_close(op.matmat(V), A @ V, **tol)
    torch.testing.assert_close(op @ v, A @ v, **tol)
    torch.testing.assert_close(op @ V, A @ V, **tol)
    torch.testing.assert_close(op.to_dense(), A, **tol)
    sp = op.to_scipy()
    assert sp.shape == (p, p) and sp.dtype == np.float64
    np.testing.assert_allclose(sp @ v.numpy(), (A @ v).numpy(), rtol=0, atol=1e-11 * scale)
    np.testing.assert_allclose(sp @ V.numpy(), (A @ V).numpy(), rtol=0, atol=1e-11 * scale)
    np.testing.assert_allclose(sp.rmatvec(v.numpy()), (A @ v).numpy(), rtol=0, atol=1e-11 * scale)


def test_loss_output_is_what_the_problem_computes_its_loss_on(case):
    problem = case.problem(l2=L2)
    theta = case.theta(problem)
    params = problem.unflatten(theta)
    penalty = L2 * sum((p**2).sum() for p in params.values())
    torch.testing.assert_close(problem.loss_fn(loss_output(problem, theta), problem.y) + penalty, problem.loss(theta), rtol=1e-13, atol=0)


def test_operators_equal_dense_references(case):
    problem = case.problem(l2=L2)
    theta = case.theta(problem, seed=1)
    refs = dense_references(problem, theta)
    torch.testing.assert_close(refs["H"] - refs["G"], refs["N"], rtol=0, atol=1e-11 * float(refs["H"].abs().max()))
    scale = float(refs["H"].abs().max())
    for name, op in operators(problem, theta).items():
        assert op.shape == (len(theta), len(theta)) and op.dtype == DT
        assert_operator_equals(op, refs[name], scale)
    diff = DifferenceOperator(HessianOperator(problem, theta), GGNOperator(problem, theta))
    assert_operator_equals(diff, refs["H"] - refs["G"], scale)


EXTRA = {
    "two-layer-tanh-bce": lambda: (TwoLayer(2, 3, "tanh"), "bce"),
    "mlp-sigmoid-link-bce": lambda: (MLP([2, 3, 1], "tanh", out_activation="sigmoid"), "bce"),
    "mlp-sigmoid-link-mse": lambda: (MLP([2, 3, 1], "tanh", out_activation="sigmoid"), "mse"),
    "two-output-mse": lambda: (MLP([2, 3, 2], "tanh"), "mse"),
}


@pytest.mark.parametrize("name", list(EXTRA))
def test_operators_on_nonlinear_models_with_other_losses(name):
    model, loss = EXTRA[name]()
    X = 2 * torch.rand(11, 2, generator=gen(0), dtype=DT) - 1
    y = torch.rand(11, generator=gen(1), dtype=DT) if loss == "bce" else torch.randn(11, generator=gen(2), dtype=DT)
    if name == "two-output-mse":
        y = torch.randn(11, 2, generator=gen(3), dtype=DT)
    problem = Problem(model, X, y, loss, l2=L2)
    theta = problem.init(seed=4) + 0.2 * torch.randn(problem.n_params, generator=gen(5), dtype=DT)
    refs = dense_references(problem, theta)
    assert float(refs["N"].abs().max()) > 1e-3 * float(refs["H"].abs().max())  # a nonlinear model: H ≠ GGN
    for key, op in operators(problem, theta).items():
        assert_operator_equals(op, refs[key], float(refs["H"].abs().max()))


@pytest.mark.parametrize("groups", [["v"], ["W", "b"], ["b", "c"]])
def test_restricted_operators_are_the_blocks_of_the_full_ones(groups):
    model = TwoLayer(d_in=2, width=4, activation="tanh", out_bias=True)
    X = 2 * torch.rand(10, 2, generator=gen(0), dtype=DT) - 1
    full = Problem(model, X, torch.randn(10, generator=gen(1), dtype=DT), l2=L2)
    theta = full.init(seed=2) + 0.3 * torch.randn(full.n_params, generator=gen(3), dtype=DT)
    sub = full.restrict(groups, at=theta)
    idx = torch.cat([torch.arange(full.n_params)[s] for g, s in full.slices().items() if g in groups])
    theta_sub = theta[idx]
    refs = dense_references(full, theta)
    for key, op in operators(sub, theta_sub).items():
        assert op.shape == (len(idx), len(idx))
        assert_operator_equals(op, refs[key][idx][:, idx], float(refs["H"].abs().max()))


FIXED_FEATURES = {
    "polynomial": lambda: Polynomial(2, 3),
    "random-features": lambda: RandomFeatures(2, 6, "tanh", seed=1),
    "linearized-two-layer": lambda: Linearized(TwoLayer(2, 4, "tanh"), TwoLayer(2, 4, "tanh").init(seed=5)),
}


@pytest.mark.parametrize("name", list(FIXED_FEATURES))
def test_nonlinearity_curvature_vanishes_for_fixed_feature_models(name):
    model = FIXED_FEATURES[name]()
    X = 2 * torch.rand(15, 2, generator=gen(0), dtype=DT) - 1
    problem = Problem(model, X, torch.randn(15, generator=gen(1), dtype=DT), l2=L2)
    theta = problem.init(seed=2) + 0.5 * torch.randn(problem.n_params, generator=gen(3), dtype=DT)
    H = HessianOperator(problem, theta).to_dense()
    scale = float(H.abs().max())
    assert scale > 0
    direct = nonlinearity_curvature(problem, theta).to_dense()
    assert float(direct.abs().max()) <= 1e-13 * scale
    diff = DifferenceOperator(HessianOperator(problem, theta), GGNOperator(problem, theta)).to_dense()
    assert float(diff.abs().max()) <= 1e-12 * scale  # H − GGN cancels to rounding


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_nonlinearity_curvature_is_nonzero_when_features_are_learned(activation):
    model = TwoLayer(2, 5, activation)
    X = 2 * torch.rand(12, 2, generator=gen(0), dtype=DT) - 1
    problem = Problem(model, X, torch.randn(12, generator=gen(1), dtype=DT))
    theta = problem.init(seed=2)
    N = nonlinearity_curvature(problem, theta).to_dense()
    H = dense_hessian(problem.loss, theta)
    s = problem.slices()
    Wb = torch.cat([torch.arange(problem.n_params)[s["W"]], torch.arange(problem.n_params)[s["b"]]])
    v = torch.arange(problem.n_params)[s["v"]]
    assert float(N[Wb][:, v].abs().max()) > 1e-2 * float(H.abs().max())  # the v–(W, b) cross terms
    assert float(N[v][:, v].abs().max()) == 0.0  # f is linear in v
    inner = float(N[Wb][:, Wb].abs().max())
    assert inner == 0.0 if activation == "relu" else inner > 1e-3 * float(H.abs().max())  # relu'' = 0 a.e.
    # per group: in v alone the model has fixed features
    sub = problem.restrict(["v"], at=theta)
    assert float(nonlinearity_curvature(sub, theta[v]).to_dense().abs().max()) == 0.0


def test_float32_operators_match_float64_references():
    model = TwoLayer(2, 4, "tanh")
    X = 2 * torch.rand(10, 2, generator=gen(0), dtype=DT) - 1
    p64 = Problem(model, X, torch.randn(10, generator=gen(1), dtype=DT), l2=L2)
    theta = p64.init(seed=3)
    refs = dense_references(p64, theta)
    p32 = p64.to(torch.float32)
    for key, op in operators(p32, theta.float()).items():
        assert op.dtype == torch.float32
        dense = op.to_dense()
        assert dense.dtype == torch.float32
        torch.testing.assert_close(dense.double(), refs[key], rtol=0, atol=1e-5 * float(refs["H"].abs().max()))
        assert op.to_scipy().matvec(np.ones(len(theta))).dtype == np.float64


def test_batched_and_one_at_a_time_products_agree_and_are_counted(make_case):
    case = make_case("mlp-cross-entropy")
    problem = case.problem(l2=L2)
    theta = case.theta(problem)
    V = torch.randn(problem.n_params, 5, generator=gen(0), dtype=DT)
    for op in operators(problem, theta).values():
        batched = op.matmat(V)
        again = op.matmat(V)
        assert torch.equal(batched, again)  # repeatable
        op._batched = False
        looped = op.matmat(V)
        torch.testing.assert_close(looped, batched, rtol=0, atol=1e-13 * float(batched.abs().max()))
        single = torch.stack([op.matvec(V[:, i]) for i in range(5)], 1)
        torch.testing.assert_close(single, batched, rtol=0, atol=1e-13 * float(batched.abs().max()))
        assert op.products == 20


def test_matrix_operator_and_difference_operator():
    A = torch.randn(6, 6, generator=gen(0), dtype=DT)
    A = A + A.T
    B = torch.diag(torch.arange(6, dtype=DT))
    diff = MatrixOperator(A) - MatrixOperator(B)
    assert isinstance(diff, DifferenceOperator)
    torch.testing.assert_close(diff.to_dense(), A - B)


def _problem():
    X = torch.rand(8, 2, generator=gen(0), dtype=DT)
    return Problem(TwoLayer(2, 3, "tanh"), X, torch.randn(8, generator=gen(1), dtype=DT))


BAD = [
    (lambda: HessianOperator(_problem(), torch.zeros(5, dtype=DT)), r"expected theta of shape \(12,\), got shape \(5,\)"),
    (lambda: GGNOperator(_problem(), torch.zeros(12, 1, dtype=DT)), r"expected theta of shape \(12,\), got shape \(12, 1\)"),
    (lambda: NonlinearityOperator("not a problem", torch.zeros(12)), "expected a losslab.Problem, got str"),
    (lambda: HessianOperator(_problem(), torch.full((12,), float("nan"))), "expected theta to be finite"),
    (
        lambda: HessianOperator(_problem(), torch.zeros(12, dtype=DT)).matvec(torch.zeros(11)),
        r"expected v of shape \(12,\), got shape \(11,\)",
    ),
    (lambda: HessianOperator(_problem(), torch.zeros(12, dtype=DT)).matvec(torch.zeros(0)), "expected v to hold at least one value"),
    (
        lambda: HessianOperator(_problem(), torch.zeros(12, dtype=DT)).matmat(torch.zeros(12)),
        r"expected V of shape \(12, \*\), got shape \(12,\)",
    ),
    (
        lambda: GGNOperator(_problem(), torch.zeros(12, dtype=DT)).matmat(torch.zeros(3, 12)),
        r"expected V of shape \(12, \*\), got shape \(3, 12\)",
    ),
    (lambda: GGNOperator(_problem(), torch.zeros(12, dtype=DT)) @ torch.zeros(12, 0), "expected V to hold at least one value"),
    (lambda: MatrixOperator(torch.zeros(3, 4)), r"expected A of shape \(3, 3\), got shape \(3, 4\)"),
    (lambda: MatrixOperator(torch.tensor([[1.0, 2.0], [0.0, 1.0]])), "expected a symmetric matrix"),
    (
        lambda: MatrixOperator(torch.eye(3)) - MatrixOperator(torch.eye(4)),
        r"expected operators of the same shape, got \(3, 3\) and \(4, 4\)",
    ),
]


@pytest.mark.parametrize(("make", "match"), BAD)
def test_bad_input_raises_a_clear_error(make, match):
    with pytest.raises(LosslabError, match=match):
        make()
