"""Experiment 4: more data tames the large basis — the overfitting of experiment 3 is variance, and it averages out.

The degree-15 polynomial basis (16 features) that overfits 20 samples is fitted by least squares to
n = 20 … 10⁴ noisy samples of the cubic g(x) = x³ − x, x ~ Uniform(−1, 1). The basis contains g, so
the fit has no bias and its excess error is pure variance: for fixed inputs,

    E_ε[(f̂(x) − g(x))²] = σ²·φ(x)ᵀ(ΦᵀΦ)⁻¹φ(x),   and   E_x[φ(x)ᵀ(ΦᵀΦ)⁻¹φ(x)] ≈ p/n  for large n,

so the exact excess test error E_x[(f̂ − g)²] (Gauss–Legendre quadrature, :mod:`._polyfit`) falls
like σ²·p/n — tenfold per decade of n — and the test error E[(f̂(x) − y)²] tends to σ². Near the
ends of [−1, 1] the leverage is largest, up to (k + 1)²/n for degree k (the Christoffel function of
the Legendre basis), so the pointwise standard deviation of f̂ there is about σ·(k + 1)/√n — at n = 10⁴
and k = 15, 0.16σ — and the largest deviation over [−1, 1], a small multiple of it, is below σ: the
whole fitted curve lies within one noise standard deviation of the truth.

The excess error of a single draw fluctuates by a factor 2–3 either way (a weighted χ² with few
effective degrees of freedom, the weights concentrated at the ends), so each n is fitted to
``repeats`` independent training sets and the errors averaged.

Data: the r-th training set at the i-th size is ``polynomial_1d(ns[i], coefs=truth, noise=noise,
seed=child_seed(seed, "data", i, r))`` (:mod:`losslab.random_streams`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..random_streams import child_seed
from ._polyfit import CUBIC, TRUTH, draw, excess_error, fit, polyval
from .base import Claim, Measured, claim
from .settings import Integer, Integers, Real, Rule, Settings, setting
from .story import from_argument

__all__ = ["EXPERIMENT", "QUICK", "MoreDataMeasured", "MoreDataSettings", "claims", "measure"]


GRID = 2001  # points of the grid on [−1, 1] where the largest deviation |f̂ − g| is taken


@dataclass(frozen=True)
class MoreDataSettings(Settings):
    """Settings of the more-data experiment (defaults: the full run)."""

    degree: int = setting(15, Integer(1, 30), "degree of the (large) polynomial basis")
    ns: tuple[int, ...] = setting((20, 50, 100, 200, 500, 1000, 2000, 5000, 10000), Integers(1, 200_000, max_len=10, increasing=True),
                                  "training-set sizes")
    repeats: int = setting(3, Integer(1, 100), "independent training sets per size (the errors are averaged over them)")
    noise: float = setting(0.1, Real(0, low_open=True), "standard deviation σ of the label noise")
    truth: tuple[float, ...] = setting(CUBIC, TRUTH, "the target's coefficients, constant term first")

    RULES = (
        Rule(lambda s: len(s.truth) - 1 <= s.degree, "degree of truth <= degree (the basis must contain the target)",
             ("truth", "degree"), {"degree": 2}),
        Rule(lambda s: s.ns[0] >= s.degree + 2, "every n >= degree + 2 (more examples than features)",
             ("ns", "degree"), {"ns": (10, 100)}),
    )


QUICK = {"ns": (20, 200, 2000, 10000)}


@dataclass(frozen=True)
class MoreDataMeasured(Measured):
    """What the more-data experiment measured (errors are exact population values, means over the repeats)."""

    ns: list[int]
    degree: int
    repeats: int
    truth: tuple[float, ...]
    noise_variance: float
    excess: list[float]  # E_x[(f̂ − g)²], mean over the repeats
    test_mse: list[float]  # excess + σ²
    max_deviation: list[float]  # max over the grid of |f̂ − g|, worst of the repeats
    decade_starts: list[int]  # the n of each pair (n, 10n) among ns
    decade_ratios: list[float]  # excess(n)/excess(10n) for those n
    thetas: list[torch.Tensor]  # the fit to the first draw at each n (for the figure)


def measure(settings: MoreDataSettings, seed: int, say) -> MoreDataMeasured:
    """Fit the degree-``degree`` basis at every n; the exact excess error, and the largest deviation on a grid."""
    s2 = settings.noise**2
    grid = torch.linspace(-1, 1, GRID, dtype=torch.float64)
    truth_on_grid = polyval(settings.truth, grid)
    excess, thetas, sup = [], [], []
    for i, n in enumerate(settings.ns):
        say(f"n = {n}")
        errs, devs = [], []
        for r in range(settings.repeats):
            X, y = draw(n, settings.truth, settings.noise, child_seed(seed, "data", i, r))
            theta = fit(X, y, settings.degree).theta
            if r == 0:
                thetas.append(theta)
            errs.append(excess_error(theta, settings.truth))
            devs.append(float((polyval(theta, grid) - truth_on_grid).abs().max()))
        excess.append(sum(errs) / len(errs))
        sup.append(max(devs))
    ns = settings.ns
    decades = [(a, b) for a in range(len(ns)) for b in range(len(ns)) if ns[b] == 10 * ns[a]]
    return MoreDataMeasured(
        ns=list(ns), degree=settings.degree, repeats=settings.repeats, truth=settings.truth, noise_variance=s2, excess=excess,
        test_mse=[e + s2 for e in excess], max_deviation=sup, decade_starts=[ns[a] for a, _ in decades],
        decade_ratios=[excess[a] / excess[b] for a, b in decades], thetas=thetas,
    )


def claims(settings: MoreDataSettings, m: MoreDataMeasured) -> tuple[Claim, ...]:
    """The large basis reaches the noise level; its excess error falls over every decade of n; the fit nears the truth."""
    ns, excess, sup, ratios, s2 = m.ns, m.excess, m.max_deviation, m.decade_ratios, m.noise_variance
    p = m.degree + 1
    return (
        claim("large-basis-reaches-noise-level", "with enough data the large basis reaches the noise level",
              excess[-1] <= 0.1 * s2,
              "excess test MSE at n = {n} (mean of {reps} draws) = {e:.2e} ≤ 10% of σ² = {bound:.0e} "
              "(test MSE {t:.5f} vs σ² = {s2:.5f}; σ²·p/n = {pred:.1e})",
              plain="The fit's extra error beyond the unavoidable noise is under a tenth of the noise variance, close to the "
                    "σ²·p/n that theory predicts for a basis of p features fitted to n examples.",
              n=ns[-1], reps=m.repeats, e=excess[-1], bound=0.1 * s2, t=excess[-1] + s2, s2=s2, pred=s2 * p / ns[-1]),
        claim("excess-falls-every-decade",
              "the excess error falls steadily with n: over every decade of n by at least a factor 2 (theory: 10)",
              bool(ratios) and min(ratios) >= 2,
              "excess(n)/excess(10n) for n = {pairs}: {ratios} — smallest {low:.3g} ≥ 2",
              pairs=", ".join(str(n) for n in m.decade_starts),
              ratios=", ".join(f"{r:.3g}" for r in ratios), low=min(ratios) if ratios else float("nan")),
        claim("fit-within-noise-of-truth",
              "the fitted curve converges to the truth: within one noise standard deviation everywhere on [−1, 1]",
              sup[-1] <= settings.noise,
              "max_x |f̂(x) − g(x)| at n = {n} (worst of {reps} draws) = {d:.3f} ≤ σ = {s} (pointwise standard deviation at "
              "the ends ≈ σ(k + 1)/√n = {pred:.3f}; at n = {n0}: {d0:.3g})",
              plain="Even at the worst point of [−1, 1], where a polynomial fit wobbles most, the fitted curve is closer to the "
                    "truth than one noise standard deviation.",
              n=ns[-1], reps=m.repeats, d=sup[-1], s=settings.noise, pred=settings.noise * p / ns[-1] ** 0.5, n0=ns[0], d0=sup[0]),
    )


EXPERIMENT = from_argument("more-data", settings=MoreDataSettings, quick=QUICK, measure=measure, claims=claims)
