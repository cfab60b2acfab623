"""discrete_convexity: float64 arithmetic, non-finite points, refusals of bad slices, and the float64 confirmation.

References are brute force: divided second differences written out by hand in float64, and the documented
rounding rule δ_j = rtol·ε·(|L_j| + M) applied by hand to a loss with a closed form. The confirmation is checked
on stored slices (the values a slice holds) against a problem whose float64 losses along the line are known:
L(w) = (w² − Y)² (one example, x = 1, target Y), concave at w = 0 with D = 8(1 − 2Y) on the stencil w = −1, 0, 1.
"""

from __future__ import annotations

import pytest
import torch

from losslab import LosslabError, Problem
from losslab.landscape import DEFAULT_RTOL, LineSlice, PlaneSlice, discrete_convexity, line
from losslab.models import Polynomial

from _helpers import SquaredWeight

F64 = torch.float64
EPS = torch.finfo(F64).eps


def _square_problem(Y: float) -> Problem:
    return Problem(SquaredWeight(), torch.ones(1, 1, dtype=F64), torch.tensor([Y], dtype=F64))


def _stored_line(losses: list[float], a: float = -1.0, b: float = 1.0) -> LineSlice:
    """A slice as stored: grid t on [0, 1], the given values, the end points a, b (p = 1)."""
    t = torch.linspace(0, 1, len(losses), dtype=F64)
    return LineSlice(t, torch.tensor(losses, dtype=F64), torch.tensor([a], dtype=F64), torch.tensor([b], dtype=F64))


def _divided(L: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Brute force: 2/(h_l + h_r)·[(L_{i+1} − L_i)/h_r − (L_i − L_{i−1})/h_l] at each inner point, float64."""
    out = []
    for i in range(1, len(x) - 1):
        hl, hr = float(x[i] - x[i - 1]), float(x[i + 1] - x[i])
        out.append(2 / (hl + hr) * ((float(L[i + 1]) - float(L[i])) / hr - (float(L[i]) - float(L[i - 1])) / hl))
    return torch.tensor(out, dtype=F64)


def test_a_float32_slice_is_differenced_in_float64():
    x = torch.linspace(-1, 1, 11)
    prob = Problem(Polynomial(1, 3), x, x**3 - x, dtype=torch.float32)
    s = line(prob, [1.0, 1.0, 1.0, 1.0], [-2.0, 3.0, 0.5, 7.0], steps=9, extend=(0.7, 1.3))
    assert s.losses.dtype == s.t.dtype == torch.float32
    result = discrete_convexity(s)
    assert result.coordinates[0].dtype == result.second_differences[0].dtype == result.tolerances[0].dtype == F64
    torch.testing.assert_close(result.coordinates[0], s.t.double(), rtol=0, atol=0)
    expected = _divided(s.losses.double(), s.t.double())
    torch.testing.assert_close(result.second_differences[0][1:-1], expected, rtol=1e-13, atol=0)
    assert result.violations == 0 and result.clean


def test_a_zero_loss_slice_is_clean():
    result = discrete_convexity(_stored_line([0.0] * 6))
    assert result.violations == 0 and result.checked == 4 and result.clean
    assert result.most_negative == 0.0


def test_a_slice_with_no_finite_loss_counts_every_point_and_is_not_clean():
    result = discrete_convexity(_stored_line([float("inf"), float("nan"), float("inf"), float("-inf")]))
    assert result.nonfinite == 4 and result.violations == 0 and not result.clean
    torch.testing.assert_close(result.nonfinite_at, torch.linspace(0, 1, 4, dtype=F64)[:, None], rtol=0, atol=0)
    assert result.summary() == (
        "0 of 0 second differences negative beyond rounding; 4 points with a non-finite loss (first at t=0): not clean"
    )


def test_nonfinite_points_of_a_plane_are_located_row_by_row_and_summarised():
    alphas = torch.tensor([-1.0, 0.0, 1.0, 2.0], dtype=F64)
    betas = torch.tensor([-0.5, 0.25, 3.0], dtype=F64)
    L = alphas[:, None] ** 2 - betas[None, :] ** 2  # a saddle: convex along α (D = 2), concave along β
    L[0, 1], L[2, 2] = float("inf"), float("nan")
    s = PlaneSlice(alphas, betas, L, torch.zeros(1, dtype=F64), torch.ones(1, dtype=F64), torch.ones(1, dtype=F64))
    result = discrete_convexity(s)
    torch.testing.assert_close(result.nonfinite_at, torch.tensor([[-1.0, 0.25], [1.0, 3.0]], dtype=F64), rtol=0, atol=0)
    # 6 α-differences (D = 2), 3 of them touching the inf or the NaN; 4 β-differences (D = −2), those of the
    # rows α = −1 (the inf) and α = 1 (the NaN) undefined: 5 checked, the β ones at α = 0 and α = 2 violations.
    # A stencil through the inf is undefined too, not D = ±inf: it is neither checked nor the most negative.
    assert result.counts == (0, 2) and result.checked == 5
    assert result.most_negative == pytest.approx(-2.0, rel=1e-12) and result.most_negative_at in ((0.0, 0.25), (2.0, 0.25))
    assert int(torch.isnan(result.second_differences[1]).sum()) == 4 * 3 - 2
    assert result.summary() == (
        "2 of 5 second differences negative beyond rounding; 2 points with a non-finite loss (first at alpha=-1, beta=0.25): not clean"
    )
    torch.testing.assert_close(result.locations(), torch.tensor([[0.0, 0.25], [2.0, 0.25]], dtype=F64), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("t", "shown"),
    [
        ([0.0, 0.5, float("inf")], "[0.0, 0.5, inf]"),  # increasing, but not finite
        ([0.0, 1.0, 1.0, 2.0, 3.0, 4.0], "[0.0, 1.0, 1.0, 2.0, 3.0, 4.0]"),  # six coordinates: all shown
        ([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 5.0], "[0.0, 1.0, 2.0, 3.0, 4.0, 5.0] …"),  # seven: the first six and an ellipsis
    ],
)
def test_bad_coordinates_are_refused_and_quoted(t, shown):
    s = LineSlice(torch.tensor(t, dtype=F64), torch.ones(len(t), dtype=F64), torch.zeros(1, dtype=F64), torch.ones(1, dtype=F64))
    with pytest.raises(LosslabError) as info:
        discrete_convexity(s)
    assert str(info.value) == f"expected {len(t)} finite, strictly increasing coordinates along axis 0 of the slice, got {shown}"


def test_coordinates_of_the_wrong_length_are_refused():
    s = LineSlice(torch.tensor([0.0, 0.5, 1.0], dtype=F64), torch.ones(4, dtype=F64), torch.zeros(1, dtype=F64), torch.ones(1, dtype=F64))
    with pytest.raises(LosslabError) as info:
        discrete_convexity(s)
    assert str(info.value) == "expected 4 finite, strictly increasing coordinates along axis 0 of the slice, got [0.0, 0.5, 1.0]"


def test_wrong_arguments_are_named_by_type():
    with pytest.raises(LosslabError, match=r"expected a LineSlice or PlaneSlice \(from losslab.landscape.line/plane\), got Tensor$"):
        discrete_convexity(torch.zeros(3))
    with pytest.raises(LosslabError, match=r"^expected the problem the slice was computed on \(p=1 parameters\), got str$"):
        discrete_convexity(_stored_line([0.0, 1.0, 0.0]), problem="problem")


def _documented_confirmation(Y: float) -> bool:
    """The rule by hand: float64 values L(−1), L(0), L(1) of (w² − Y)², δ_j = 64ε(|L_j| + M) with M the largest
    |value| of the stored slice [0, 1, 0] and of the re-evaluated ones, and D < −tol on the grid t = 0, ½, 1."""
    L = [(1.0 - Y) ** 2, Y**2, (1.0 - Y) ** 2]
    M = max(1.0, *L)
    delta = [DEFAULT_RTOL * EPS * (v + M) for v in L]
    h = 0.5
    D = (L[0] - 2 * L[1] + L[2]) / h**2
    tol = (delta[0] + 2 * delta[1] + delta[2]) / h**2
    return D < -tol


@pytest.mark.parametrize(("Y", "confirmed"), [(1.0, True), (1 / (192 * EPS), True), (1 / (96 * EPS), False), (1e40, False)])
def test_a_flagged_difference_counts_only_if_float64_shows_it_beyond_the_float64_rounding(Y, confirmed):
    # D = 8(1 − 2Y) ≈ −16Y against tol ≈ 2048·ε·Y² (the values are ≈ Y², and so is the floor M):
    # a violation up to Y ≈ 1/(128ε); at Y = 1/(96ε) the concavity is within float64 rounding of values ≈ Y²
    assert _documented_confirmation(Y) is confirmed
    s = _stored_line([0.0, 1.0, 0.0])  # D = −8 in the stored values: flagged
    assert discrete_convexity(s).counts == (1,)
    result = discrete_convexity(s, problem=_square_problem(Y))
    assert result.confirmed_in_float64 and result.counts == (int(confirmed),)
    assert result.second_differences[0][1] == -8.0  # the report keeps the slice's own differences


def test_a_flagged_difference_whose_float64_losses_overflow_is_not_confirmed():
    prob = _square_problem(1e200)  # (w² − 1e200)² overflows float64 at every point of the stencil
    result = discrete_convexity(_stored_line([0.0, 1.0, 0.0]), problem=prob)
    assert result.violations == 0 and result.confirmed_in_float64


def test_only_differences_the_slice_flags_are_confirmed():
    # the stored values are flat (D = 0, nothing flagged); the problem is concave along the line (D = −8 in float64),
    # but confirmation only removes flags, it never adds one the slice's values do not show
    s = _stored_line([1.0] * 5)
    result = discrete_convexity(s, problem=_square_problem(1.0))
    assert result.violations == 0 and result.clean
    assert result.most_negative == 0.0
