"""Thick-restart Lanczos (``eigs`` with ``max_basis`` < p): its stopping rules and fresh-direction checks.

Every run is on an explicit symmetric matrix with a known spectrum and checked against
``torch.linalg.eigvalsh`` in float64: values within their rigorous bounds of the right
eigenvalues, ``converged`` never claimed for a bound over the tolerance, ``max_iter`` the most
products made, the default ``verify=None`` following the documented rule (a random direction's
Rayleigh quotient within 6 estimated standard deviations of the wanted values), and the Ritz
vectors orthonormal to working precision where one Gram–Schmidt pass is not enough.
"""

from __future__ import annotations

import importlib
import math

import pytest
import torch

from losslab.curvature import MatrixOperator, eigs

from _helpers import gen, wanted_eigenvalues, with_spectrum

DT = torch.float64
EIGS = importlib.import_module("losslab.curvature.eigs")  # the module (``losslab.curvature.eigs`` is also the function)


def outliers_over_a_bulk(p: int = 60, seed: int = 0) -> torch.Tensor:
    bulk = 0.3 * torch.randn(p - 5, generator=gen(seed), dtype=DT)
    return torch.cat([torch.tensor([9.0, 6.0, 4.0, -3.0, -2.0], dtype=DT), bulk])


class Recording(MatrixOperator):
    """A matrix that remembers the vectors it was applied to (rows, float64)."""

    def __init__(self, A):
        super().__init__(A)
        self.seen = []

    def _apply_rows(self, V):
        self.seen.append(V.to(DT).clone())
        return super()._apply_rows(V)


# ---- max_iter and the honesty of an early stop -------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("criterion", ["gap", "residual"])
@pytest.mark.parametrize("which", ["largest", "smallest", "both"])
def test_max_iter_is_the_number_of_products_of_an_unconverged_run(dtype, criterion, which):
    A = with_spectrum(2 * torch.rand(120, generator=gen(1), dtype=DT) - 1, seed=1, dtype=dtype)  # no gap at either end
    true = torch.linalg.eigvalsh(A.to(DT))
    k = 3
    for max_iter in (k, 9, 17):  # k: stop at the first look (no restart); 9, 17: after thick restarts of a 7-vector basis
        res = eigs(MatrixOperator(A), k=k, which=which, criterion=criterion, max_basis=7, max_iter=max_iter)
        assert res.matvecs == max_iter and not res.all_converged, max_iter
        assert res.which == which and res.criterion == criterion and res.method == "lanczos"
        slack = 1e-12 if dtype == DT else 1e-5  # + the float32 rounding of A itself
        nearest = (res.values[:, None] - true[None]).abs().min(1).values
        assert torch.all(nearest <= res.bounds + slack)
        cap = res.tol if criterion == "residual" else math.sqrt(res.tol)
        assert not torch.any(res.converged & (res.bounds > cap * res.norm_estimate))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("criterion", ["gap", "residual"])
@pytest.mark.parametrize("which", ["largest", "smallest"])
def test_one_extreme_eigenvalue_converges_through_restarts(dtype, criterion, which):
    A = with_spectrum(outliers_over_a_bulk(80, seed=2), seed=2, dtype=dtype)
    true = torch.linalg.eigvalsh(A.to(DT))
    res = eigs(MatrixOperator(A), k=1, which=which, criterion=criterion, max_basis=5)
    assert res.all_converged and res.which == which and res.matvecs < 80
    ref = wanted_eigenvalues(true, 1, which)
    slack = 0.0 if dtype == DT else 1e-5 * 9.0
    assert torch.all((res.values - ref).abs() <= res.gap_bounds + slack)
    assert torch.all((res.values - ref).abs() <= res.bounds + slack)
    limit = res.tol if criterion == "residual" else math.sqrt(res.tol)
    assert float(res.bounds.max()) <= limit * res.norm_estimate


# ---- the fresh-direction check ---------------------------------------------------------------


@pytest.mark.parametrize("which", ["largest", "both"])
def test_the_zero_operator_is_verified_with_exactly_one_more_product(which):
    op = MatrixOperator(torch.zeros(40, 40, dtype=DT))
    checked = eigs(op, k=3, which=which, max_basis=10, verify=True)
    unchecked = eigs(op, k=3, which=which, max_basis=10, verify=False)
    default = eigs(op, k=3, which=which, max_basis=10)  # v₀ᵀAv₀ = 0 with spread 0 reaches the zeros: checked
    assert unchecked.matvecs == 3 and checked.matvecs == default.matvecs == 4
    for res in (checked, unchecked, default):
        assert res.all_converged and torch.equal(res.values, torch.zeros(3, dtype=DT))


def test_without_a_fresh_direction_the_converged_pairs_are_returned_as_they_are(monkeypatch):
    """``_random_orthogonal`` gives None only if the basis spans (nearly) everything; forced here: ``verify=True``
    must then return exactly what ``verify=False`` returns at the same point."""
    A = with_spectrum(outliers_over_a_bulk(), seed=3)
    true = torch.linalg.eigvalsh(A)
    monkeypatch.setattr(EIGS, "_random_orthogonal", lambda V, gen: None)
    for which in ("largest", "both"):
        forced = eigs(MatrixOperator(A), k=3, which=which, max_basis=12, verify=True)
        plain = eigs(MatrixOperator(A), k=3, which=which, max_basis=12, verify=False)
        assert forced.which == which and forced.matvecs == plain.matvecs
        for name in ("values", "bounds", "gap_bounds", "converged"):
            assert torch.equal(getattr(forced, name), getattr(plain, name)), name
        assert forced.all_converged
        assert torch.all((forced.values - wanted_eigenvalues(true, 3, which)).abs() <= forced.gap_bounds + 1e-12 * 9.0)


def test_random_orthogonal_gives_the_one_direction_left_or_none():
    Q, _ = torch.linalg.qr(torch.randn(12, 12, generator=gen(5), dtype=DT))
    for seed in range(6):
        v = EIGS._random_orthogonal(Q[:11], gen(seed))  # the complement is the line of Q[11]
        assert v is not None and abs(abs(float(v @ Q[11])) - 1.0) <= 1e-12
    assert EIGS._random_orthogonal(Q, gen(0)) is None  # Q spans R^12: nothing is left


def reaches_by_interval(alpha: float, spread: float, values: list[float], k: int, which: str) -> bool:
    """The documented rule, written out: does [α − 6s, α + 6s] reach a wanted value from the inside of the spectrum?"""
    lo, hi = alpha - 6 * spread, alpha + 6 * spread
    top = values[k // 2 :] if which == "both" else values if which == "largest" else []
    bottom = values[: k // 2] if which == "both" else values if which == "smallest" else []
    return any(v <= hi for v in top) or any(v >= lo for v in bottom)


REACH_CASES = [  # (alpha, spread, values ascending, k, which)
    (0.0, 1.0, [5.0, 7.0], 2, "largest"),  # α + 6s = 6 reaches the lower wanted value 5
    (0.0, 1.0, [6.5, 7.0], 2, "largest"),  # out of reach
    (0.0, 0.5, [2.0, 3.5], 2, "largest"),  # only α + 6s reaches; α − 6s does not
    (3.0, 0.0, [3.0], 1, "largest"),  # spread 0 (A = cI): the value itself is reached
    (3.0, 0.0, [3.0], 1, "smallest"),
    (0.0, 1.0, [-7.0, -5.0], 2, "smallest"),
    (0.0, 1.0, [-7.0, -6.5], 2, "smallest"),
    (0.0, 0.5, [-3.5, -2.0], 2, "smallest"),
    (0.0, 0.5, [2.0, 3.5], 2, "smallest"),  # wanted values above α − 6s: within reach
    (0.0, 1.0, [-9.0, 7.0], 2, "both"),  # neither end
    (0.0, 1.0, [-5.0, 7.0], 2, "both"),  # the bottom end only
    (0.0, 1.0, [-9.0, 5.0], 2, "both"),  # the top end only
    (0.0, 1.0, [-9.0, -8.0, 5.5, 9.0], 4, "both"),  # top group [5.5, 9]: its lower member is reached
    (0.0, 1.0, [-9.0, -5.5, 7.0, 9.0], 4, "both"),  # bottom group [-9, -5.5]: its upper member is reached
    (0.0, 1.0, [-9.0, -8.0, 7.0, 9.0], 4, "both"),
    (0.0, 1.0, [-9.0, 7.0, 9.0], 3, "both"),  # one smallest, two largest
    (0.0, 1.0, [-5.0, 7.0, 9.0], 3, "both"),
    (0.0, 1.0, [5.0], 1, "both"),  # k = 1: the one largest only
    (0.0, 1.0, [7.0], 1, "both"),  # nothing smaller is wanted: α − 6s below 7 does not count
    (6.0, 0.5, [2.0], 1, "both"),
    (0.0, 1.0, [6.0], 1, "both"),  # exactly 6 s away: within reach
    (0.0, 1.0, [-6.0, 9.0], 2, "both"),
]


@pytest.mark.parametrize(("alpha", "spread", "values", "k", "which"), REACH_CASES)
def test_reaches_follows_the_six_spread_rule(alpha, spread, values, k, which):
    got = EIGS._reaches(alpha, spread, torch.tensor(values, dtype=DT), k, which)
    assert got == reaches_by_interval(alpha, spread, values, k, which)


def first_product_statistics(A: torch.Tensor, seed: int, max_basis: int) -> tuple[float, float]:
    """v₀ᵀAv₀ and √(2/(p+2))·√(‖Av₀‖² − (v₀ᵀAv₀)²) of the start vector eigs draws (recorded from its first product)."""
    op = Recording(A)
    eigs(op, k=1, max_basis=max_basis, max_iter=1, verify=False, seed=seed)
    v = op.seen[0][0]
    Av = A @ v
    alpha, size = float(v @ Av), float(torch.linalg.vector_norm(Av))
    return alpha, math.sqrt(2.0 / (A.shape[0] + 2)) * math.sqrt(max(size**2 - alpha**2, 0.0))


def test_default_verification_starts_exactly_within_six_spreads():
    """A bulk in [0.6, 1.4] and one top eigenvalue t placed just inside and just outside α + 6s (the rule of
    the module docstring): the default run must make the products of ``verify=True`` inside, of ``False`` outside."""
    p, max_basis, seed = 24, 10, 3
    bulk = torch.linspace(0.6, 1.4, p - 1, dtype=DT)

    def matrix(t):
        return with_spectrum(torch.cat([bulk, torch.tensor([t], dtype=DT)]), seed=7)

    def margin(t):  # > 0: a random direction's Rayleigh quotient can reach t
        alpha, spread = first_product_statistics(matrix(t), seed, max_basis)
        return alpha + 6 * spread - t, spread

    lo, hi = 1.5, 20.0
    assert margin(lo)[0] > 0 > margin(hi)[0]
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if margin(mid)[0] > 0 else (lo, mid)
    spread = margin(lo)[1]
    for offset, expect_check in ((-0.003, True), (0.003, False)):  # t moved by 0.3 % of 6 s
        t = lo + offset * 6 * spread
        assert (margin(t)[0] > 0) == expect_check
        A = matrix(t)
        default = eigs(MatrixOperator(A), k=1, max_basis=max_basis, seed=seed)
        checked = eigs(MatrixOperator(A), k=1, max_basis=max_basis, seed=seed, verify=True)
        unchecked = eigs(MatrixOperator(A), k=1, max_basis=max_basis, seed=seed, verify=False)
        assert checked.matvecs > unchecked.matvecs
        assert default.matvecs == (checked if expect_check else unchecked).matvecs, (offset, default.matvecs)
        assert default.all_converged and abs(float(default.values[0]) - t) <= float(default.gap_bounds[0])


# ---- reorthogonalisation ---------------------------------------------------------------------


def test_ritz_vectors_stay_orthonormal_where_one_gram_schmidt_pass_cancels_much():
    """Three clusters of 15 eigenvalues each 1e-6 wide: the full pass against the basis cancels all but ~1e-6 of
    a new vector, so a second (DGKS) pass is what keeps the basis, and the Ritz vectors, orthonormal."""
    values = torch.cat([c + 1e-6 * torch.randn(15, generator=gen(1), dtype=DT) for c in (3.0, 1.0, -2.0)])
    A = with_spectrum(values, seed=0)
    res = eigs(MatrixOperator(A), k=8, which="largest", max_iter=80, verify=True)
    gram = res.vectors.T @ res.vectors
    assert float((gram - torch.eye(8, dtype=DT)).abs().max()) <= 1e-13
    nearest = (res.values[:, None] - torch.linalg.eigvalsh(A)[None]).abs().min(1).values
    assert torch.all(nearest <= res.bounds + 1e-12 * 3.0)
