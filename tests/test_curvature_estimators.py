"""Stochastic estimators (Hutchinson, Hutch++, SLQ) converge to exact float64 spectra; classify is honest.

Exact references: the trace and eigenvalues of dense float64 matrices (a known spectrum, and
Hessians from ``torch.func.hessian`` of tiny models). Convergence is checked at a stated error:
within a few standard errors, and smaller with more samples (root-mean-square over seeds).
"""

from __future__ import annotations

import math

import pytest
import torch

from losslab import LosslabError, Problem
from losslab.curvature import (
    HessianOperator,
    MatrixOperator,
    classify,
    frobenius_norm,
    hutchinson,
    hutchpp,
    nonlinearity_curvature,
    spectral_density,
)
from losslab.fit import least_squares
from losslab.models import Module, Polynomial, RandomFeatures, TwoLayer
from losslab.random_streams import generator

from _helpers import gen, rounding_bound
from references import dense_hessian

DT = torch.float64


def known(p: int = 120, seed: int = 0) -> torch.Tensor:
    """Q diag(λ) Qᵀ: two outliers, one negative, a bulk around 0 (a Hessian-like spectrum)."""
    values = torch.cat([torch.tensor([20.0, 9.0, -3.0], dtype=DT), 0.5 * torch.randn(p - 3, generator=gen(seed), dtype=DT)])
    Q, _ = torch.linalg.qr(torch.randn(p, p, generator=gen(seed + 1), dtype=DT))
    A = Q @ torch.diag(values) @ Q.T
    return (A + A.T) / 2


def two_layer_hessian(width: int = 20):
    X = torch.linspace(-2, 2, 30, dtype=DT)[:, None]
    problem = Problem(TwoLayer(1, width, "tanh"), X, torch.sin(2 * X[:, 0]))
    theta = problem.init(seed=0)
    return problem, theta, dense_hessian(problem.loss, theta)


def rms_error(estimates, exact: float) -> float:
    return math.sqrt(sum((e.estimate - exact) ** 2 for e in estimates) / len(estimates))


# ---- trace ---------------------------------------------------------------------------------


def test_hutchinson_converges_to_the_trace_of_the_hessian():
    problem, theta, H = two_layer_hessian()
    exact = float(torch.trace(H))
    few = [hutchinson(problem, theta, samples=10, seed=s) for s in range(8)]
    many = [hutchinson(problem, theta, samples=640, seed=s) for s in range(8)]
    for e in few + many:
        assert abs(e.estimate - exact) <= 4 * e.stderr
        assert e.matvecs == e.probes == (10 if e in few else 640)
    assert rms_error(many, exact) < rms_error(few, exact) / 3  # ~1/√s: 8× fewer errors expected
    assert many[0].stderr < few[0].stderr / 3
    assert hutchinson(problem, theta, samples=10, seed=3) == few[3]  # seeded


def test_hutchinson_is_exact_on_a_diagonal_matrix():
    A = torch.diag(torch.arange(1.0, 31.0, dtype=DT))
    est = hutchinson(MatrixOperator(A), samples=5)
    assert est.estimate == pytest.approx(465.0, abs=1e-12)
    assert 0 < est.stderr <= rounding_bound(A)  # exact: its error bar is the products' rounding floor only


def test_hutchpp_beats_hutchinson_on_a_decaying_spectrum_and_is_exact_with_a_full_sketch():
    A = known()
    exact = float(torch.trace(A))
    op = MatrixOperator(A)
    hpp = [hutchpp(op, samples=90, seed=s) for s in range(8)]
    hut = [hutchinson(op, samples=90, seed=s) for s in range(8)]
    for e in hpp:
        assert abs(e.estimate - exact) <= 4 * e.stderr + 1e-10
        assert e.matvecs == 90 and e.probes == 30
    assert rms_error(hpp, exact) < rms_error(hut, exact) / 2  # the sketch takes the outliers exactly
    more = [hutchpp(op, samples=300, seed=s) for s in range(8)]
    assert rms_error(more, exact) < rms_error(hpp, exact)
    full = hutchpp(op, samples=3 * 120)  # the sketch spans R^120
    assert full.estimate == pytest.approx(exact, abs=1e-10) and 0 < full.stderr <= rounding_bound(A) and full.matvecs == 240


def test_frobenius_norm_of_the_nonlinearity_curvature():
    problem, theta, _ = two_layer_hessian(width=8)
    op = nonlinearity_curvature(problem, theta)
    exact = float(torch.linalg.matrix_norm(op.to_dense()))
    assert exact > 0
    est = frobenius_norm(op, samples=400, seed=1)
    assert abs(est.estimate - exact) <= 4 * est.stderr
    assert est.stderr < 0.1 * exact


# ---- density -------------------------------------------------------------------------------


def wasserstein(sd, eigenvalues: torch.Tensor) -> float:
    """∫ |F_SLQ(t) − F_exact(t)| dt: the W1 distance of the SLQ node measure to the spectrum."""
    t = torch.linspace(float(eigenvalues[0]) - 1, float(eigenvalues[-1]) + 1, 4000, dtype=DT)
    exact = (eigenvalues[None, :] <= t[:, None]).to(DT).mean(1)
    return float(torch.trapezoid((sd.cdf(t) - exact).abs(), t))


def per_probe_moment(sd, r: int) -> torch.Tensor:
    return (sd.weights * sd.nodes**r).sum(1)


def test_slq_density_integrates_to_one_and_converges_to_the_known_spectrum():
    A = known()
    ev = torch.linalg.eigvalsh(A)
    op = MatrixOperator(A)
    coarse = spectral_density(op, probes=2, steps=20, seed=0)
    fine = spectral_density(op, probes=64, steps=20, seed=0)
    for sd in (coarse, fine):
        assert float(torch.trapezoid(sd.density, sd.grid)) == pytest.approx(1.0, abs=1e-6)
        torch.testing.assert_close(sd.weights.sum(1), torch.ones(len(sd.weights), dtype=DT))
        # the smoothed density keeps the mean: ∫ t ρ(t) dt = the nodes' first moment
        assert float(torch.trapezoid(sd.grid * sd.density, sd.grid)) == pytest.approx(sd.moment(1), abs=1e-6)
    for r, exact in ((1, float(ev.mean())), (2, float((ev**2).mean()))):  # moments: within 4 standard errors
        m = per_probe_moment(fine, r)
        assert abs(fine.moment(r) - exact) <= 4 * float(m.std()) / math.sqrt(len(m))
    assert fine.matvecs == 64 * 20
    assert wasserstein(fine, ev) < 0.5 * wasserstein(coarse, ev)
    assert wasserstein(fine, ev) < 0.01 * float(ev[-1] - ev[0])


def test_slq_with_p_steps_is_exact_gauss_quadrature():
    A = known(p=40, seed=2)
    ev = torch.linalg.eigvalsh(A)
    sd = spectral_density(MatrixOperator(A), probes=3, steps=100, seed=1)  # capped at p = 40
    assert sd.nodes.shape == (3, 40)
    distance = (sd.nodes[..., None] - ev).abs().min(-1).values
    assert float(distance[sd.weights > 1e-12].max()) < 1e-8  # every node with weight is an eigenvalue
    Z = (2 * torch.randint(0, 2, (40, 3), generator=generator(1, "probes")) - 1).to(DT)  # the same Rademacher probes
    exact = ((Z * (A @ A @ A @ Z)).sum(0)) / 40  # zᵀA³z/‖z‖²
    torch.testing.assert_close(per_probe_moment(sd, 3), exact, rtol=1e-8, atol=1e-8)


def test_slq_on_a_hessian_matches_its_trace_and_spectrum():
    problem, theta, H = two_layer_hessian()
    ev = torch.linalg.eigvalsh(H)
    sd = spectral_density(problem, theta, probes=40, steps=25, seed=0)
    m1 = per_probe_moment(sd, 1)
    assert abs(float(torch.trapezoid(sd.grid * sd.density, sd.grid)) - float(ev.mean())) <= 4 * float(m1.std()) / math.sqrt(40)
    few = spectral_density(problem, theta, probes=2, steps=25, seed=0)
    assert wasserstein(sd, ev) < wasserstein(few, ev)
    again = spectral_density(problem, theta, probes=40, steps=25, seed=0)
    assert torch.equal(again.density, sd.density)  # seeded


def test_slq_on_a_zero_operator_stops_at_once():
    X = torch.linspace(-1, 1, 20, dtype=DT)
    problem = Problem(RandomFeatures(1, 10, "tanh"), X, X**2)
    sd = spectral_density(nonlinearity_curvature(problem, problem.init()), probes=3, steps=10)
    assert sd.lengths.tolist() == [1, 1, 1] and sd.matvecs == 3 and sd.moment(1) == 0.0


# ---- classify -------------------------------------------------------------------------------


class DoubleWell(torch.nn.Module):
    """z(x) = x₀·(a² − 1) + x₁·b: with X = I₂, y = 0 and mse, L(a, b) = ((a² − 1)² + b²)/2."""

    def __init__(self, a: float, b: float):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(a, dtype=DT))
        self.b = torch.nn.Parameter(torch.tensor(b, dtype=DT))

    def forward(self, x):
        return x[:, 0] * (self.a**2 - 1) + x[:, 1] * self.b


def double_well() -> Problem:
    return Problem(Module(DoubleWell(0.0, 0.0), d_in=2), torch.eye(2, dtype=DT), torch.zeros(2, dtype=DT))


def test_classify_the_double_well():
    problem = double_well()
    saddle = classify(problem, torch.tensor([0.0, 0.0], dtype=DT))  # L'' = diag(−2, 1)
    assert saddle.kind == "saddle" and saddle.min_eig == pytest.approx(-2.0) and saddle.max_eig == pytest.approx(1.0)
    assert "both signs" in saddle.reason
    minimum = classify(problem, torch.tensor([1.0, 0.0], dtype=DT))  # L'' = diag(4, 1)
    assert minimum.kind == "minimum" and minimum.min_eig == pytest.approx(1.0)
    moving = classify(problem, torch.tensor([0.5, 0.3], dtype=DT))
    assert moving.kind == "not a critical point" and moving.grad_norm > 0.1


def test_classify_a_one_dimensional_maximum():
    problem = Problem(Module(DoubleWell(0.0, 0.0), d_in=2), torch.tensor([[1.0, 0.0]], dtype=DT), torch.zeros(1, dtype=DT))
    sub = problem.restrict(["a"], at={"a": torch.tensor(0.0, dtype=DT), "b": torch.tensor(0.0, dtype=DT)})
    res = classify(sub, torch.tensor([0.0], dtype=DT))  # (a² − 1)² at a = 0: L'' = −4
    assert res.kind == "maximum" and res.max_eig == pytest.approx(-4.0)


def test_classify_a_least_squares_solution_as_a_minimum():
    X = torch.linspace(-1, 1, 25, dtype=DT)
    problem = Problem(Polynomial(1, 4), X, torch.cos(3 * X))
    theta = problem.flatten(least_squares(problem))
    res = classify(problem, theta)
    assert res.kind == "minimum" and res.grad_norm < 1e-10 and res.converged
    assert classify(problem, theta + 0.1).kind == "not a critical point"
    two_layer = Problem(TwoLayer(1, 40, "tanh"), X, torch.cos(3 * X))  # in v alone: p = 40 > 30, Lanczos
    sub = two_layer.restrict(["v"], at=two_layer.init(seed=0))
    res = classify(sub, sub.flatten(least_squares(sub, ridge=1e-3)), grad_tol=1e-6)
    assert res.kind == "not a critical point"  # ridge moved the minimiser of the unpenalised loss
    ridge = Problem(TwoLayer(1, 40, "tanh"), X, torch.cos(3 * X), l2=1e-3).restrict(["v"], at=two_layer.init(seed=0))
    res = classify(ridge, ridge.flatten(least_squares(ridge)))
    assert res.kind == "minimum" and res.eigen.method == "lanczos"


def test_classify_is_never_more_confident_than_the_evidence():
    X = torch.linspace(-1, 1, 6, dtype=DT)
    over = Problem(Polynomial(1, 9), X, X**3)  # p = 10 > n = 6: a flat valley of minimisers
    res = classify(over, over.flatten(least_squares(over)))
    assert res.kind == "degenerate" and "cannot decide" in res.reason
    X = torch.linspace(-1, 1, 60, dtype=DT)
    big = Problem(RandomFeatures(1, 50, "tanh"), X, torch.sin(3 * X), l2=1e-2)
    theta = big.flatten(least_squares(big))
    assert classify(big, theta).kind == "minimum"
    starved = classify(big, theta, max_iter=3)  # Lanczos stopped early: no claim beyond the evidence
    assert starved.kind == "inconclusive" and not starved.converged


def test_classify_finds_the_saddle_at_the_origin_of_a_tanh_network():
    X = torch.linspace(-2, 2, 30, dtype=DT)[:, None]
    problem = Problem(TwoLayer(1, 3, "tanh"), X, X[:, 0])
    res = classify(problem, torch.zeros(problem.n_params, dtype=DT))  # f ≡ 0, ∇L = 0; v–W cross terms
    assert res.kind == "saddle" and res.grad_norm == 0.0


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: classify("problem", torch.zeros(2)), "expected a losslab.Problem, got str"),
        (lambda: classify(double_well(), torch.zeros(3, dtype=DT)), r"expected theta of shape \(2,\), got shape \(3,\)"),
        (lambda: classify(double_well(), torch.zeros(2, dtype=DT), grad_tol=-1), "expected grad_tol to be a finite number >= 0"),
        (lambda: hutchinson(MatrixOperator(torch.eye(3)), samples=1), "expected samples to be an integer >= 2, got samples=1"),
        (lambda: hutchpp(MatrixOperator(torch.eye(3)), samples=5), "expected samples to be an integer >= 6, got samples=5"),
        (lambda: spectral_density(MatrixOperator(torch.eye(3)), probes=0), "expected probes to be an integer >= 1"),
        (lambda: spectral_density(MatrixOperator(torch.eye(3)), sigma=0.0), "expected sigma to be a finite number > 0"),
        (lambda: spectral_density(MatrixOperator(torch.eye(3)), grid=[0.0]), r"expected grid of shape \(G,\) with G >= 2"),
        (lambda: hutchinson(HessianOperator(double_well(), torch.zeros(2, dtype=DT)), torch.zeros(2)), "expected theta=None"),
    ],
)
def test_bad_input_raises_a_clear_error(make, match):
    with pytest.raises(LosslabError, match=match):
        make()
