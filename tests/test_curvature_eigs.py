"""Lanczos eigenpairs against ``torch.linalg.eigvalsh`` of dense float64 matrices.

Every returned value must lie within its stated bound of a true eigenvalue (the one it claims
to approximate: the k-th largest for the k-th largest, ...), the bounds must be the true
residuals recomputed with the dense matrix, and the products counted must be those made.
"""

from __future__ import annotations

import pytest
import torch

from losslab import LosslabError, Problem
from losslab.curvature import GGNOperator, HessianOperator, MatrixOperator, eigs, nonlinearity_curvature
from losslab.models import Polynomial, TwoLayer

from _helpers import gen, wanted_eigenvalues, with_spectrum
from references import dense_eigenvalues, dense_hessian

DT = torch.float64


class Counted(MatrixOperator):
    """A dense symmetric matrix that counts its products independently of the base class."""

    def __init__(self, A):
        super().__init__(A)
        self.count = 0

    def _apply_rows(self, V):
        self.count += V.shape[0]
        return super()._apply_rows(V)


def spectrum(p: int = 150, seed: int = 0) -> torch.Tensor:
    """A Hessian-like spectrum: a few outliers, a bulk around 0, some negative values."""
    bulk = 0.3 * torch.randn(p - 6, generator=gen(seed), dtype=DT)
    return torch.cat([torch.tensor([25.0, 12.0, 7.5, -4.0, -2.5, 5.0], dtype=DT), bulk])


def check(res, A: torch.Tensor, k: int, which: str, scale: float) -> None:
    """Values within bounds of the right eigenvalues; bounds are true residuals; vectors orthonormal."""
    true = torch.linalg.eigvalsh(A)
    ref = wanted_eigenvalues(true, k, which)
    assert res.values.shape == (k,) and res.vectors.shape == (A.shape[0], k) and res.bounds.shape == (k,)
    assert torch.all(res.values[1:] >= res.values[:-1])  # ascending
    assert torch.all((res.values - ref).abs() <= res.bounds + 1e-12 * scale)
    residual = torch.linalg.vector_norm(A @ res.vectors - res.vectors * res.values, dim=0)
    torch.testing.assert_close(residual, res.bounds, rtol=1e-3, atol=1e-13 * scale)
    torch.testing.assert_close(res.vectors.T @ res.vectors, torch.eye(k, dtype=DT), rtol=0, atol=1e-10)


@pytest.mark.parametrize("which", ["largest", "smallest", "both"])
@pytest.mark.parametrize("max_basis", [None, 14])  # 14 forces thick restarts
def test_lanczos_matches_eigvalsh_of_a_known_spectrum(which, max_basis):
    A = with_spectrum(spectrum())
    op = Counted(A)
    k = 4
    res = eigs(op, k=k, which=which, max_basis=max_basis)
    assert res.method == "lanczos" and res.all_converged
    check(res, A, k, which, scale=25.0)
    ref = wanted_eigenvalues(torch.linalg.eigvalsh(A), k, which)
    assert float((res.values - ref).abs().max()) <= 1e-10 * 25.0  # high accuracy at the default tol
    assert res.matvecs == op.count == op.products
    assert res.matvecs < 150  # fewer products than the dense matrix needs


@pytest.mark.parametrize("which", ["largest", "smallest", "both"])
def test_lanczos_matches_the_dense_hessian_of_a_two_layer_net(which):
    X = torch.linspace(-2, 2, 40, dtype=DT)[:, None]
    problem = Problem(TwoLayer(1, 16, "tanh"), X, torch.sin(2 * X[:, 0]))
    theta = problem.init(seed=1)
    H = dense_hessian(problem.loss, theta)
    k = 3
    res = eigs(problem, theta, k=k, which=which, max_basis=20, seed=3)
    assert res.method == "lanczos" and res.all_converged
    scale = float(torch.linalg.matrix_norm(H, ord=2))
    check(res, H, k, which, scale)
    assert float((res.values - wanted_eigenvalues(torch.linalg.eigvalsh(H), k, which)).abs().max()) <= 1e-9 * scale
    again = eigs(problem, theta, k=k, which=which, max_basis=20, seed=3)
    assert torch.equal(again.values, res.values)  # same seed, same numbers


def test_per_group_eigenvalues_are_those_of_the_hessian_block():
    X = torch.linspace(-2, 2, 30, dtype=DT)[:, None]
    problem = Problem(TwoLayer(1, 12, "tanh", out_bias=True), X, X[:, 0] ** 2, l2=0.01)
    theta = problem.init(seed=0)
    H = dense_hessian(problem.loss, theta)
    idx = torch.arange(problem.n_params)[problem.slices()["W"]]
    idx = torch.cat([idx, torch.arange(problem.n_params)[problem.slices()["b"]]])
    sub = problem.restrict(["W", "b"], at=theta)
    res = eigs(sub, theta[idx], k=2, which="both", max_basis=10)
    check(res, H[idx][:, idx], 2, "both", float(H.abs().max()))


def test_ggn_is_positive_semidefinite_and_h_minus_ggn_indefinite():
    X = torch.linspace(-2, 2, 12, dtype=DT)[:, None]
    problem = Problem(TwoLayer(1, 12, "tanh"), X, torch.sin(2 * X[:, 0]))
    theta = problem.init(seed=2)
    ggn = eigs(GGNOperator(problem, theta), k=2, which="both", max_basis=12)
    assert ggn.all_converged and ggn.values[0] >= -1e-10 * ggn.norm_estimate  # rank ≤ n = 12 < p = 36: zeros
    diff = eigs(nonlinearity_curvature(problem, theta), k=2, which="both", max_basis=12)
    assert diff.values[0] < -diff.bounds[0] and diff.values[-1] > diff.bounds[-1]  # Σ r_i ∇²f_i has both signs


def test_zero_and_low_rank_operators_are_handled():
    X = torch.linspace(-1, 1, 50, dtype=DT)
    zero = nonlinearity_curvature(Problem(Polynomial(1, 40), X, X**2), torch.zeros(41, dtype=DT))
    res = eigs(zero, k=3, which="both", max_basis=10)
    assert res.all_converged and torch.equal(res.values, torch.zeros(3, dtype=DT))
    values = torch.zeros(60, dtype=DT)
    values[:3] = torch.tensor([3.0, -1.0, 2.0], dtype=DT)  # rank 3: Krylov space invariant after 3 steps
    A = with_spectrum(values, seed=4)
    res = eigs(MatrixOperator(A), k=4, which="largest", max_basis=12)
    check(res, A, 4, "largest", 3.0)
    assert res.all_converged


def test_float32_hessian_within_bounds_of_the_float64_spectrum():
    X = torch.linspace(-2, 2, 40, dtype=DT)[:, None]
    p64 = Problem(TwoLayer(1, 16, "tanh"), X, torch.sin(2 * X[:, 0]))
    theta = p64.init(seed=1)
    H = dense_hessian(p64.loss, theta)
    res = eigs(p64.to(torch.float32), theta.float(), k=3, max_basis=20)
    assert res.all_converged and res.tol == pytest.approx(100 * torch.finfo(torch.float32).eps)
    true = torch.linalg.eigvalsh(H)[-3:]
    scale = float(true.abs().max())
    assert torch.all((res.values - true).abs() <= res.bounds + 1e-5 * scale)  # + float32 rounding of H itself


def test_dense_path_for_tiny_p_allows_k_equal_p():
    A = with_spectrum(torch.tensor([-1.0, 0.5, 2.0, 3.0, 7.0], dtype=DT))
    op = Counted(A)
    res = eigs(op, k=5)
    assert res.method == "dense" and res.matvecs == op.count == 5
    torch.testing.assert_close(res.values, torch.linalg.eigvalsh(A), rtol=0, atol=1e-13)
    check(res, A, 5, "largest", 7.0)


def test_an_unconverged_run_says_so_and_its_bounds_still_hold():
    A = with_spectrum(spectrum(300, seed=1), seed=1)
    res = eigs(MatrixOperator(A), k=3, which="smallest", max_basis=8, max_iter=10)
    assert res.matvecs <= 10 + 3 and not res.all_converged
    true = torch.linalg.eigvalsh(A)
    nearest = (res.values[:, None] - true[None]).abs().min(1).values
    assert torch.all(nearest <= res.bounds + 1e-12)  # some eigenvalue within each bound
    assert torch.all(res.values >= true[0] - 1e-12)  # Ritz values never undershoot λ_min


def _op():
    return MatrixOperator(torch.eye(40, dtype=DT))


BAD = [
    (lambda: eigs(_op(), k=41), r"expected k <= p = 40 \(the operator's size\), got k=41"),
    (lambda: eigs(_op(), k=0), "expected k to be an integer >= 1, got k=0"),
    (lambda: eigs(_op(), which="top"), "unknown which 'top': expected one of 'largest', 'smallest', 'both'"),
    (lambda: eigs(_op(), k=5, max_basis=6), r"expected max_basis >= k \+ 2 = 7"),
    (lambda: eigs(_op(), tol=-1.0), "expected tol to be a finite number > 0, got tol=-1.0"),
    (lambda: eigs(_op(), torch.zeros(40)), "expected theta=None with an operator"),
    (lambda: eigs(Problem(Polynomial(1, 2), [0.0, 1.0], [0.0, 1.0])), "expected theta of shape"),
    (lambda: eigs(Problem(Polynomial(1, 2), [0.0, 1.0], [0.0, 1.0]), torch.zeros(4, dtype=DT)), r"expected theta of shape \(3,\)"),
    (lambda: eigs(torch.eye(3)), "expected a losslab.Problem or a curvature operator, got Tensor"),
    (
        lambda: HessianOperator(Problem(Polynomial(1, 2), [0.0, 1.0], [0.0, 1.0]), torch.zeros(3, dtype=DT)).matvec([1.0, 2.0]),
        r"expected v of shape \(3,\), got shape \(2,\)",
    ),
]


@pytest.mark.parametrize(("make", "match"), BAD)
def test_bad_input_raises_a_clear_error(make, match):
    with pytest.raises(LosslabError, match=match):
        make()


def _nearest_other(true: torch.Tensor, value: float, target: float) -> float:
    """Distance from ``value`` to the eigenvalues other than (one copy of) ``target``."""
    others = true.clone()
    others[(others - target).abs().argmin()] = float("inf")
    return float((others - value).abs().min())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("which", ["largest", "smallest", "both"])
@pytest.mark.parametrize("max_iter", [8, 12, 20, None])  # early stops: bounds well above rounding
def test_gap_bounds_hold_against_eigvalsh_of_tiny_models(seed, which, max_iter):
    X = torch.linspace(-2, 2, 30, dtype=DT)[:, None]
    problem = Problem(TwoLayer(1, 12, "tanh", out_bias=True), X, torch.sin(2 * X[:, 0]), l2=0.01)
    theta = problem.init(seed=seed)
    H = dense_hessian(problem.loss, theta)
    true = torch.linalg.eigvalsh(H)
    scale = float(true.abs().max())
    k = 3
    res = eigs(problem, theta, k=k, which=which, max_basis=10, max_iter=max_iter, seed=seed)
    assert res.gap_bounds.shape == (k,) and torch.all(res.gap_bounds <= res.bounds)
    nearest = (res.values[:, None] - true[None]).abs().min(1).values
    assert torch.all(nearest <= res.bounds + 1e-12 * scale)  # the residual bound holds, always
    residual = torch.linalg.vector_norm(H @ res.vectors - res.vectors * res.values, dim=0)
    torch.testing.assert_close(residual, res.bounds, rtol=1e-3, atol=1e-13 * scale)
    assert torch.all(nearest <= res.gap_bounds + 1e-12 * scale)  # the gap bound holds too, unconditionally
    ref = wanted_eigenvalues(true, k, which)
    assert len(ref) == len(res.values) == k
    for value, target, r in zip(res.values.tolist(), ref.tolist(), res.bounds.tolist()):
        error = abs(value - target)
        gap = _nearest_other(true, value, target)
        if gap > r:
            assert error <= r**2 / gap + 1e-12 * scale  # Kato–Temple with the true gap (a theorem)
    if res.all_converged:
        assert float((res.values - ref).abs().max()) <= 1e-9 * scale


def test_gap_criterion_needs_fewer_products_than_the_residual_one():
    X = torch.linspace(-2, 2, 60, dtype=DT)[:, None]
    problem = Problem(TwoLayer(1, 100, "tanh"), X, torch.sin(2 * X[:, 0]))  # p = 300
    theta = problem.init(seed=0)
    H = dense_hessian(problem.loss, theta)
    true = torch.linalg.eigvalsh(H)
    scale = float(true.abs().max())
    total_new = total_old = 0
    for which in ["largest", "both"]:
        new = eigs(problem, theta, k=5, which=which)  # default: gap criterion, tol 1e-10
        old = eigs(problem, theta, k=5, which=which, criterion="residual", verify=True)  # the previous default
        assert new.criterion == "gap" and new.all_converged and old.all_converged
        assert torch.all(new.gap_bounds <= new.tol * scale) and torch.all(new.bounds <= new.tol**0.5 * scale)
        ref = wanted_eigenvalues(true, 5, which)
        assert torch.all((new.values - ref).abs() <= new.gap_bounds + 1e-12 * scale)
        assert torch.all((new.values - ref).abs() <= new.bounds + 1e-12 * scale)
        total_new, total_old = total_new + new.matvecs, total_old + old.matvecs
    assert total_new < 0.95 * total_old


def test_float32_default_tol_and_criterion():
    X = torch.linspace(-2, 2, 60, dtype=DT)[:, None]
    p64 = Problem(TwoLayer(1, 100, "tanh"), X, torch.sin(2 * X[:, 0]))
    theta = p64.init(seed=0)
    true = dense_eigenvalues(p64.loss, theta)[-5:]
    scale = float(true.abs().max())
    new = eigs(p64.to(torch.float32), theta.float(), k=5)
    old = eigs(p64.to(torch.float32), theta.float(), k=5, criterion="residual", verify=True)
    assert new.tol == old.tol == pytest.approx(100 * torch.finfo(torch.float32).eps)
    assert new.all_converged and new.matvecs <= old.matvecs  # no more products (this bulk-adjacent k-th value is hard)
    assert float((new.values - true).abs().max()) <= 2 * new.tol * scale  # + float32 rounding of H itself


def test_a_large_null_space_at_the_wanted_end_is_verified():
    values = torch.cat([torch.zeros(150, dtype=DT), torch.linspace(0.5, 5.0, 50, dtype=DT)])
    A = with_spectrum(values, seed=3)
    res = eigs(MatrixOperator(A), k=3, which="smallest")  # verify=None: v₀ᵀAv₀ reaches the zeros, so check
    assert res.all_converged and float(res.values.abs().max()) <= 1e-9
    check(res, A, 3, "smallest", 5.0)
    forced = eigs(MatrixOperator(A), k=3, which="smallest", verify=True)
    torch.testing.assert_close(forced.values, res.values, rtol=0, atol=1e-9)


def test_verification_is_skipped_when_random_directions_cannot_reach_the_wanted_end():
    A = with_spectrum(spectrum())
    op = Counted(A)
    auto = eigs(op, k=4, which="largest")
    forced = eigs(Counted(A), k=4, which="largest", verify=True)
    assert forced.matvecs > auto.matvecs == op.count
    check(auto, A, 4, "largest", 25.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"criterion": "eigenvalue"}, "unknown criterion 'eigenvalue'"),
        ({"verify": "yes"}, "expected verify to be True, False or None"),
    ],
)
def test_bad_criterion_or_verify_raises(kwargs, match):
    with pytest.raises(LosslabError, match=match):
        eigs(_op(), **kwargs)


class Overflowing(MatrixOperator):
    """A symmetric matrix whose ``at``-th product comes back with a NaN, as a model that overflows would."""

    def __init__(self, A, at: int):
        super().__init__(A)
        self.at, self.made = at, 0

    def _apply_rows(self, V):
        self.made += V.shape[0]
        out = super()._apply_rows(V)
        if self.made >= self.at:
            out[0, 3] = float("nan")
        return out


def test_a_nan_product_is_a_clear_error_naming_the_product():
    A = with_spectrum(spectrum())
    with pytest.raises(LosslabError, match=r"expected finite Overflowing products, got 1 NaN/inf entries in product 4: "):
        eigs(Overflowing(A, at=4), k=3)
