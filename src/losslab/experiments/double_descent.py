"""Experiment 17: fixed features show double descent — the test error peaks where the fit starts to interpolate.

Two models, both linear in their parameters (so every loss of both sweeps is a convex quadratic): p of D Gaussian
features against an exact formula, then N ReLU random features without and with tuned ridge.

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

Random features (the second half). The same shape appears with a nonlinear feature map, against the number N of
features per example: Mei & Montanari 2019 ("The generalization error of random features regression: precise asymptotics
and double descent curve", arXiv:1908.05355) compute the asymptotic test error of ridge regression on N random
features σ(w_a·x) of inputs on the sphere and find the whole double-descent curve: as N grows the error first falls,
peaks around the interpolation threshold (N = n, where a ridgeless fit first interpolates) and descends again past it.
Nakkiran, Venkat, Kakade & Ma 2021 ("Optimal regularization can mitigate double descent", ICLR 2021) prove that
optimally tuned ℓ2 regularisation makes the test error monotone in the model size for isotropic linear regression,
and show empirically that it mitigates double descent in more general models, random features among them.
Only these qualitative shapes are cited; no number of either paper is compared with.
Setting (defaults; :mod:`losslab.experiments._random_features_descent` gives the details): n = 100 training examples,
x uniform on the sphere of radius √d in R^d, d = 20, y = ⟨β, x⟩ + τε with ‖β‖ = 1 and τ = 0.5, N ReLU random
features (:class:`~losslab.models.RandomFeatures`) for N/n on a grid of 20 ratios from 0.1 to 5, 20 draws of target,
data and features; each fit's test error on 2,000 fresh inputs. The ridgeless fit is the minimum-norm least-squares
solution; the ridge fit takes, per N and per draw, the λ of the grid 10⁻⁶, 10⁻⁵·⁵, …, 10 with the least error on n
held-out validation examples. Claims and tolerances: the mean ridgeless error is largest at a grid width with
N/n ∈ [0.8, 1.25]; the tuned-ridge mean error never rises from one width to the next by more than 2 paired standard
errors (SE of the per-draw differences, same draws at both widths); at the width nearest n it is at most 0.1 of the
ridgeless peak. Seeds checked after the defaults were chosen: at the full settings all three claims held for all of
seeds 0–29 (peak at N/n = 1.0 or 1.05; largest rise z ≤ 1.09; tuned ridge at N ≈ n ≤ 0.014 of the peak). At the
quick settings (n = 50, d = 10, 8 draws), seeds 0–59: the peak claim and the below-peak claim held for all 60 (peak
at N/n ∈ {1.0, 1.04, 1.1}; ratio ≤ 0.021), the no-rise claim for 58 of 60 — it failed for seeds 26 (z = 2.24, from
N = 48 to 50) and 48 (z = 2.47, from N = 55 to 62), rises of 0.003 and 0.007 in an error of about 0.4 next to the
threshold: with 8 draws and λ chosen on 50 validation examples from a grid half a decade apart, the tuned λ is not
the optimal one, and a small residual bump near N = n is not ruled out at the quick settings. The ridgeless mean near
N = n rests on few draws with huge errors (a near-square, ill-conditioned feature matrix); its median, also reported
and drawn, is far smaller.

Data: the r-th training set is X (n, D) then ε (n,), both drawn from ``generator(seed, "data", r)``
(:mod:`losslab.random_streams`); every p is fitted to the first p columns of the same draws. The convexity
proof and the library cross-check use the r = 0 set at the largest p, as a :class:`~losslab.models.Linear` model
without an intercept, ``Linear(p, bias=False)``.
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
from ._random_features_descent import RIDGES, random_features_curves, widths
from .base import Claim, Measured, claim
from .settings import Integer, Real, Reals, Rule, Settings, setting
from .story import from_argument

__all__ = ["BAND", "EXPERIMENT", "QUICK", "RIDGES", "DoubleDescentMeasured", "DoubleDescentSettings", "claims", "draw",
           "expected_error", "measure", "rf_at_n", "rf_peak", "sweep"]

TOLERANCE_Z = 4.0  # |Monte Carlo mean − E| ≤ 4 standard errors at every p with |p − n| ≥ FINITE_VARIANCE
FINITE_VARIANCE = 4  # the test error has a finite variance iff |p − n| ≥ 4 (inverse-Wishart second moments)
AROUND = 3  # every p within this distance of n is in the sweep
BAND = (0.8, 1.25)  # the ridgeless random-features peak must lie at a width N with N/n in this band
RISE_Z = 2.0  # the tuned-ridge error may rise from one width to the next by at most this many paired standard errors
BELOW_PEAK = 0.1  # the tuned-ridge error at N = n is at most this fraction of the ridgeless peak
RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)


@dataclass(frozen=True)
class DoubleDescentSettings(Settings):
    """Settings of the double-descent experiment (defaults: the full run)."""

    n: int = setting(20, Integer(6, 500), "training examples")
    features: int = setting(60, Integer(10, 2000), "D: features of the world, x ~ N(0, I_D); the model uses the first p")
    step: int = setting(1, Integer(1, 1000), "spacing of the p sweep over 1..D (every p within 3 of n, and D, are added)")
    signal: float = setting(1.0, Real(0, 100, low_open=True), "r = ‖β‖, with equal weights β_j = r/√D")
    noise: float = setting(0.2, Real(0, 100, low_open=True), "standard deviation σ of the label noise")
    draws: int = setting(2000, Integer(20, 100_000), "independent training sets per p (errors averaged)")
    rf_n: int = setting(100, Integer(10, 2000), "random features: training examples n (and as many validation examples)")
    rf_dim: int = setting(20, Integer(2, 1000), "random features: input dimension d, x uniform on the sphere of radius √d")
    rf_ratios: tuple[float, ...] = setting(RATIOS, Reals(0.01, 20, min_len=3), "random features: the grid of N/n (N = round(ratio·n))")
    rf_noise: float = setting(0.5, Real(0, 100, low_open=True), "random features: standard deviation τ of the label noise (‖β‖ = 1)")
    rf_draws: int = setting(20, Integer(3, 10_000), "random features: independent draws of target, data and features (errors averaged)")
    rf_test: int = setting(2000, Integer(100, 100_000), "random features: test inputs per draw")

    RULES = (
        Rule(lambda s: s.features >= s.n + 4, "features >= n + 4 (the sweep reaches past the interpolation threshold)",
             ("features", "n"), {"n": 60}),
        Rule(lambda s: s.draws * s.n * s.features <= 50_000_000, "draws × n × features <= 50,000,000 (the draws held in memory)",
             ("draws", "n", "features"), {"draws": 100_000}),
        Rule(lambda s: _spans_band(s.rf_n, s.rf_ratios), f"rf_ratios give widths N below {BAND[0]:g}·rf_n, within "
             f"[{BAND[0]:g}, {BAND[1]:g}]·rf_n and above {BAND[1]:g}·rf_n (the peak can be located)",
             ("rf_ratios", "rf_n"), {"rf_ratios": (2.0, 3.0, 4.0)}),
        Rule(lambda s: (2 * s.rf_n + s.rf_test) * max(widths(s.rf_n, s.rf_ratios)) <= 50_000_000,
             "(2·rf_n + rf_test) × the largest width <= 50,000,000 (the features held in memory)",
             ("rf_n", "rf_test", "rf_ratios"), {"rf_test": 100_000, "rf_ratios": (0.5, 1.0, 20.0)}),
    )


QUICK = {"n": 10, "features": 30, "draws": 400, "rf_n": 50, "rf_dim": 10, "rf_draws": 8}


def _spans_band(n: int, ratios: tuple[float, ...]) -> bool:
    """Whether the widths of ``ratios`` fall below, within and above BAND·n."""
    r = [N / n for N in widths(n, ratios)]
    return min(r) < BAND[0] and max(r) > BAND[1] and any(BAND[0] <= x <= BAND[1] for x in r)


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
    rf_n: int
    rf_noise_variance: float
    rf_draws: int
    rf_widths: list[int]  # N, increasing
    rf_ridgeless: list[float]  # per N: mean over the draws of the min-norm fit's test error
    rf_ridgeless_se: list[float]
    rf_ridgeless_median: list[float]
    rf_ridge: list[float]  # per N: mean over the draws of the tuned-ridge fit's test error
    rf_ridge_se: list[float]
    rf_lambda: list[float]  # per N: the median over the draws of the chosen λ
    rf_rise_z: list[float]  # per consecutive pair of widths: mean rise of the tuned-ridge error / its paired SE
    rf_library_gap: float  # the sweep's fits against losslab.fit.least_squares_result (draw 0, largest N)


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
    problem = Problem(Linear(p, bias=False), X[0, :, :p], y[0])
    fitted = least_squares_result(problem).theta
    gap = float((last - fitted).abs().max() / fitted.abs().max())
    say(f"convexity of the p = {p} loss")
    proof = proof_numbers(check_convexity(problem, seed=seed))
    rf = random_features_curves(s.rf_n, s.rf_dim, s.rf_ratios, s.rf_draws, s.rf_noise, s.rf_test, seed)
    say(f"random features: {len(rf.widths)} widths N over {s.rf_draws} draws, ridgeless and tuned ridge")
    root = math.sqrt(s.rf_draws)
    steps = rf.ridge[1:] - rf.ridge[:-1]  # paired: the same draw at consecutive widths
    rise_z = [float(m / sd * root) if sd > 0 else 0.0 for m, sd in zip(steps.mean(1), steps.std(1), strict=True)]
    return DoubleDescentMeasured(
        n=n, features=D, signal=s.signal, noise_variance=s2, draws=s.draws, ps=ps, mean=means, se=ses, median=medians,
        expected=expected, z=zs, check_p=p, library_gap=gap, proof=proof,
        rf_n=s.rf_n, rf_noise_variance=s.rf_noise**2, rf_draws=s.rf_draws, rf_widths=rf.widths,
        rf_ridgeless=rf.ridgeless.mean(1).tolist(), rf_ridgeless_se=(rf.ridgeless.std(1) / root).tolist(),
        rf_ridgeless_median=rf.ridgeless.median(1).values.tolist(), rf_ridge=rf.ridge.mean(1).tolist(),
        rf_ridge_se=(rf.ridge.std(1) / root).tolist(), rf_lambda=rf.lambdas.median(1).values.tolist(), rf_rise_z=rise_z,
        rf_library_gap=rf.library_gap,
    )


def _judged(m: DoubleDescentMeasured) -> list[int]:
    """Indices of the swept p with |p − n| ≥ FINITE_VARIANCE, where the test error has a finite variance."""
    return [i for i, p in enumerate(m.ps) if abs(p - m.n) >= FINITE_VARIANCE]


def _near(m: DoubleDescentMeasured) -> list[int]:
    """Indices of the swept p with 2 ≤ |p − n| < FINITE_VARIANCE: finite mean, infinite variance."""
    return [i for i, p in enumerate(m.ps) if 2 <= abs(p - m.n) < FINITE_VARIANCE]


def rf_peak(m: DoubleDescentMeasured) -> int:
    """Index of the width N where the mean ridgeless random-features test error is largest."""
    return max(range(len(m.rf_widths)), key=lambda i: m.rf_ridgeless[i])


def rf_at_n(m: DoubleDescentMeasured) -> int:
    """Index of the width N nearest n (the smaller on a tie)."""
    return min(range(len(m.rf_widths)), key=lambda i: abs(m.rf_widths[i] - m.rf_n))


def _random_features_claims(m: DoubleDescentMeasured) -> tuple[Claim, ...]:
    """The ridgeless peak lies in BAND·n; tuned ridge never rises with N (within RISE_Z paired SE) and stays far below the peak."""
    n, Ns, free, tuned = m.rf_n, m.rf_widths, m.rf_ridgeless, m.rf_ridge
    top, at = rf_peak(m), rf_at_n(m)
    rise = max(range(len(m.rf_rise_z)), key=lambda i: m.rf_rise_z[i])
    return (
        claim("rf-peak-near-threshold", f"ridgeless random features: the test error peaks near N = n (N/n within "
              f"[{BAND[0]:g}, {BAND[1]:g}])",
              BAND[0] <= Ns[top] / n <= BAND[1],
              "largest mean test error {e:.4g} at N = {N} (N/n = {r:.3f}, n = {n}; band [{lo:g}, {hi:g}]); mean over {draws} "
              "draws, median there {med:.4g}; at the smallest and largest N: {first:.4g} and {last:.4g}",
              plain="Fitting exactly the n noisy labels with random features is worst when there are just about as many "
                    "features as examples.",
              e=free[top], N=Ns[top], r=Ns[top] / n, n=n, lo=BAND[0], hi=BAND[1], draws=m.rf_draws,
              med=m.rf_ridgeless_median[top], first=free[0], last=free[-1]),
        claim("rf-ridge-no-peak", f"with ridge tuned on held-out data the test error does not rise with N (every rise between "
              f"neighbouring N within {RISE_Z:g} paired standard errors): ridge removes the peak",
              m.rf_rise_z[rise] <= RISE_Z,
              "largest rise z = {z:.2f} (mean rise / its paired SE; at most {tol:g} allowed), from N = {a} to N = {b} "
              "({ea:.4f} to {eb:.4f}); at N = {Nn} ≈ n its mean error "
              "is {en:.4f}, at the smallest N {first:.4f}, at the largest {last:.4f}",
              plain="With the penalty tuned for each size on examples held out from the fit, more features never make the "
                    "prediction worse: the bump disappears.",
              z=m.rf_rise_z[rise], tol=RISE_Z, a=Ns[rise], b=Ns[rise + 1], ea=tuned[rise], eb=tuned[rise + 1], Nn=Ns[at],
              en=tuned[at], first=tuned[0], last=tuned[-1]),
        claim("rf-ridge-below-peak", f"at N ≈ n the tuned-ridge test error is at most {BELOW_PEAK:g} of the ridgeless peak",
              tuned[at] <= BELOW_PEAK * free[top],
              "tuned ridge at N = {Nn}: {en:.4f} (median λ = {lam:.2g}) vs ridgeless peak {e:.4g}: ratio {ratio:.2g} (at most "
              "{tol:g} allowed); "
              "noise floor τ² = {floor:g}",
              plain="Where the unpenalised fit is at its worst, the tuned fit's error is a small fraction of it.",
              Nn=Ns[at], en=tuned[at], lam=m.rf_lambda[at], e=free[top], ratio=tuned[at] / free[top], tol=BELOW_PEAK,
              floor=m.rf_noise_variance),
    )


def claims(settings: DoubleDescentSettings, m: DoubleDescentMeasured) -> tuple[Claim, ...]:
    """Convex for every p; the Monte Carlo matches E where |p − n| ≥ 4; the error peaks at n; more features lower it again;
    random features peak near N = n without ridge and not with tuned ridge."""
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
        *_random_features_claims(m),
    )


EXPERIMENT = from_argument("double-descent", settings=DoubleDescentSettings, quick=QUICK, measure=measure, claims=claims)
