"""Experiment 14: fixed features show double descent — the test error peaks where the fit starts to interpolate.

The Gaussian model of Belkin, Hsu & Xu (2020), "Two models of double descent for weak features", SIAM
Journal on Mathematics of Data Science 2(4): D features x ~ N(0, I_D), labels y = xᵀβ + σε with ε ~ N(0, 1)
and a fixed β of equal weights β_j = r/√D (so ‖β‖ = r; every feature is weak). The model uses the first p
features, f(x; θ) = x_{1:p}ᵀθ — linear in θ, so its squared loss is convex for every p — fitted by the
minimum-norm least-squares solution θ̂ = X_pᵀ⁺y (LAPACK ``gelsd``, the solver of :func:`losslab.fit.least_squares`;
for p > n it interpolates the n training labels). Its exact population test error needs no test set:

    E[(y − x_{1:p}ᵀθ̂)²] over a fresh (x, y) = ‖θ̂ − β_{1:p}‖² + ‖β_{p+1:D}‖² + σ².

Belkin, Hsu & Xu's theorem for this Gaussian model gives its expectation over the training set: with s² = ‖β_{p+1:D}‖² + σ²,

    p ≤ n − 2:   E = s²·(1 + p/(n − p − 1)),
    p ≥ n + 2:   E = ‖β_{1:p}‖²·(1 − n/p) + s²·(1 + n/(p − n − 1)),

and E = ∞ for p ∈ {n − 1, n, n + 1} (:func:`expected_error`). Hastie, Montanari, Rosset & Tibshirani (2022),
"Surprises in high-dimensional ridgeless least squares interpolation", Annals of Statistics 50(2), give the same
risk curve of minimum-norm least squares in the limit n, p → ∞ with p/n fixed. Both forms of E were checked
against a Monte Carlo of 100,000 training sets per p before being used here (n = 20, D = 60, r = 1, σ = 0.5,
p = 1, 5, 10, 14, 16, 18, 22, 24, 26, 30, 40, 60: every |z| ≤ 2.41). The error rises to the interpolation
threshold p = n and falls again past it: double descent, from statistics alone, since every loss of the sweep is
a convex quadratic.

Setting (defaults): n = 20, D = 60, every p from 1 to D, r = 1, σ = 0.2, 2,000 training sets. Tolerance: the
Monte Carlo mean at each p with |p − n| ≥ 4 must lie within 4 standard errors of the mean (sample standard
deviation / √draws) of E. Closer to n the test is not made: at p = n ± 2 and n ± 3 the error has a finite mean
but an infinite variance (it involves the inverse of a Wishart matrix with fewer than 4 spare degrees of freedom,
whose second moment is infinite), so the sample standard error is unreliable and the mean tends to fall short of
E; a |z| of 4 to 7 was seen there at the quick settings for 5 of 40 seeds. Those z-scores are reported, not judged.

Data: the r-th training set is X (n, D) then ε (n,), both drawn from ``generator(seed, "data", r)``
(:mod:`losslab.random_streams`); every p is fitted to the first p columns of the same draws. The convexity
proof and the library cross-check use the r = 0 set at the largest p, as a :class:`~losslab.models.Linear`
model restricted to its weights (intercept held at 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..convexity import check_convexity
from ..fit import least_squares_result
from ..models import Linear
from ..problem import Problem
from ..random_streams import generator
from ._nonconvex import proof_claim, proof_numbers
from .base import Claim, Measured, claim
from .settings import Integer, Real, Rule, Settings, setting
from .story import from_argument

__all__ = ["EXPERIMENT", "QUICK", "DoubleDescentMeasured", "DoubleDescentSettings", "claims", "draw", "expected_error", "measure",
           "sweep"]

TOLERANCE_Z = 4.0  # |Monte Carlo mean − E| ≤ 4 standard errors at every p with |p − n| ≥ FINITE_VARIANCE
FINITE_VARIANCE = 4  # the test error has a finite variance iff |p − n| ≥ 4 (inverse-Wishart second moments)
AROUND = 3  # every p within this distance of n is in the sweep


@dataclass(frozen=True)
class DoubleDescentSettings(Settings):
    """Settings of the double-descent experiment (defaults: the full run)."""

    n: int = setting(20, Integer(6, 500), "training examples")
    features: int = setting(60, Integer(10, 2000), "D: features of the world, x ~ N(0, I_D); the model uses the first p")
    step: int = setting(1, Integer(1, 1000), "spacing of the p sweep over 1..D (every p within 3 of n, and D, are added)")
    signal: float = setting(1.0, Real(0, 100, low_open=True), "r = ‖β‖, with equal weights β_j = r/√D")
    noise: float = setting(0.2, Real(0, 100, low_open=True), "standard deviation σ of the label noise")
    draws: int = setting(2000, Integer(20, 100_000), "independent training sets per p (errors averaged)")

    RULES = (
        Rule(lambda s: s.features >= s.n + 4, "features >= n + 4 (the sweep reaches past the interpolation threshold)",
             ("features", "n"), {"n": 60}),
        Rule(lambda s: s.draws * s.n * s.features <= 50_000_000, "draws × n × features <= 50,000,000 (the draws held in memory)",
             ("draws", "n", "features"), {"draws": 100_000}),
    )


QUICK = {"n": 10, "features": 30, "draws": 400}


def sweep(n: int, features: int, step: int) -> list[int]:
    """The model sizes p: 1..D in steps of ``step`` (from ``step``), with every p within 3 of n and D itself."""
    ps = set(range(step, features + 1, step)) | {p for p in range(n - AROUND, n + AROUND + 1) if 1 <= p <= features} | {features}
    return sorted(ps)


def expected_error(p: int, n: int, features: int, signal: float, noise: float) -> float:
    """Belkin, Hsu & Xu's exact E[test error] of the minimum-norm fit on p of D equal-weight features (inf for |p − n| ≤ 1)."""
    b2 = signal**2 / features  # β_j²
    s2 = (features - p) * b2 + noise**2
    if p <= n - 2:
        return s2 * (1 + p / (n - p - 1))
    if p >= n + 2:
        return p * b2 * (1 - n / p) + s2 * (1 + n / (p - n - 1))
    return math.inf


def draw(n: int, features: int, signal: float, noise: float, seed: int, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The r-th training set (X (n, D), y (n,)): X then ε from ``generator(seed, "data", r)``, y = Xβ + σε."""
    g = generator(seed, "data", r)
    X = torch.randn(n, features, generator=g, dtype=torch.float64)
    eps = torch.randn(n, generator=g, dtype=torch.float64)
    return X, X @ torch.full((features,), signal / math.sqrt(features), dtype=torch.float64) + noise * eps


@dataclass(frozen=True)
class DoubleDescentMeasured(Measured):
    """What the double-descent experiment measured: per p, the mean exact test error over the draws, its SE and E."""

    n: int
    features: int
    signal: float
    noise_variance: float
    draws: int
    ps: list[int]
    mean: list[float]  # mean over the draws of ‖θ̂ − β_{1:p}‖² + ‖β_{p+1:D}‖² + σ²
    se: list[float]  # sample standard deviation / √draws
    median: list[float]
    expected: list[float]  # Belkin–Hsu–Xu's E (inf for |p − n| ≤ 1)
    z: list[float]  # (mean − E)/se, NaN where E is infinite
    check_p: int  # the p of the convexity proof and the library cross-check
    library_gap: float  # max |θ̂ (batched gelsd) − least_squares_result θ*| / max |θ*| on draw 0 at check_p
    proof: dict  # check_convexity's verdict on that problem (proof_numbers)


def measure(settings: DoubleDescentSettings, seed: int, say) -> DoubleDescentMeasured:
    """Fit the minimum-norm least squares at every p to every draw; the exact test errors, their means and E."""
    s = settings
    n, D = s.n, s.features
    sets = [draw(n, D, s.signal, s.noise, seed, r) for r in range(s.draws)]
    X = torch.stack([x for x, _ in sets])
    y = torch.stack([t for _, t in sets])
    beta = torch.full((D,), s.signal / math.sqrt(D), dtype=torch.float64)
    s2 = s.noise**2
    ps = sweep(n, D, s.step)
    means, ses, medians, expected, zs = [], [], [], [], []
    last = None
    for p in ps:
        theta = torch.linalg.lstsq(X[:, :, :p], y[:, :, None], driver="gelsd").solution[:, :, 0]  # minimum-norm
        err = (theta - beta[:p]).pow(2).sum(1) + beta[p:].pow(2).sum() + s2
        mean, se = float(err.mean()), float(err.std() / math.sqrt(s.draws))
        e = expected_error(p, n, D, s.signal, s.noise)
        means.append(mean)
        ses.append(se)
        medians.append(float(err.median()))
        expected.append(e)
        zs.append((mean - e) / se if math.isfinite(e) else math.nan)
        last = theta[0]
    say(f"swept {len(ps)} model sizes p over {s.draws} training sets")
    p = ps[-1]
    problem = Problem(Linear(p), X[0, :, :p], y[0]).restrict(["w"], at={"w": torch.zeros(p, dtype=torch.float64),
                                                                     "c": torch.zeros((), dtype=torch.float64)})
    fitted = least_squares_result(problem).theta
    gap = float((last - fitted).abs().max() / fitted.abs().max())
    say(f"convexity of the p = {p} loss")
    proof = proof_numbers(check_convexity(problem, seed=seed))
    return DoubleDescentMeasured(
        n=n, features=D, signal=s.signal, noise_variance=s2, draws=s.draws, ps=ps, mean=means, se=ses, median=medians,
        expected=expected, z=zs, check_p=p, library_gap=gap, proof=proof,
    )


def _judged(m: DoubleDescentMeasured) -> list[int]:
    """Indices of the swept p with |p − n| ≥ FINITE_VARIANCE, where the test error has a finite variance."""
    return [i for i, p in enumerate(m.ps) if abs(p - m.n) >= FINITE_VARIANCE]


def _near(m: DoubleDescentMeasured) -> list[int]:
    """Indices of the swept p with 2 ≤ |p − n| < FINITE_VARIANCE: finite mean, infinite variance."""
    return [i for i, p in enumerate(m.ps) if 2 <= abs(p - m.n) < FINITE_VARIANCE]


def claims(settings: DoubleDescentSettings, m: DoubleDescentMeasured) -> tuple[Claim, ...]:
    """Convex for every p; the Monte Carlo matches E where |p − n| ≥ 4; the error peaks at n; more features lower it again."""
    n, ps, mean = m.n, m.ps, m.mean
    judged, near = _judged(m), _near(m)
    worst = max(judged, key=lambda i: abs(m.z[i]))
    loose = max(near, key=lambda i: abs(m.z[i]))
    top = max(range(len(ps)), key=lambda i: mean[i])
    after = ps.index(n + 2)
    best_under = min((i for i in range(len(ps)) if ps[i] <= n - 2), key=lambda i: mean[i])  # p = n − 3 is always swept
    return (
        proof_claim("convex-in-theta", f"the model is linear in θ, so the squared loss is convex for every p (proven at p = {m.check_p})",
                    m.proof),
        claim("mean-matches-exact", "the Monte Carlo mean matches Belkin–Hsu–Xu's exact expectation at every p with "
              f"|p − n| ≥ {FINITE_VARIANCE} (within {TOLERANCE_Z:g} standard errors)",
              abs(m.z[worst]) <= TOLERANCE_Z,
              "worst |z| = |mean − E|/SE = {z:.2f} ≤ {tol:g} over {k} values of p, at p = {p}: {mean:.4f} ± {se:.4f} vs E = {e:.4f} "
              "({draws} training sets per p); not judged: p = n ± 2, n ± 3, where E is finite but the error's variance is "
              "infinite, so no standard error is reliable (there |z| reaches {znear:.2f}, at p = {pnear})",
              plain="At every model size not close to the threshold, the average error of the fits agrees with the paper's formula "
                    "up to the randomness of the finitely many training sets.",
              z=abs(m.z[worst]), tol=TOLERANCE_Z, k=len(judged), p=ps[worst], mean=mean[worst], se=m.se[worst],
              e=m.expected[worst], draws=m.draws, znear=abs(m.z[loose]), pnear=ps[loose]),
        claim("peak-at-threshold", "the test error peaks at the interpolation threshold p = n",
              abs(ps[top] - n) <= 1,
              "largest mean error {e:.1f} at p = {p} (n = {n}; |p − n| = {d} ≤ 1); at p = n − 2 and n + 2: {lo:.2f} and {hi:.2f}",
              plain="The error is largest where the number of features just equals the number of examples, the first size that "
                    "fits the noisy labels exactly.",
              e=mean[top], p=ps[top], n=n, d=abs(ps[top] - n), lo=mean[ps.index(n - 2)], hi=mean[after]),
        claim("second-descent", "past the threshold, more features lower the test error again",
              mean[-1] < mean[after],
              "mean error at p = {pmax}: {emax:.4f} < at p = n + 2 = {p2}: {e2:.4f} (exact {xmax:.4f} and {x2:.4f}); it is {rel} "
              "the best underparameterised mean error, {bu:.4f} at p = {pu}",
              pmax=ps[-1], emax=mean[-1], p2=n + 2, e2=mean[after], xmax=m.expected[-1], x2=m.expected[after],
              rel="lower than" if mean[-1] < mean[best_under] else "not lower than", bu=mean[best_under], pu=ps[best_under]),
    )


EXPERIMENT = from_argument("double-descent", settings=DoubleDescentSettings, quick=QUICK, measure=measure, claims=claims)
