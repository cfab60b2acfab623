"""Mutants the triage of issue #10 §8 (docs/mutation-triage/) called harmless that change what a user sees.

References are independent: an SVD filter-factor ridge solution, the documented rules written by hand, a dense
torch.func.hessian of a hand-written float64 loss.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from losslab import LosslabError, Problem
from losslab.convexity import check_convexity
from losslab.fit import least_squares_result
from losslab.landscape import LineSlice, PlaneSlice, discrete_convexity
from losslab.models import Polynomial
from losslab.models.base import Model

from _helpers import SquaredWeight
from references import dense_hessian

F64, F32 = torch.float64, torch.float32


# --- fit/least_squares.py: x_least_squares_result__mutmut_62 (`p >= N` for the dual form) -------------------------------


def _ridge_reference(phi: torch.Tensor, r: torch.Tensor, lam: float) -> torch.Tensor:
    """argmin (1/N)‖Φθ − r‖² + λ‖θ‖² by the SVD: θ = V diag(s/(s² + Nλ)) Uᵀr (no squared condition number)."""
    N = phi.shape[0]
    U, s, Vh = torch.linalg.svd(phi, full_matrices=False)
    return Vh.T @ (s / (s**2 + N * lam) * (U.T @ r))


@pytest.mark.parametrize(("degree", "ridge"), [(12, 1e-16), (15, 1e-18)])
def test_a_square_ill_conditioned_ridge_problem_is_solved_without_squaring_the_condition_number(degree, ridge):
    # p = N: the augmented solve (the module docstring: "without forming the normal equations"); the kernel form
    # Φ(ΦᵀΦ…)/ΦΦᵀ + NλI would square cond(Φ) ≈ 1e10…1e13: θ off by 1e-3, or a Cholesky failure
    x = torch.linspace(0, 1, degree + 1, dtype=F64)
    y = torch.sin(3 * x)
    res = least_squares_result(Problem(Polynomial(1, degree), x, y), ridge=ridge)
    assert res.features.shape == (degree + 1, degree + 1)
    ref = _ridge_reference(res.features, y - res.offset, ridge)
    assert float((res.theta - ref).norm() / ref.norm()) < 1e-6


# --- landscape/discrete.py ----------------------------------------------------------------------------------------------


def test_losses_of_size_exactly_1e300_are_accepted_and_larger_ones_refused():
    # x_discrete_convexity__mutmut_39 (`scale >= LARGEST_LOSS`): the code refuses only values larger than 1e300
    t = torch.linspace(0, 1, 3, dtype=F64)
    a, b = torch.zeros(1, dtype=F64), torch.ones(1, dtype=F64)
    ok = discrete_convexity(LineSlice(t, torch.tensor([1e300, 0.0, 1e300], dtype=F64), a, b))
    assert ok.checked == 1 and ok.violations == 0
    with pytest.raises(LosslabError, match="rescale the loss"):
        above = torch.nextafter(torch.tensor(1e300, dtype=F64), torch.tensor(2e300, dtype=F64)).item()
        discrete_convexity(LineSlice(t, torch.tensor([above, 0.0, 0.0], dtype=F64), a, b))


def test_a_difference_exactly_at_minus_tol_is_not_flagged_so_not_confirmed():
    # x_discrete_convexity__mutmut_90 (`D <= -tol` as the mask to confirm): a violation is D < −tol (module docstring),
    # and "confirmation only removes flags, it never adds one". Stored float32 values [0, 1, 0, 1.5] on t = 0, ½, 1, 1.5
    # (the first three are the problem's, w = −1, 0, 1; the last only sets M = 1.5); rtol = 2²¹ makes rtol·ε₃₂ = ¼, so at
    # t = ½: D = −8 and tol = 2·(δ₀/½ + δ₁·4 + δ₂/½) with δ = ¼·(|L| + 1.5) = (0.375, 0.625, 0.375): 8, exactly.
    prob = Problem(SquaredWeight(), torch.ones(1, 1, dtype=F64), torch.ones(1, dtype=F64))
    s = LineSlice(torch.tensor([0.0, 0.5, 1.0, 1.5]), torch.tensor([0.0, 1.0, 0.0, 1.5], dtype=F32),
                  torch.tensor([-1.0], dtype=F64), torch.tensor([1.0], dtype=F64))
    rtol = 2.0**21
    alone = discrete_convexity(s, rtol=rtol)
    assert float(alone.second_differences[0][1]) == -8.0 and float(alone.tolerances[0][1]) == 8.0
    assert alone.violations == 0
    confirmed = discrete_convexity(s, rtol=rtol, problem=prob)  # float64: D = −8, far below tol ≈ 2²¹·2⁻⁵²·…
    assert confirmed.confirmed_in_float64 and confirmed.violations == 0


def test_no_meshgrid_warning_from_locations_or_a_plane():
    # x_discrete_convexity__mutmut_137, 139; xǁDiscreteConvexityǁlocations__mutmut_2, 4 (meshgrid without indexing="ij"):
    # torch warns "in an upcoming release, it will be required to pass the indexing argument"
    a, b = torch.linspace(-1, 1, 4, dtype=F64), torch.linspace(-1, 1, 3, dtype=F64)
    L = -(a[:, None] ** 2) - b[None, :] ** 2
    L[0, 0] = float("inf")
    s = PlaneSlice(a, b, L, torch.zeros(2, dtype=F64), torch.tensor([1.0, 0.0], dtype=F64), torch.tensor([0.0, 1.0], dtype=F64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = discrete_convexity(s)
        assert result.locations().shape == (result.violations, 2) and result.violations > 0


# --- convexity/analyze.py: x__search__mutmut_238, 242, 244 (stage-4 chords not cast to the problem's dtype) -------------

C = 5e-7


class _SmallTanh(Model):
    """C·tanh(x·w): L(w) = mean((1 − C·tanh(xw))²), non-convex by a relative gap of at most about 4C = 2e-6."""

    d_in, shapes, affine_sets = 2, {"w": (2,)}, ()

    def init(self, *, seed: int = 0, dtype: torch.dtype = F32):
        return {"w": torch.zeros(2, dtype=dtype)}

    def logit(self, params, X):
        return C * torch.tanh(X @ params["w"])


def test_a_float32_problems_negative_curvature_chords_are_screened_at_float32s_chord_screen():
    # check_convexity's docstring: a chord is re-checked in float64 when its gap exceeds chord_screen (64·ε in
    # float32). Every chord of this loss has a relative gap below 4C < 64·ε₃₂, so nothing is re-checked and the
    # verdict is "no violation found", though λ_min < 0 at the analysis point (the dense float64 Hessian).
    x = torch.linspace(0.5, 1.5, 12, dtype=F64)
    X = torch.stack([x, x.flip(0)], 1)
    at = torch.tensor([-0.8, -0.8], dtype=F64)
    hess = dense_hessian(lambda w: ((1 - C * torch.tanh(X @ w)) ** 2).mean(), at)
    assert float(torch.linalg.eigvalsh(hess)[0]) < 0 and 4 * C < 64 * torch.finfo(F32).eps
    prob = Problem(_SmallTanh(), X.to(F32), torch.ones(12, dtype=F32), dtype=F32)
    report = check_convexity(prob, at=at.to(F32), budget=300, train_steps=0)
    assert report.search.by_strategy["negative curvature"] == 9
    assert report.verdict == "no violation found" and report.witness is None
