"""Experiment 2: too few features — the error stays at the bias floor however much data there is.

The target is the cubic g(x) = x³ − x, observed as y = g(x) + σε with x ~ Uniform(−1, 1). A
quadratic basis cannot represent it: the best quadratic in L2(μ) is the projection of g, and since
x³ − x = (2/5)·P₃(x) − (2/5)·x with P₃ the Legendre polynomial of degree 3 (E[P₃²] = 1/7),

    min over quadratics q of E[(q(x) − g(x))²] = (2/5)²·(1/7) = 4/175 ≈ 0.0229   (the bias floor).

So the quadratic's expected test error E[(f̂(x) − y)²] stays at floor + σ² (plus a variance term
that vanishes as O(1/n)), whereas the cubic basis contains g and its test error falls to the
noise level σ². Test errors are exact population values (Gauss–Legendre quadrature of
(f̂ − g)², plus σ²; see :mod:`._polyfit`); the floor is computed by the same quadrature as an L2
projection, for any ``truth``.

Data: the r-th draw at the i-th sample size is ``polynomial_1d(n_i, coefs=truth, noise=noise,
seed=child_seed(seed, "data", i, r))`` (:mod:`losslab.random_streams`); both bases are fitted to
the same draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..random_streams import child_seed
from ._polyfit import CUBIC, TRUTH, draw, excess_error, fit, projection_error
from .base import Claim, Measured, claim
from .settings import Integer, Integers, Real, Rule, Settings, setting
from .story import from_argument

__all__ = ["EXPERIMENT", "QUICK", "UnderfittingMeasured", "UnderfittingSettings", "claims", "measure"]


SHOWN = 300  # data points kept for the figure (every k-th of the largest draw)


@dataclass(frozen=True)
class UnderfittingSettings(Settings):
    """Settings of the underfitting experiment (defaults: the full run)."""

    ns: tuple[int, ...] = setting((20, 50, 100, 200, 500, 1000, 2000, 5000), Integers(1, 100_000, max_len=10, increasing=True),
                                  "training-set sizes")
    repeats: int = setting(5, Integer(1, 100), "independent training sets per size (test errors averaged)")
    small_degree: int = setting(2, Integer(0), "degree of the basis that is too small")
    large_degree: int = setting(3, Integer(0, 20), "degree of a basis that contains the target")
    noise: float = setting(0.1, Real(0, low_open=True), "standard deviation σ of the label noise")
    truth: tuple[float, ...] = setting(CUBIC, TRUTH, "the target's coefficients, constant term first")

    RULES = (
        Rule(lambda s: s.small_degree < len(s.truth) - 1 <= s.large_degree,
             "small_degree < degree of truth <= large_degree (one basis too small, one large enough)",
             ("small_degree", "large_degree", "truth"), {"small_degree": 3}),
        Rule(lambda s: s.ns[0] >= s.large_degree + 2, "every n >= large_degree + 2 (more examples than features)",
             ("ns", "large_degree"), {"ns": (3, 10)}),
    )


QUICK = {"ns": (20, 100, 1000, 5000), "repeats": 2}


@dataclass(frozen=True)
class UnderfittingMeasured(Measured):
    """What the underfitting experiment measured (test MSEs are exact population values, means over the repeats)."""

    ns: list[int]
    small_degree: int
    large_degree: int
    truth: tuple[float, ...]
    noise_variance: float
    bias_floor: float  # min over degree-small_degree polynomials q of E[(q − g)²]
    floor_projection: torch.Tensor  # that best q's coefficients
    test_mse_small: list[float]
    test_mse_large: list[float]
    theta_small_last: torch.Tensor  # both fits to the last draw at the largest n
    theta_large_last: torch.Tensor
    shown_x: torch.Tensor  # every k-th point of that draw (at most SHOWN), for the figure
    shown_y: torch.Tensor


def measure(settings: UnderfittingSettings, seed: int, say) -> UnderfittingMeasured:
    """Fit both bases at every n (``repeats`` draws each); the exact test errors and the bias floor."""
    s2 = settings.noise**2
    floor, projection = projection_error(settings.truth, settings.small_degree)
    degrees = {"small": settings.small_degree, "large": settings.large_degree}
    errors: dict[str, list[float]] = {k: [] for k in degrees}
    last_fits: dict[str, torch.Tensor] = {}
    for i, n in enumerate(settings.ns):
        say(f"n = {n}")
        per = {k: [] for k in degrees}
        for r in range(settings.repeats):
            X, y = draw(n, settings.truth, settings.noise, child_seed(seed, "data", i, r))
            for key, degree in degrees.items():
                theta = fit(X, y, degree).theta
                per[key].append(excess_error(theta, settings.truth) + s2)
                last_fits[key] = theta
        for key in degrees:
            errors[key].append(sum(per[key]) / len(per[key]))
    keep = slice(None, None, max(1, len(y) // SHOWN))
    return UnderfittingMeasured(
        ns=list(settings.ns), small_degree=settings.small_degree, large_degree=settings.large_degree, truth=settings.truth,
        noise_variance=s2, bias_floor=floor, floor_projection=projection, test_mse_small=errors["small"],
        test_mse_large=errors["large"], theta_small_last=last_fits["small"], theta_large_last=last_fits["large"],
        shown_x=X[keep, 0], shown_y=y[keep],
    )


def claims(settings: UnderfittingSettings, m: UnderfittingMeasured) -> tuple[Claim, ...]:
    """The small basis stays at the bias floor; the large one reaches the noise level; the first is far above the second."""
    small, large, s2, n = m.test_mse_small, m.test_mse_large, m.noise_variance, m.ns[-1]
    target = m.bias_floor + s2
    lowest = min(e - target for e in small)
    return (
        claim("small-basis-at-bias-floor", f"however much data, the degree-{m.small_degree} basis stays at the bias floor",
              abs(small[-1] - target) <= 0.05 * target and lowest >= -1e-12 * target,
              "test MSE at n = {n}: {e:.5f} vs bias floor + σ² = {floor:.5f} + {s2:.5f} = {t:.5f}, off by {rel:.2%} ≤ 5%; "
              "lowest over all n minus (floor + σ²) = {low:.1e} ≥ 0",
              n=n, e=small[-1], floor=m.bias_floor, s2=s2, t=target, rel=abs(small[-1] - target) / target, low=lowest),
        claim("large-basis-at-noise-level",
              f"the degree-{m.large_degree} basis contains the target: its test error falls to the noise level",
              abs(large[-1] - s2) <= 0.05 * s2,
              "test MSE at n = {n}: {e:.5f} vs σ² = {s2:.5f}, off by {rel:.2%} ≤ 5% (at n = {n0}: {e0:.5f})",
              n=n, e=large[-1], s2=s2, rel=abs(large[-1] - s2) / s2, n0=m.ns[0], e0=large[0]),
        claim("underfit-far-above", "the underfit model's error is far above the one that contains the target",
              small[-1] >= 2 * large[-1],
              "at n = {n}: degree {ds} {es:.5f} ≥ 2 × degree {dl} {el:.5f} (ratio {ratio:.2f}; theory (floor + σ²)/σ² = {pred:.2f})",
              n=n, ds=m.small_degree, es=small[-1], dl=m.large_degree, el=large[-1], ratio=small[-1] / large[-1], pred=target / s2),
    )


EXPERIMENT = from_argument("underfitting", settings=UnderfittingSettings, quick=QUICK, measure=measure, claims=claims)
