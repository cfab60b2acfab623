"""Experiment 3: too many features on few noisy samples — training error → 0 while the test error blows up.

Fit polynomial bases of degree 0, 1, …, n − 1 by least squares to n = 15 noisy samples of the cubic
g(x) = x³ − x whose inputs cover [−1, 1] evenly (see Data). The bases are nested, so the training
error (the squared distance from y to a growing subspace) can only fall; at degree n − 1 there are as
many features as examples and the fit interpolates: training error 0, noise included. Between the
samples the interpolant swings wildly — the exact test error E[(f̂(x) − y)²] = E[(f̂ − g)²] + σ² for
x ~ Uniform(−1, 1) (Gauss–Legendre quadrature, :mod:`._polyfit`) is orders of magnitude above its
minimum, which lies at a low degree: 3, the target's, at most seeds. There the fit follows the truth:
its excess error E[(f̂ − g)²] is below the noise variance σ² (checked at the run's seed).

Why the inputs are stratified: the test error is measured on all of [−1, 1], so i.i.d. uniform inputs
that happen to leave a gap make the best degree the one that extrapolates least into the gap — a
straight line for a cubic target (15 i.i.d. draws at seed 40 leave [0.36, 1] empty; the best degree
was 1 at 5 of seeds 0–199) — which is not the lesson. One input per cell leaves no gap wider than two
cells, and a uniformly chosen one of the inputs is still Uniform(−1, 1). Over seeds 0–199 the best degree was 3 at 164 seeds, 4–6 at 35
and 8 at one, never below 3, and the excess error at the best degree was below σ² at 199 of them
(1.12σ² at the other).

The monomial basis on [−1, 1] is ill-conditioned at high degree, the more so when two inputs fall
close together. The library's least squares uses LAPACK ``gelsd`` (SVD), which is backward stable,
so the training residual is accurate to about u·cond(Φ)·‖y‖ (Higham 2002, §20.1); the monotonicity
of the training error is checked to that allowance. ``gelsd`` treats singular values below
n·ε·σ_max (ε = 2⁻⁵²) as zero, so a square system with cond(Φ) > 1/(n·ε) ≈ 3e14 (n = 15) is
numerically rank-deficient and cannot be interpolated in float64. Stratified inputs keep the
interpolating system far from that: in 20 000 draws at n = 15 (degree 14) the median cond(Φ) was
3e6 and the largest 3e8, at n = 20 (degree 19) 9e8 and 1.5e11, and none was rank-deficient (i.i.d.
uniform inputs: median 3e8 and 0.17% rank-deficient at n = 15; 2e11 and 6% at n = 20). The
interpolation claim reports the rank.

Data (:func:`stratified_draw`): from ``generator(seed, "data")`` (:mod:`losslab.random_streams`)
draw u ~ Uniform(0, 1)ⁿ, then ε ~ N(0, 1)ⁿ; x_i = −1 + 2(i + u_i)/n for i = 0, …, n − 1 (one input
uniform in each of n equal cells of [−1, 1], in increasing order) and y_i = g(x_i) + σ·ε_i with g
evaluated by Horner's rule (:func:`._polyfit.polyval`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from ..random_streams import generator
from ._polyfit import CUBIC, TRUTH, excess_error, fit, polyval
from .base import Claim, Measured, claim
from .settings import Integer, Real, Rule, Settings, setting
from .story import from_argument

__all__ = ["EXPERIMENT", "QUICK", "OverfittingMeasured", "OverfittingSettings", "claims", "measure", "stratified_draw"]


UNIT_ROUNDOFF = 2.0**-53


@dataclass(frozen=True)
class OverfittingSettings(Settings):
    """Settings of the overfitting experiment (defaults: the full run)."""

    n: int = setting(15, Integer(3), "training examples (few), one in each of n equal cells of [−1, 1]")
    max_degree: int = setting(14, Integer(2, 30), "the largest degree fitted (>= n − 1, so that the largest basis interpolates)")
    noise: float = setting(0.1, Real(0, low_open=True), "standard deviation σ of the label noise")
    truth: tuple[float, ...] = setting(CUBIC, TRUTH, "the target's coefficients, constant term first")

    RULES = (
        Rule(lambda s: s.n - 1 <= s.max_degree, "n - 1 <= max_degree (the largest basis must be able to interpolate the n examples)",
             ("n", "max_degree"), {"max_degree": 10}),
    )


QUICK: dict = {}


def stratified_draw(n: int, truth: tuple[float, ...], noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n noisy samples of the polynomial ``truth`` with one input uniform in each of n equal cells of [−1, 1].

    From ``generator(seed, "data")``: u ~ Uniform(0, 1)ⁿ, then ε ~ N(0, 1)ⁿ;
    x_i = −1 + 2(i + u_i)/n, y_i = Σ_k truth_k x_iᵏ + noise·ε_i.

    Returns:
        ``(X, y)``: float64 tensors of shapes (n, 1) (increasing) and (n,).

    Example:
        >>> X, y = stratified_draw(4, (0.0, 1.0), 0.0, seed=0)
        >>> [int((x + 1) // 0.5) for x in X[:, 0]], bool(torch.equal(y, X[:, 0]))
        ([0, 1, 2, 3], True)
    """
    g = generator(seed, "data")
    u = torch.rand(n, generator=g, dtype=torch.float64)
    x = -1 + 2 * (torch.arange(n, dtype=torch.float64) + u) / n
    y = polyval(truth, x) + noise * torch.randn(n, generator=g, dtype=torch.float64)
    return x[:, None], y


@dataclass(frozen=True)
class OverfittingMeasured(Measured):
    """What the overfitting experiment measured: per degree 0 … max_degree, on one training set.

    ``test_mse`` is exact (E[(f̂ − g)²] + σ² for x ~ Uniform(−1, 1)); ``best_excess`` is E[(f̂ − g)²]
    at ``best_degree`` (``excess_degree_1`` that of the straight line, for comparison);
    ``monotone_allowance`` is the rounding allowance (10u·cond_max)²·mean(y²) of the monotonicity check.
    """

    degrees: list[int]
    train_mse: list[float]
    test_mse: list[float]
    condition: list[float]  # cond(Φ) of the monomial features on the training inputs
    rank: list[int]  # numerical rank of Φ (gelsd)
    best_degree: int
    noise_variance: float
    theta_best: torch.Tensor
    theta_max: torch.Tensor
    monotone_allowance: float
    best_excess: float
    excess_degree_1: float
    truth: tuple[float, ...]
    x: torch.Tensor  # the training inputs (n,), increasing
    y: torch.Tensor  # their noisy labels (n,)


def measure(settings: OverfittingSettings, seed: int, say) -> OverfittingMeasured:
    """Fit degrees 0 … max_degree to the same n samples; record training error, exact test error and cond(Φ)."""
    X, y = stratified_draw(settings.n, settings.truth, settings.noise, seed)
    s2 = settings.noise**2
    thetas, train, test, conds, ranks = [], [], [], [], []
    say(f"fitting degrees 0…{settings.max_degree} to n = {settings.n} samples")
    for degree in range(settings.max_degree + 1):
        res = fit(X, y, degree)
        thetas.append(res.theta)
        train.append(res.residual)
        test.append(excess_error(res.theta, settings.truth) + s2)
        conds.append(float(torch.linalg.cond(res.features)))
        ranks.append(res.rank)
    best = min(range(len(test)), key=test.__getitem__)
    allowance = (10 * UNIT_ROUNDOFF * max(conds)) ** 2 * float(y.pow(2).mean())
    return OverfittingMeasured(
        degrees=list(range(settings.max_degree + 1)), train_mse=train, test_mse=test, condition=conds, rank=ranks,
        best_degree=best, noise_variance=s2, theta_best=thetas[best], theta_max=thetas[-1], monotone_allowance=allowance,
        best_excess=excess_error(thetas[best], settings.truth), excess_degree_1=excess_error(thetas[1], settings.truth),
        truth=settings.truth, x=X[:, 0], y=y,
    )


def claims(settings: OverfittingSettings, m: OverfittingMeasured) -> tuple[Claim, ...]:
    """Training error monotone and 0 at degree n − 1; the test error blows up; the best-degree fit follows the truth."""
    train, test, conds, s2, best = m.train_mse, m.test_mse, m.condition, m.noise_variance, m.best_degree
    interp = settings.n - 1
    rise = max(b - a for a, b in itertools.pairwise(train))
    return (
        claim("training-error-monotone", "more features never increase the training error (the bases are nested)",
              rise <= m.monotone_allowance,
              "max over k of train MSE(k + 1) − train MSE(k) = {rise:.1e} ≤ rounding allowance (10u·cond_max)²·mean(y²) "
              "= {tol:.1e} (cond_max = {cond:.1e})",
              plain="No step up in degree raised the training error by more than floating-point rounding could.",
              rise=rise, tol=m.monotone_allowance, cond=max(conds)),
        claim("interpolates-noisy-data",
              f"with as many features as examples (degree {interp}) the fit interpolates the noisy data: training error ≈ 0",
              train[interp] <= 0.01 * s2,
              "training MSE at degree {d} = {tr:.1e} ≤ 1% of the noise variance σ² = {s2:.0e} (an honest fit cannot go below "
              "about σ²(1 − p/n)); numerical rank {rank} of {n}, cond(Φ) = {cond:.1e}",
              d=interp, tr=train[interp], s2=s2, rank=m.rank[interp], n=settings.n, cond=conds[interp]),
        claim("test-error-blows-up", "the test error blows up: far above its minimum, which lies strictly inside the degree range",
              test[-1] >= 10 * test[best] and 0 < best < settings.max_degree,
              "exact test MSE at degree {dmax} = {tmax:.3g} ≥ 10 × the minimum {tmin:.4f} (at degree {best}, strictly between 0 and "
              "{dmax}); ratio {ratio:.2g}",
              dmax=settings.max_degree, tmax=test[-1], tmin=test[best], best=best, ratio=test[-1] / test[best]),
        claim("best-fit-follows-truth", f"the fit at the best test degree ({best}) follows the truth: closer to it than the noise",
              m.best_excess <= s2,
              "E[(f̂ − g)²] at degree {best} = {ex:.2g} = {ratio:.2f}·σ² ≤ σ² = {s2:.0e} (the straight line, degree 1: {ex1:.2g})",
              plain="On average over [−1, 1], the best fit is nearer the true curve than a noisy label is.",
              best=best, ex=m.best_excess, ratio=m.best_excess / s2, s2=s2, ex1=m.excess_degree_1),
    )


EXPERIMENT = from_argument("overfitting", settings=OverfittingSettings, quick=QUICK, measure=measure, claims=claims)
