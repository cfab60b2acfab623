"""The tolerance table, the rounding floor c·ε·‖H‖ and the error bars that may not go below it.

c (losslab.tolerances.ROUNDING_C) is checked here: float32 Hessian-vector products against the
dense float64 Hessian from torch.func.hessian at the same (float32-representable) point, on
five problems; every product error must be within c·ε·‖H‖₂·‖v‖. Then every reported bound is
checked against the exact spectrum: no eigenvalue bound below the floor, and the float32 values
within their bounds of the float64 truth.
"""

from __future__ import annotations

import pytest
import torch

from losslab import LosslabError, Problem, data
from losslab.curvature import HessianOperator, MatrixOperator, classify, eigs, hutchinson, hutchpp, xtrace
from losslab.models import MLP, Linear, Polynomial, RandomFeatures, TwoLayer
from losslab.tolerances import ROUNDING_C, TOLERANCES, rounding_floor, smallest_usable, tolerances

from references import dense_eigenvalues, dense_hessian, mse_of

F32, F64 = torch.float32, torch.float64


def problems():
    x, y = data.cubic(80, seed=0)
    g = torch.Generator().manual_seed(1)
    X = torch.randn(120, 5, generator=g, dtype=F64)
    yy = X.sin().sum(1)
    return {
        "two-layer tanh": Problem(TwoLayer(1, 8, "tanh"), x, y),
        "mlp 5-16-16-1": Problem(MLP([5, 16, 16, 1], "tanh"), X, yy),
        "polynomial degree 8": Problem(Polynomial(1, 8), x, y),
        "random features": Problem(RandomFeatures(1, 40, "tanh"), x, y),
        "linear, inputs ~1e4": Problem(Linear(5), X * 1e4, yy),
    }


def test_the_table_has_both_dtypes_and_refuses_others():
    assert set(TOLERANCES) == {F32, F64}
    for dtype, row in TOLERANCES.items():
        assert row.eps == torch.finfo(dtype).eps and row.rounding == ROUNDING_C * row.eps
        # every default sits above the rounding floor it would otherwise hide behind
        assert min(row.zero_curvature, row.eig_gap, row.eig_residual) >= row.rounding
    assert rounding_floor(F32, -2.0) == 2 * ROUNDING_C * torch.finfo(F32).eps
    assert [smallest_usable(x) for x in (1.907e-6, 3.55e-15, 2.0e-6, 0.0)] == pytest.approx([2.0e-6, 3.6e-15, 2.0e-6, 0.0])
    with pytest.raises(LosslabError, match=r"expected a float32 or float64 dtype, got torch\.float16"):
        tolerances(torch.float16)


@pytest.mark.parametrize("name", list(problems()))
def test_float32_products_are_within_c_eps_norm_of_exact(name):
    problem = problems()[name]
    theta = problem.init(0).to(F32).to(F64)  # representable in float32: only the products' rounding differs
    H = dense_hessian(mse_of(problem.to(F64)), theta)
    norm = float(torch.linalg.matrix_norm(H, 2))
    op = HessianOperator(problem.to(F32), theta.to(F32))
    g = torch.Generator().manual_seed(0)
    worst = 0.0
    for _ in range(8):
        v = torch.randn(len(theta), generator=g, dtype=F64)
        v = (v / v.norm()).to(F32).to(F64)
        err = float((op.matvec(v.to(F32)).to(F64) - H @ v).norm())
        worst = max(worst, err / (torch.finfo(F32).eps * norm * float(v.norm())))
    assert worst <= ROUNDING_C, f"{name}: product error {worst:.2f}·ε·‖H‖, above c = {ROUNDING_C}"


def test_float32_eigenvalue_bounds_hold_against_the_float64_truth_and_never_go_below_the_floor():
    # The reported case: float32 eigs gave gap bounds of ~1e-13 for eigenvalues off by ~3e-7.
    problem = problems()["two-layer tanh"]
    theta = problem.init(0).to(F32).to(F64)
    exact = dense_eigenvalues(mse_of(problem.to(F64)), theta)
    norm = float(exact.abs().max())
    floor = ROUNDING_C * torch.finfo(F32).eps * norm
    for which, want in (("largest", exact[-3:]), ("smallest", exact[:3])):
        res = eigs(HessianOperator(problem.to(F32), theta.to(F32)), k=3, which=which, max_basis=12, seed=0)
        assert res.method == "lanczos" and res.all_converged
        assert bool((res.gap_bounds >= 0.99 * floor).all()) and bool((res.bounds >= res.gap_bounds).all())
        assert bool(((res.values - want).abs() <= res.gap_bounds).all()), (res.values - want, res.gap_bounds)


@pytest.mark.parametrize(
    ("dtype", "tol", "criterion"),
    [(F32, 1e-12, "gap"), (F32, 1e-6, "residual"), (F64, 1e-16, "gap"), (F64, 1e-15, "residual")],
)
def test_a_tol_below_the_rounding_floor_is_refused_naming_the_smallest_usable_value(dtype, tol, criterion):
    op = MatrixOperator(torch.diag(torch.arange(1.0, 41.0, dtype=dtype)))
    floor = ROUNDING_C * torch.finfo(dtype).eps
    with pytest.raises(LosslabError, match=r"expected tol >= (\S+) ") as err:
        eigs(op, k=2, tol=tol, criterion=criterion)
    named = float(str(err.value).split()[3])
    assert floor <= named <= 1.1 * floor  # the smallest usable value, rounded up
    assert ("problem.to(torch.float64)" in str(err.value)) == (dtype == F32)  # float32 is told float64 would resolve it
    assert eigs(op, k=2, tol=named, criterion=criterion, max_basis=10).all_converged
    with pytest.raises(LosslabError, match="expected tol >= "):
        eigs(op, k=2, tol=0.99 * floor, criterion=criterion)


def test_classify_refuses_a_zero_band_below_rounding():
    x, y = data.cubic(30, seed=0)
    problem = Problem(Polynomial(1, 2), x, y).to(F32)
    with pytest.raises(LosslabError, match="expected eig_tol >= 2e-06"):
        classify(problem, problem.init(0), eig_tol=1e-9)


@pytest.mark.parametrize("estimator", [hutchinson, hutchpp, xtrace])
def test_trace_error_bars_never_fall_below_the_float32_rounding_floor(estimator):
    A = torch.diag(torch.linspace(1.0, 50.0, 40, dtype=F64))  # exact for Hutchinson (diagonal), for the others (full sketch)
    est = estimator(MatrixOperator(A.to(F32)), samples=120)
    assert est.estimate == pytest.approx(float(A.trace()), rel=1e-5)
    # the error bar covers the float32 products' rounding: at least c·ε·max‖Az‖/‖z‖·p, at most c·ε·‖A‖₂·p
    upper = ROUNDING_C * torch.finfo(F32).eps * 50.0 * 40
    assert upper / 50 < est.stderr <= upper
    assert abs(est.estimate - float(A.trace())) <= est.stderr  # exact up to rounding, and the bar says so
