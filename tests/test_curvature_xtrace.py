"""XTrace against a brute-force leave-one-out reference, the exact trace, and Hutch++ at the same budget."""

from __future__ import annotations

import math

import pytest
import torch

from losslab import LosslabError, Problem
from losslab.curvature import HessianOperator, MatrixOperator, hutchpp, xtrace
from losslab.curvature.trace import _rademacher
from losslab.models import TwoLayer
from losslab.random_streams import generator

from _helpers import gen, rounding_bound
from references import dense_hessian


def _decaying(p: int, seed: int = 0, rate: float = 0.85) -> torch.Tensor:
    """A symmetric p × p matrix with eigenvalues 10·rate^i, a few negative, in a random basis."""
    Q, _ = torch.linalg.qr(torch.randn(p, p, generator=gen(seed), dtype=torch.float64))
    lam = 10 * rate ** torch.arange(p, dtype=torch.float64)
    lam[3::7] *= -1
    return (Q * lam) @ Q.T


def _naive_xtrace(A: torch.Tensor, Omega: torch.Tensor) -> torch.Tensor:
    """Algorithm 1.2 of Epperly, Tropp & Webber (2024) written out: one QR per left-out probe."""
    m = Omega.shape[1]
    out = []
    for i in range(m):
        rest = torch.cat([Omega[:, :i], Omega[:, i + 1:]], 1)
        Qi, _ = torch.linalg.qr(A @ rest)
        w = Omega[:, i] - Qi @ (Qi.T @ Omega[:, i])
        out.append(torch.trace(Qi.T @ A @ Qi) + w @ A @ w)
    return torch.stack(out)


def test_xtrace_equals_the_brute_force_leave_one_out_estimates():
    A = _decaying(60)
    for seed in (0, 3):
        got = xtrace(MatrixOperator(A), samples=20, seed=seed)
        Omega = _rademacher(60, 10, generator(seed, "probes"), torch.device("cpu"))  # xtrace's documented probe stream
        t = _naive_xtrace(A, Omega)
        assert got.matvecs == 20 and got.probes == 10 and got.method == "xtrace"
        assert math.isclose(got.estimate, float(t.mean()), rel_tol=1e-10)
        assert math.isclose(got.stderr, float(t.std(correction=1)) / math.sqrt(10), rel_tol=1e-8)


def test_xtrace_is_unbiased_and_more_accurate_than_hutchpp_at_the_same_budget():
    A = _decaying(200, seed=1, rate=0.7)  # fast decay: the regime XTrace is made for (3× Hutch++ here)
    exact = float(torch.trace(A))
    xt = torch.tensor([xtrace(MatrixOperator(A), samples=24, seed=s).estimate for s in range(200)])
    hpp = torch.tensor([hutchpp(MatrixOperator(A), samples=24, seed=s).estimate for s in range(200)])
    assert abs(float(xt.mean()) - exact) < 4 * float(xt.std()) / math.sqrt(200)  # unbiased
    rms = lambda e: float(((e - exact) ** 2).mean().sqrt())
    assert rms(xt) < 0.5 * rms(hpp)


def test_xtrace_stderr_tracks_its_error():
    A = _decaying(200, seed=2, rate=0.97)
    exact = float(torch.trace(A))
    z = torch.tensor([(r.estimate - exact) / r.stderr for r in (xtrace(MatrixOperator(A), samples=40, seed=s) for s in range(100))])
    assert 0.5 < float(z.std()) < 2.0


def test_xtrace_is_exact_with_a_full_sketch():
    A = _decaying(12)
    full = xtrace(MatrixOperator(A), samples=30, seed=0)  # ⌊30/2⌋ ≥ p
    assert math.isclose(full.estimate, float(torch.trace(A)), rel_tol=1e-12) and 0 < full.stderr <= rounding_bound(A)


@pytest.mark.parametrize("seed", range(6))
def test_xtrace_of_a_low_rank_operator_falls_back_to_hutchpp_and_is_right(seed):
    """A rank-r sketch (r < m): R is singular, so the estimate is tr on the r-column basis plus fresh probes on the rest."""
    d = torch.zeros(50, dtype=torch.float64)
    d[:5] = 100.0  # rank 5, m = 12
    got = xtrace(MatrixOperator(torch.diag(d)), samples=24, seed=seed)
    assert math.isclose(got.estimate, 500.0, rel_tol=1e-10) and got.stderr < 1e-9
    assert got.matvecs == 12 + 5 + 7
    U = torch.randn(50, 3, generator=gen(seed), dtype=torch.float64)
    low = U @ torch.diag(torch.tensor([4.0, -2.0, 1.0], dtype=torch.float64)) @ U.T
    got = xtrace(MatrixOperator(low), samples=16, seed=seed)
    assert math.isclose(got.estimate, float(torch.trace(low)), rel_tol=1e-10)
    zero = xtrace(MatrixOperator(torch.zeros(5, 5, dtype=torch.float64)), samples=10, seed=seed)
    assert zero.estimate == 0.0 and zero.stderr == 0.0


def test_xtrace_keeps_a_small_tail_in_float32():
    """Five large eigenvalues and a long tail of small ones (1e-3 × 1,995 ≈ 2 of the trace 502): the tail is estimated, not dropped."""
    d = torch.full((2000,), 1e-3)
    d[:5] = 100.0
    est = [xtrace(MatrixOperator(torch.diag(d)), samples=24, seed=s) for s in range(5)]
    for e in est:
        assert abs(e.estimate - float(d.double().sum())) < 6 * e.stderr + 1e-3
    assert abs(sum(e.estimate for e in est) / 5 - float(d.double().sum())) < 0.5


def test_xtrace_of_a_hessian_matches_the_dense_trace():
    X = torch.randn(40, 2, generator=gen(0), dtype=torch.float64)
    y = torch.sin(X[:, 0])
    problem = Problem(TwoLayer(2, 6, "tanh"), X, y)
    theta = problem.init(seed=1)
    H = dense_hessian(problem.loss, theta)
    est = xtrace(problem, theta, samples=2 * problem.n_params, seed=0)  # a full sketch: exact
    assert math.isclose(est.estimate, float(torch.trace(H)), rel_tol=1e-9, abs_tol=1e-12)
    part = xtrace(HessianOperator(problem, theta), samples=16, seed=0)
    assert abs(part.estimate - float(torch.trace(H))) < 6 * part.stderr + 1e-9


@pytest.mark.parametrize("samples", [3, 0, 2.5, "10", 7])
def test_xtrace_bad_budget_is_one_clear_error(samples):
    with pytest.raises(LosslabError, match="samples"):
        xtrace(MatrixOperator(torch.eye(4, dtype=torch.float64)), samples=samples)


@pytest.mark.parametrize(("p", "rank"), [(50, 3), (300, 5)])
def test_probes_that_miss_part_of_a_coordinate_aligned_range_never_give_a_confident_wrong_trace(p, rank):
    """diag(1, …, 1, 0, …): Rademacher probes restricted to the range can lose rank; the estimate stays within 4 stderr."""
    d = torch.zeros(p, dtype=torch.float64)
    d[:rank] = 1.0
    A = MatrixOperator(torch.diag(d))
    for seed in range(60):
        r = xtrace(A, samples=16, seed=seed)
        assert abs(r.estimate - rank) <= 4 * r.stderr + 1e-9, (seed, r)


def test_a_budget_below_eight_probes_is_refused_unless_it_covers_the_operator():
    with pytest.raises(LosslabError, match="expected samples >= 16 for XTrace"):
        xtrace(MatrixOperator(torch.eye(100, dtype=torch.float64)), samples=8)
    D = torch.diag(torch.arange(1.0, 4.0, dtype=torch.float64))
    small = xtrace(MatrixOperator(D), samples=6)
    assert small.estimate == pytest.approx(6.0, rel=1e-12) and 0 < small.stderr <= rounding_bound(D)
