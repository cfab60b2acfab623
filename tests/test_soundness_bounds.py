"""Soundness of the bounds, checked against exact references rather than the code that computes them.

* Eigenvalue bounds of early-stopped Lanczos runs on operators with known spectra: every value lies
  within its rigorous bound *and* within its gap bound of a true eigenvalue, unconditionally; the
  gap bound's widening by neighbouring residuals is checked on a Rayleigh–Ritz pair built by hand.
* ``classify``: a boundary table of (λ_min ± b_min, λ_max ± b_max) against the zero band ±δ.
* ``least_squares``: the reported residual against the model's own outputs, offset included.
* ``discrete_convexity``: the float64 confirmation on an uneven grid against the exact second derivative.
"""

from __future__ import annotations

import importlib
import math

import pytest
import torch

from losslab import LosslabError, Problem
from losslab.curvature import EigenResult, MatrixOperator, classify, eigs
from losslab.fit import least_squares_result
from losslab.landscape import LineSlice, discrete_convexity
from losslab.models import Linearized, Module, Polynomial, TwoLayer

from _helpers import gen, with_spectrum
from references import dense_eigenvalues

DT = torch.float64


# ---- eigenvalue bounds: unconditional on early-stopped runs with known spectra ---------------


def known_spectra():
    """(name, spectrum): separated outliers over a bulk, a geometric tail, close pairs, a Hessian-like mix."""
    bulk = 2 * torch.rand(194, generator=gen(7), dtype=DT) - 1
    yield "separated", torch.cat([torch.tensor([10.0, 9.0, 7.0, -6.0, -5.0, -4.0], dtype=DT), bulk])
    yield "geometric", torch.cat([10.0 * 0.7 ** torch.arange(12, dtype=DT), -(0.5 ** torch.arange(8, dtype=DT)), 0.01 * bulk[:100]])
    yield "close pairs", torch.cat([torch.tensor([5.0, 4.999, 3.0, 2.99, -1.0, -1.001], dtype=DT), 0.5 * bulk[:80]])


@pytest.mark.parametrize(("name", "values"), list(known_spectra()))
def test_every_early_stopped_value_lies_within_both_its_bounds_of_an_eigenvalue(name, values):
    true = torch.sort(values).values
    scale = float(true.abs().max())
    checked = 0
    for seed in (0, 1, 2):
        A = with_spectrum(values, seed)
        for which in ("largest", "smallest", "both"):
            for k in (1, 3):
                for max_iter in (4, 6, 8, 12, 20, None):
                    res = eigs(MatrixOperator(A), k=k, which=which, max_basis=12, max_iter=max_iter, seed=seed)
                    nearest = (res.values[:, None] - true[None]).abs().min(1).values
                    slack = 1e-12 * scale  # the rounding of the products themselves
                    assert torch.all(nearest <= res.bounds + slack), (name, seed, which, k, max_iter)
                    assert torch.all(nearest <= res.gap_bounds + slack), (name, seed, which, k, max_iter)
                    assert torch.all(res.gap_bounds <= res.bounds)
                    if which != "largest":  # Ritz values are Rayleigh quotients: never below λ_min, never above λ_max
                        assert float(res.values[0]) >= float(true[0]) - slack
                    if which != "smallest":
                        assert float(res.values[-1]) <= float(true[-1]) + slack
                    checked += k
    assert checked == 3 * 3 * 4 * 6


def test_early_stopped_runs_on_a_tiny_net_keep_their_gap_bounds_against_eigvalsh():
    X = torch.linspace(-2, 2, 30, dtype=DT)[:, None]
    problem = Problem(TwoLayer(1, 12, "tanh", out_bias=True), X, torch.sin(2 * X[:, 0]), l2=0.01)
    checked = 0
    for seed in (0, 1, 2):
        theta = problem.init(seed=seed)
        true = dense_eigenvalues(problem.loss, theta)
        scale = float(true.abs().max())
        for which in ("largest", "smallest", "both"):
            for max_iter in (8, 12, 20, None):
                res = eigs(problem, theta, k=3, which=which, max_basis=10, max_iter=max_iter, seed=seed)
                nearest = (res.values[:, None] - true[None]).abs().min(1).values
                assert torch.all(nearest <= res.gap_bounds + 1e-12 * scale), (seed, which, max_iter)
                checked += 3
    assert checked == 108


def test_the_estimated_gap_is_narrowed_by_the_neighbours_residual():
    """Ritz pairs of A = diag(1, 0.55, 0.8, 0) on span{y₁ = (1, ε, 0, 0), y₂ = (0, 0, 1, 1)/√2} (A-orthogonal, so
    both are exact Ritz vectors): θ₁ ≈ 1 converged with error r₁²/0.45 exactly, θ₂ = 0.4 with residual 0.4, whose
    interval holds the eigenvalue 0.8. The true gap at θ₁ is 0.2 (to 0.8): a gap estimated from |θ₁ − θ₂| ≈ 0.6
    alone would bound the error by r₁²/0.6, below its true value; widened by r₂ it is 0.2, and sound."""
    gap_bounds = importlib.import_module("losslab.curvature.ritz")._gap_bounds
    lam = torch.tensor([1.0, 0.55, 0.8, 0.0], dtype=DT)
    A = torch.diag(lam)
    eps = 1e-3
    Y = torch.stack([torch.tensor([1.0, eps, 0.0, 0.0], dtype=DT), torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=DT)], dim=1)
    Y = Y / torch.linalg.vector_norm(Y, dim=0)
    assert abs(float(Y[:, 0] @ A @ Y[:, 1])) < 1e-15  # the projected matrix is diagonal: (y₁, y₂) are the Ritz vectors
    theta = (Y * (A @ Y)).sum(0)
    res = torch.linalg.vector_norm(A @ Y - Y * theta, dim=0)
    order = torch.argsort(theta)
    theta, res = theta[order], res[order]
    bound = float(gap_bounds(theta, res, torch.tensor([1]))[0])
    error = float(lam[0] - theta[1])
    r1, r2, spread = float(res[1]), float(res[0]), float(theta[1] - theta[0])
    assert spread > r1 + r2 and r2 == pytest.approx(0.4)  # two separate clusters, the neighbour poorly converged
    assert error == pytest.approx(r1**2 / 0.45, rel=1e-6)  # Kato–Temple is sharp here (the coupling is to 0.55)
    assert error <= bound < r1  # sound, and still quadratic in r₁
    assert error > r1**2 / spread  # what an unwidened gap estimate would claim: too small


def test_one_cluster_of_touching_ritz_intervals_keeps_its_residuals():
    """Two Ritz values whose residual intervals overlap, and nothing else: no gap to the rest of the spectrum is
    known, so each keeps its residual (Kato–Temple needs a gap; a quadratic bound here would be a guess)."""
    gap_bounds = importlib.import_module("losslab.curvature.ritz")._gap_bounds
    theta, res = torch.tensor([0.0, 0.1], dtype=DT), torch.tensor([0.3, 0.3], dtype=DT)
    assert torch.equal(gap_bounds(theta, res, torch.tensor([0, 1])), res)
    assert torch.equal(gap_bounds(theta[:1], res[:1], torch.tensor([0])), res[:1])


# ---- classify: the decision follows λ ± bound against the zero band ---------------------------


def _fake_eigs(lo: float, blo: float, hi: float, bhi: float, converged: bool):
    def fake(*args, **kwargs) -> EigenResult:
        return EigenResult(
            values=torch.tensor([lo, hi], dtype=DT), vectors=torch.eye(2, dtype=DT), bounds=torch.tensor([blo, bhi], dtype=DT),
            gap_bounds=torch.tensor([blo, bhi], dtype=DT), converged=torch.tensor([converged, converged]), matvecs=2,
            which="both", tol=1e-8, norm_estimate=max(abs(lo), abs(hi)), method="dense", criterion="residual",
        )
    return fake


# (λ_min, its bound, λ_max, its bound, converged, δ, kind): δ is the zero band, |curvature| ≤ δ is zero
CLASSIFY_TABLE = [
    (2e-6, 5e-6, 1.0, 0.0, True, 1e-6, "inconclusive"),  # λ_min ∈ [−3e-6, 7e-6] straddles +δ
    (2e-6, 0.5e-6, 1.0, 0.0, True, 1e-6, "minimum"),  # λ_min ∈ [1.5e-6, 2.5e-6] > δ
    (2e-6, 1e-6, 1.0, 0.0, True, 1e-6, "inconclusive"),  # λ_min − b = δ exactly: not > δ
    (0.5e-6, 0.4e-6, 1.0, 0.0, True, 1e-6, "degenerate"),  # |λ_min| + b ≤ δ and λ_max > δ: semidefinite
    (0.5e-6, 0.6e-6, 1.0, 0.0, True, 1e-6, "inconclusive"),  # |λ_min| + b > δ, λ_min − b < δ
    (-2e-6, 0.5e-6, 1.0, 0.0, True, 1e-6, "saddle"),  # λ_min + b < −δ, λ_max − b > δ
    (-2e-6, 1e-6, 1.0, 0.0, True, 1e-6, "inconclusive"),  # λ_min + b = −δ: negative curvature not certain
    (-2e-6, 0.5e-6, 1.0, 0.0, False, 1e-6, "saddle"),  # both signs are certain even unconverged
    (2e-6, 0.5e-6, 1.0, 0.0, False, 1e-6, "inconclusive"),  # a minimum needs convergence
    (-1.0, 0.0, -2e-6, 0.5e-6, True, 1e-6, "maximum"),
    (-1.0, 0.0, -2e-6, 5e-6, True, 1e-6, "inconclusive"),  # λ_max ∈ [−7e-6, 3e-6] straddles −δ
    (-1.0, 0.0, -0.5e-6, 0.4e-6, True, 1e-6, "degenerate"),
    (-1.0, 0.0, 1.0, 0.0, True, 1e-6, "saddle"),
    (-1.0, 0.0, 1.0, 1.0, True, 1e-6, "inconclusive"),  # λ_max − b = 0 < δ: positive curvature not certain
    (0.2e-6, 0.1e-6, 0.5e-6, 0.5e-6, True, 1e-6, "degenerate"),  # all zero within the band
    (0.5e-6, 0.5e-6, 1.0, 0.0, True, 1e-6, "degenerate"),  # |λ_min| + b = δ exactly: still zero
    (-1.0, 0.0, 0.5e-6, 0.5e-6, True, 1e-6, "degenerate"),  # |λ_max| + b = δ exactly, negative curvature certain
    (-1.0, 0.0, 2e-6, 1e-6, True, 1e-6, "inconclusive"),  # λ_max − b = δ exactly: positive curvature not certain
    (-1.0, 0.0, -2e-6, 1e-6, True, 1e-6, "inconclusive"),  # λ_max + b = −δ exactly: not < −δ
    (0.2e-6, 0.1e-6, 1e-6, 5e-6, True, 1e-6, "inconclusive"),  # λ_min zero, λ_max straddles: not semidefinite yet
    (-1e-6, 5e-6, 0.2e-6, 0.1e-6, True, 1e-6, "inconclusive"),  # λ_max zero, λ_min straddles
]


@pytest.mark.parametrize(("lo", "blo", "hi", "bhi", "converged", "delta", "kind"), CLASSIFY_TABLE)
def test_classify_boundary_table(monkeypatch, lo, blo, hi, bhi, converged, delta, kind):
    module = importlib.import_module("losslab.curvature.classify")
    eig_tol = delta / max(abs(lo), abs(hi))
    if eig_tol >= 1:  # the whole spectrum inside the band: classify refuses eig_tol ≥ 1, so its decision is checked alone
        with pytest.raises(LosslabError, match="expected eig_tol < 1"):
            classify(Problem(Polynomial(1, 1), torch.zeros(3, dtype=DT), torch.zeros(3, dtype=DT)), torch.zeros(2, dtype=DT),
                     eig_tol=eig_tol)
        got, reason = module._decide(lo, blo, hi, bhi, delta, converged)
        assert got == kind, reason
        assert f"±{delta:.3g}" in reason
        if kind == "degenerate":  # every eigenvalue in the band: neither sign is certain
            assert "(zero curvature and zero curvature)" in reason, reason
        return
    monkeypatch.setattr(module, "eigs", _fake_eigs(lo, blo, hi, bhi, converged))
    x = torch.linspace(-1, 1, 5, dtype=DT)
    problem = Problem(Polynomial(1, 1), x, x)  # θ* = (0, 1): a critical point (the eigenvalues are the fake ones)
    res = classify(problem, torch.tensor([0.0, 1.0], dtype=DT), eig_tol=eig_tol)
    assert res.zero_tol == pytest.approx(delta, rel=1e-12)
    assert (res.min_eig, res.min_bound, res.max_eig, res.max_bound) == (lo, blo, hi, bhi)
    assert res.kind == kind, res.reason
    for end in (lo - blo, lo + blo, hi - bhi, hi + bhi, delta):  # the reason shows the intervals decided on
        assert f"{end:.3g}" in res.reason, (end, res.reason)
    if kind == "degenerate":
        sign = "positive" if hi - bhi > delta else "negative" if lo + blo < -delta else "zero"
        assert f"({sign} curvature and zero curvature)" in res.reason


# ---- least squares: the residual is that of the model's own outputs --------------------------


def test_least_squares_residual_includes_the_models_offset():
    """A Linearized net has f(0) ≠ 0: the residual must be of f0 + Φθ*, recomputed here by hand."""
    X = torch.linspace(-2, 2, 20, dtype=DT)[:, None]
    y = torch.sin(2 * X[:, 0])
    base = TwoLayer(1, 6, "tanh")
    p0 = base.init(seed=3)
    problem = Problem(Linearized(base, p0), X, y)
    res = least_squares_result(problem)

    def net(W, b, v):  # v·tanh(Wx + b), written out
        return torch.tanh(X @ W.T + b) @ v

    params = res.params
    delta = tuple(params[k] - p0[k] for k in ("W", "b", "v"))
    f0, df = torch.func.jvp(net, (p0["W"], p0["b"], p0["v"]), delta)
    by_hand = float(((f0 + df - y) ** 2).mean())
    assert float(net(p0["W"], p0["b"], p0["v"]).abs().max()) > 0.1  # the offset matters here
    assert res.residual == pytest.approx(by_hand, rel=1e-9, abs=1e-15)
    assert res.residual == pytest.approx(res.loss, rel=1e-9, abs=1e-15)  # no l2: the loss is the residual


# ---- discrete convexity: float64 confirmation on an uneven grid -------------------------------


class Square(torch.nn.Module):
    """w²·x: with x = 1 and y = 1, L(w) = (w² − 1)², concave for |w| < 1/√3."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.0, dtype=DT))

    def forward(self, x):
        return self.w**2 * x[:, 0]


def test_float64_confirmation_on_an_uneven_grid_keeps_every_true_violation():
    """w = 2t − 1 from a = −1 to b = 1; grid points alternate short and long steps inside the concave part,
    where the slope is large: a second difference with its steps mixed up would change sign."""
    problem = Problem(Module(Square(), d_in=1), [[1.0]], [1.0])
    t = torch.tensor([0.22, 0.23, 0.3, 0.31, 0.4, 0.41, 0.5, 0.58, 0.59, 0.7, 0.71, 0.77], dtype=DT)
    w = 2 * t - 1
    losses = (w**2 - 1) ** 2  # the loss along the line, by hand
    s = LineSlice(t=t, losses=losses, a=torch.tensor([-1.0], dtype=DT), b=torch.tensor([1.0], dtype=DT))
    hl, hr = t[1:-1] - t[:-2], t[2:] - t[1:-1]
    exact = 2 / (hl + hr) * ((losses[2:] - losses[1:-1]) / hr - (losses[1:-1] - losses[:-2]) / hl)
    assert torch.all(exact < -1.0)  # every interior point is concave, far beyond rounding
    plain = discrete_convexity(s)
    torch.testing.assert_close(plain.second_differences[0][1:-1], exact, rtol=1e-12, atol=0)
    # the tolerance is the bound that δ_j = rtol·ε·(|L_j| + max|L|) puts on D (module docstring), each δ_j where it enters
    d = plain.rtol * torch.finfo(DT).eps * (losses.abs() + losses.abs().max())
    by_hand = 2 / (hl + hr) * (d[2:] / hr + d[1:-1] * (1 / hr + 1 / hl) + d[:-2] / hl)
    torch.testing.assert_close(plain.tolerances[0][1:-1], by_hand, rtol=1e-12, atol=0)
    confirmed = discrete_convexity(s, problem=problem)
    assert confirmed.confirmed_in_float64
    assert plain.violations == confirmed.violations == len(t) - 2
    assert torch.equal(confirmed.masks[0], plain.masks[0])
    assert math.isclose(confirmed.most_negative, float(exact.min()), rel_tol=1e-12)
