"""Experiment 5: bias², variance and noise against the basis size — the U-shaped test error.

Fixed design (Hastie, Tibshirani & Friedman 2009, §7.3): n inputs x_i ~ Uniform(−1, 1) are drawn once;
the labels y_i = g(x_i) + σε_i (g(x) = x³ − x) are redrawn R times. Each draw r is fitted by least
squares with the degree-k polynomial basis (one batched ``gelsd`` solve over the R right-hand sides),
giving fitted values F_ir = f̂_r(x_i). The error is measured at the same inputs with fresh noise
(in-sample prediction error), E over the fresh noise taken exactly:

    Err_r = (1/n) Σ_i E[(f̂_r(x_i) − y'_i)²] = (1/n) Σ_i (F_ir − g_i)² + σ².

Averaged over the draws, with f̄_i = mean_r F_ir, it splits exactly (an identity on the sample):

    mean_r Err_r = (1/n)Σ_i (f̄_i − g_i)²  +  (1/n)Σ_i mean_r (F_ir − f̄_i)²  +  σ²
                 =          bias²         +           variance            +  noise.

The theory is exact for this design. With H_k the hat matrix of the first k + 1 monomials (a rank-p
projection, p = k + 1, nested in k) and ε̄ the mean noise over the draws:

* bias² = (1/n)‖(I − H_k)g‖² + (1/n)‖H_k ε̄‖²: the first term, the squared distance from g to a growing
  subspace, never increases; the second, the Monte-Carlo error of the R-draw mean, is σ²/(nR)·χ²_p and
  grows by σ²/(nR)·χ²₁ per added feature — so bias² is non-increasing up to 16σ²/(nR) per step
  (P(χ²₁ > 16) ≈ 6·10⁻⁵);
* variance = σ²/(nR)·χ²_{p(R−1)}: mean σ²·p(R − 1)/(nR) — each feature adds σ²/n — relative standard
  deviation √(2/(p(R − 1))), and it increases with k for every sample of draws (nested projections).

With the cubic target the total is smallest at degree 3 and rises linearly in p after it, by the
factor (1 + p_max/n)/(1 + 4/n) (1.5 for n = 20, degree 15) — the right arm of the U. Off the training
inputs the large bases swing far more (experiment 3); this experiment measures where the exact theory
lives.

Data: the inputs are ``polynomial_1d(n, coefs=truth, noise=0, seed=seed)`` (whose labels are g(x_i));
the noise draws are ``noise·torch.randn(n, draws)`` from ``generator(seed, "noise", 0)``, and the
fresh test noise (a Monte-Carlo cross-check, not used by the claims) from ``generator(seed, "noise", 1)``
(:mod:`losslab.random_streams`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from ..models import Polynomial
from ..random_streams import generator
from ._polyfit import CUBIC, TRUTH, draw
from .base import Claim, Measured, claim
from .settings import Integer, Real, Rule, Settings, setting
from .story import from_argument

__all__ = [
    "EXPERIMENT", "QUICK", "BiasVarianceMeasured", "BiasVarianceSettings", "Decomposition", "claims", "decompose", "measure",
    "repeated_fits",
]


UNIT_ROUNDOFF = 2.0**-53
GRID = 201  # points on [−1, 1] where the mean fit and its spread are shown


@dataclass(frozen=True)
class BiasVarianceSettings(Settings):
    """Settings of the bias–variance experiment (defaults: the full run)."""

    n: int = setting(20, Integer(3), "training inputs (fixed across draws)")
    max_degree: int = setting(15, Integer(2, 30), "degrees 0 … max_degree are fitted")
    draws: int = setting(1000, Integer(2), "noise redraws R")
    noise: float = setting(0.2, Real(0, low_open=True), "standard deviation σ of the label noise")
    truth: tuple[float, ...] = setting(CUBIC, TRUTH, "the target's coefficients, constant term first")

    RULES = (
        Rule(lambda s: s.max_degree <= s.n - 1, "max_degree <= min(n - 1, 30) (a least-squares fit, not an interpolation family)",
             ("max_degree", "n"), {"max_degree": 20}),
        Rule(lambda s: s.n * s.draws <= 10_000_000, "n × draws <= 10,000,000", ("n", "draws"), {"draws": 1_000_000}),
    )


QUICK = {"draws": 200}


def repeated_fits(X: torch.Tensor, Y: torch.Tensor, degree: int) -> torch.Tensor:
    """Least-squares coefficients of ``Polynomial(1, degree)`` for every column of Y, in one ``gelsd`` solve.

    Args:
        X: inputs, shape (n, 1).
        Y: label draws, shape (n, R).
        degree: the basis degree k.

    Returns:
        Θ of shape (k + 1, R): column r minimises ‖Φθ − Y[:, r]‖ (minimum-norm if Φ is rank-deficient).
    """
    features = Polynomial(1, degree).features(X)
    return torch.linalg.lstsq(features, Y, driver="gelsd").solution


@dataclass(frozen=True)
class Decomposition:
    """Per degree (each a list over degrees 0 … max_degree): the sample decomposition and its references.

    Attributes:
        bias2, variance: (1/n)Σ(f̄ − g)² and (1/n)Σ mean_r (F − f̄)².
        noise: σ² (the exact expectation over fresh test noise).
        total: bias2 + variance + noise.
        direct: mean_r (1/n)Σ(F_r − g)² + σ², computed without the split.
        fresh: mean_r (1/n)Σ(F_r − y'_r)² with fresh noisy labels y' (Monte Carlo).
        variance_theory: σ²·p(R − 1)/(nR), the expected sample variance.
    """

    bias2: list[float]
    variance: list[float]
    noise: float
    total: list[float]
    direct: list[float]
    fresh: list[float]
    variance_theory: list[float]


def decompose(X: torch.Tensor, g: torch.Tensor, Y: torch.Tensor, fresh: torch.Tensor, noise: float, degrees) -> Decomposition:
    """Bias², variance and noise of the least-squares fits of every degree, at the training inputs.

    Args:
        X: inputs (n, 1); g: noiseless targets g(x_i), (n,); Y: label draws (n, R);
        fresh: fresh noisy labels for the cross-check (n, R); noise: σ; degrees: the degrees to fit.
    """
    n, R = Y.shape
    out: dict[str, list[float]] = {k: [] for k in ("bias2", "variance", "total", "direct", "fresh", "variance_theory")}
    for degree in degrees:
        F = Polynomial(1, degree).features(X) @ repeated_fits(X, Y, degree)
        mean = F.mean(1)
        bias2 = float(((mean - g) ** 2).mean())
        variance = float(((F - mean[:, None]) ** 2).mean())
        out["bias2"].append(bias2)
        out["variance"].append(variance)
        out["total"].append(bias2 + variance + noise**2)
        out["direct"].append(float(((F - g[:, None]) ** 2).mean()) + noise**2)
        out["fresh"].append(float(((F - fresh) ** 2).mean()))
        out["variance_theory"].append(noise**2 * (degree + 1) * (R - 1) / (n * R))
    return Decomposition(noise=noise**2, **out)


@dataclass(frozen=True)
class BiasVarianceMeasured(Measured):
    """What the bias–variance experiment measured: the decomposition per degree, and the spread of a few fits on [−1, 1]."""

    n: int
    draws: int
    sigma: float  # the noise standard deviation σ
    truth: tuple[float, ...]
    degrees: list[int]
    bias2: list[float]
    variance: list[float]
    noise: float  # σ²
    total: list[float]
    direct: list[float]
    fresh_labels: list[float]
    variance_theory: list[float]
    best_degree: int
    x: torch.Tensor  # the training inputs (n,)
    g: torch.Tensor  # the target at them
    band_x: torch.Tensor  # GRID points on [−1, 1]
    band_degrees: list[int]  # degree 1, the best degree and max_degree
    band_mean: list[torch.Tensor]  # per band degree: the mean fit over the draws on band_x
    band_sd: list[torch.Tensor]  # and its standard deviation over the draws


def measure(settings: BiasVarianceSettings, seed: int, say) -> BiasVarianceMeasured:
    """Redraw the noise ``draws`` times at fixed inputs; decompose the in-sample test error for every degree."""
    n, R, s = settings.n, settings.draws, settings.noise
    X, g = draw(n, settings.truth, 0.0, seed)
    Y = g[:, None] + s * torch.randn(n, R, generator=generator(seed, "noise", 0), dtype=torch.float64)
    fresh = g[:, None] + s * torch.randn(n, R, generator=generator(seed, "noise", 1), dtype=torch.float64)
    degrees = list(range(settings.max_degree + 1))
    say(f"{len(degrees)} degrees × {R} draws")
    dec = decompose(X, g, Y, fresh, s, degrees)
    best = min(degrees, key=dec.total.__getitem__)
    grid = torch.linspace(-1, 1, GRID, dtype=torch.float64)
    band_degrees = sorted({1, best, settings.max_degree})
    means, sds = [], []
    for degree in band_degrees:
        curves = grid[:, None] ** torch.arange(degree + 1, dtype=torch.float64) @ repeated_fits(X, Y, degree)  # (GRID, R)
        means.append(curves.mean(1))
        sds.append(curves.std(1))
    return BiasVarianceMeasured(
        n=n, draws=R, sigma=s, truth=settings.truth, degrees=degrees, bias2=dec.bias2, variance=dec.variance, noise=dec.noise,
        total=dec.total, direct=dec.direct, fresh_labels=dec.fresh, variance_theory=dec.variance_theory, best_degree=best,
        x=X[:, 0], g=g, band_x=grid, band_degrees=band_degrees, band_mean=means, band_sd=sds,
    )


def claims(settings: BiasVarianceSettings, m: BiasVarianceMeasured) -> tuple[Claim, ...]:
    """The parts add up; bias² never increases and the variance grows with the basis; the total is U-shaped."""
    n, R, best, dmax = m.n, m.draws, m.best_degree, m.degrees[-1]
    identity_gap = max(abs(t - d) / d for t, d in zip(m.total, m.direct, strict=True))
    identity_bound = 10 * n * R * UNIT_ROUNDOFF
    bias_rise = max(b - a for a, b in itertools.pairwise(m.bias2))
    bias_allowance = 16 * m.noise / (n * R)
    var_steps = min(b - a for a, b in itertools.pairwise(m.variance))
    pairs = zip(m.variance, m.variance_theory, strict=True)
    var_dev = [abs(v / t - 1) / math.sqrt(2 / ((k + 1) * (R - 1))) for k, (v, t) in enumerate(pairs)]
    ends = min(m.total[0], m.total[-1]) / m.total[best]
    return (
        claim("decomposition-adds-up", "the decomposition adds up: bias² + variance + noise equals the directly averaged test error",
              identity_gap <= identity_bound,
              "max over degrees |bias² + variance + σ² − direct mean| / direct = {gap:.1e} ≤ 10·n·R·u = {bound:.1e} "
              "(fresh noisy labels, Monte Carlo: {fresh:.4f} vs {total:.4f} at degree {best})",
              plain="The three parts add up to the directly averaged error to within floating-point rounding (u is the "
                    "rounding unit of double precision), and fresh noisy labels give about the same error.",
              gap=identity_gap, bound=identity_bound, fresh=m.fresh_labels[best], total=m.total[best], best=best),
        claim("bias-never-increases", "bias² never increases with the basis size",
              bias_rise <= bias_allowance,
              "max over k of bias²(k + 1) − bias²(k) = {rise:.1e} ≤ Monte-Carlo allowance 16σ²/(nR) = {tol:.1e}; "
              "bias² falls from {b0:.4f} (degree 0) to {bend:.1e} (degree {dmax})",
              plain="Adding a feature never moves the average fit away from the truth, apart from a tiny wobble that comes from "
                    "averaging a finite number of noise draws.",
              rise=bias_rise, tol=bias_allowance, b0=m.bias2[0], bend=m.bias2[-1], dmax=dmax),
        claim("variance-increases", "the variance increases with the basis size, by σ²/n per feature",
              var_steps > 0 and max(var_dev) <= 4,
              "min over k of variance(k + 1) − variance(k) = {step:.1e} > 0; variance vs σ²·p(R − 1)/(nR): largest deviation "
              "{dev:.2f} standard deviations ≤ 4 (degree {dmax}: {v:.5f} vs {t:.5f})",
              plain="Every added feature lets the fit follow the noise a little more, and the measured variance agrees with the "
                    "textbook formula to within its expected random scatter.",
              step=var_steps, dev=max(var_dev), dmax=dmax, v=m.variance[-1], t=m.variance_theory[-1]),
        claim("test-error-u-shaped", "the test error is U-shaped: its minimum lies strictly inside the degree range",
              0 < best < dmax and ends >= 1.25,
              "minimum {tmin:.4f} at degree {best}; degree 0: {t0:.4f}, degree {dmax}: {tend:.4f}, both ≥ 1.25 × the minimum "
              "(smaller ratio {ends:.2f}; theory for the right end with the cubic target: (1 + {pmax}/n)/(1 + 4/n) = {pred:.2f})",
              tmin=m.total[best], best=best, t0=m.total[0], dmax=dmax, tend=m.total[-1], ends=ends,
              pmax=dmax + 1, pred=(1 + (dmax + 1) / n) / (1 + 4 / n)),
    )


EXPERIMENT = from_argument("bias-variance", settings=BiasVarianceSettings, quick=QUICK, measure=measure, claims=claims)
