"""The fields of an :class:`~losslab.curvature.EigenResult` against their documented definitions.

``bounds`` are ‖A y − θ y‖ of each returned pair (recomputed here with the matrix), floored at
c·ε·‖A‖; ``gap_bounds`` are the estimates only below the convergence test's residual cap (√tol·‖A‖
for "gap", tol·‖A‖ for "residual"), else the residuals; ``converged`` is the test of the criterion
used; ``which``, ``criterion`` and ``method`` say how the result was computed; values and vectors are
float64 whatever the operator's dtype. Checked on the dense path (p ≤ max_basis) and on Lanczos.
"""

from __future__ import annotations

import importlib
import math

import pytest
import torch

from losslab.curvature import CurvatureOperator, MatrixOperator, eigs

from _helpers import gen, with_spectrum

DT = torch.float64
EPS64 = torch.finfo(DT).eps
ROUNDING_C = 16  # no bound below c·ε·‖A‖ (losslab.tolerances)
make_result = importlib.import_module("losslab.curvature.ritz")._result


class AsEvaluated(CurvatureOperator):
    """A matrix whose products carry an error that is not symmetric, as a Hessian's double backward does in rounding
    (magnified here so that the residuals stand far above the rounding floor)."""

    def __init__(self, A: torch.Tensor):
        super().__init__(A.shape[0], A.dtype)
        self.A = A

    def _apply_rows(self, V: torch.Tensor) -> torch.Tensor:
        return V @ self.A.T


@pytest.mark.parametrize("which", ["largest", "smallest", "both"])
@pytest.mark.parametrize("criterion", ["gap", "residual"])
@pytest.mark.parametrize("p", [8, 60], ids=["dense", "lanczos"])
def test_the_result_says_which_pairs_and_which_criterion(p, criterion, which):
    op = MatrixOperator(with_spectrum([float(i) for i in range(1, p + 1)], seed=p))
    res = eigs(op, k=3, which=which, criterion=criterion, seed=0)
    assert (res.method, res.which, res.criterion) == ("dense" if p <= 30 else "lanczos", which, criterion)


def test_a_float32_operator_gets_float64_eigenpairs_on_the_dense_path():
    # the dense path assembles the float32 matrix from exact products (A e_j) and diagonalises it in float64
    A = with_spectrum([1.0, 1.0 + 1e-4, 2.0, 3.0, 5.0, 8.0], seed=1).float()
    res = eigs(MatrixOperator(A), k=6, which="largest", criterion="residual")
    assert res.method == "dense"
    assert res.values.dtype == DT and res.vectors.dtype == DT
    exact = torch.linalg.eigvalsh(A.double())
    torch.testing.assert_close(res.values, exact, rtol=0, atol=1e-13)  # float32 eigh would be off by ~1e-7


def test_dense_bounds_are_the_residuals_of_the_returned_pairs():
    S = with_spectrum([-2.0, -1.0, 0.5, 1.0, 3.0, 4.0], seed=2)
    N = torch.randn(6, 6, generator=gen(3), dtype=DT)
    A = S + 1e-4 * N  # products as evaluated: not symmetric
    res = eigs(AsEvaluated(A), k=4, which="both", tol=1e-6)
    assert res.method == "dense"
    Y, theta = res.vectors, res.values
    residuals = torch.linalg.vector_norm(A @ Y - Y * theta, dim=0)
    torch.testing.assert_close(theta, ((A @ Y) * Y).sum(0), rtol=0, atol=1e-14)
    assert float(residuals.min()) > 1e-6  # far above the floor: the bounds are these numbers, not the floor
    torch.testing.assert_close(res.bounds, residuals, rtol=1e-10, atol=0)


@pytest.mark.parametrize("criterion", ["gap", "residual"])
def test_gap_bounds_and_converged_follow_their_definitions(criterion):
    # residuals across both caps (tol·s = 1e-8, √tol·s = 1e-4, s = 2) and the rounding floor 16·ε·s; estimated gap bounds r²/0.5
    tol, scale = 1e-8, 2.0
    residuals = torch.tensor([1e-3, 1e-6, 1e-9, 1e-13, 1e-17], dtype=DT)
    estimates = residuals**2 / 0.5
    values = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0], dtype=DT)  # descending: the result sorts them
    res = make_result(values, torch.eye(5, dtype=DT), residuals, estimates, tol, scale, 7, "both", "lanczos", criterion, DT)
    floor = ROUNDING_C * EPS64 * scale
    cap = (tol if criterion == "residual" else math.sqrt(tol)) * scale
    order = torch.arange(4, -1, -1)
    bounds = residuals[order].clamp_min(floor)
    gap_bounds = torch.where(residuals[order] <= cap, estimates[order], residuals[order]).clamp_min(floor)
    if criterion == "residual":
        converged = bounds <= tol * scale
    else:
        converged = (bounds <= math.sqrt(tol) * scale) & (gap_bounds <= tol * scale)
    assert res.values.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    torch.testing.assert_close(res.bounds, bounds, rtol=1e-15, atol=0)
    torch.testing.assert_close(res.gap_bounds, gap_bounds, rtol=1e-15, atol=0)
    assert res.converged.tolist() == converged.tolist()
    expected = {"residual": [True, True, True, False, False], "gap": [True, True, True, True, False]}[criterion]
    assert converged.tolist() == expected  # the residual 1e-6 passes √tol·s, not tol·s
    assert (res.which, res.criterion, res.matvecs, res.norm_estimate) == ("both", criterion, 7, scale)
