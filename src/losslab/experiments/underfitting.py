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

from .._checks import LosslabError, finite_float, positive_int
from ..random_streams import child_seed
from ._polyfit import CUBIC, check_increasing, check_truth, draw, excess_error, fit, polyval, projection_error, two_panels
from .base import Experiment, Outcome, Table, claim, png_figure

__all__ = ["EXPERIMENT", "QUICK", "Settings", "run"]


@dataclass(frozen=True)
class Settings:
    """Settings of the underfitting experiment.

    Attributes:
        ns: training-set sizes, increasing.
        repeats: independent training sets per size (test errors are averaged over them).
        small_degree: degree of the basis that is too small (default 2: a quadratic).
        large_degree: degree of a basis that contains the target (default 3: the cubic).
        noise: standard deviation σ of the label noise.
        truth: the target's coefficients, constant term first (default x³ − x).
    """

    ns: tuple[int, ...] = (20, 50, 100, 200, 500, 1000, 2000, 5000)
    repeats: int = 5
    small_degree: int = 2
    large_degree: int = 3
    noise: float = 0.1
    truth: tuple[float, ...] = CUBIC

    def __post_init__(self) -> None:
        positive_int("repeats", self.repeats)
        if self.repeats > 100 or (isinstance(self.ns, tuple) and len(self.ns) > 10):
            raise LosslabError(f"expected at most 10 sample sizes and 100 repeats (distinct data seeds), got {len(self.ns)} sizes, "
                               f"repeats={self.repeats}")
        positive_int("small_degree", self.small_degree, minimum=0)
        positive_int("large_degree", self.large_degree, minimum=0)
        finite_float("noise", self.noise, positive=True)
        check_truth(self.truth)
        check_increasing("ns", self.ns, minimum=self.large_degree + 2)
        if not self.small_degree < len(self.truth) - 1 <= self.large_degree <= 20:
            raise LosslabError(
                f"expected small_degree < degree of truth <= large_degree <= 20 (one basis too small, one large enough), got "
                f"small_degree={self.small_degree}, truth of degree {len(self.truth) - 1}, large_degree={self.large_degree}"
            )
        if self.ns[-1] > 100_000:
            raise LosslabError(f"expected ns up to 100000, got ns={self.ns}")


QUICK = {"ns": (20, 100, 1000, 5000), "repeats": 2}


def _figure(settings: Settings, errors: dict, floor: float, last_fits: dict, X: torch.Tensor, y: torch.Tensor):
    ns, s2 = settings.ns, settings.noise**2
    fig, left, right = two_panels("test error against n", f"fits at n = {ns[-1]}")
    for (label, errs), color in zip(errors.items(), ("C3", "C0")):
        left.plot(ns, errs, "o-", color=color, label=label)
    left.axhline(floor + s2, color="C3", ls="--", lw=1, label="bias floor + σ²")
    left.axhline(s2, color="C0", ls=":", lw=1, label="noise σ²")
    left.set(xscale="log", yscale="log", xlabel="training examples n", ylabel="test MSE")
    left.legend(fontsize=8)
    grid = torch.linspace(-1, 1, 201, dtype=torch.float64)
    keep = slice(None, None, max(1, len(y) // 300))
    right.scatter(X[keep, 0], y[keep], s=4, color="0.6", label=f"data (n = {len(y)}, some shown)")
    right.plot(grid, polyval(settings.truth, grid), "k--", lw=1.5, label="truth", zorder=3)
    for (label, theta), color in zip(last_fits.items(), ("C3", "C0")):
        right.plot(grid, polyval(theta, grid), color=color, lw=2, label=label)
    right.set(xlabel="x")
    right.legend(fontsize=8)
    return fig


def run(settings: Settings, seed: int, say) -> Outcome:
    """Fit both bases at every n (``repeats`` draws each); compare with the bias floor and the noise level."""
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
    small, large = errors["small"], errors["large"]
    labels = {"small": f"degree {settings.small_degree}", "large": f"degree {settings.large_degree}"}
    numbers = {
        "ns": list(settings.ns), "noise_variance": s2, "bias_floor": floor, "floor_projection": projection,
        "test_mse_small": small, "test_mse_large": large,
        "theta_small_last": last_fits["small"], "theta_large_last": last_fits["large"],
    }
    target = floor + s2
    lowest = min(e - target for e in small)
    claims = (
        claim(f"however much data, the degree-{settings.small_degree} basis stays at the bias floor",
              abs(small[-1] - target) <= 0.05 * target and lowest >= -1e-12 * target,
              "test MSE at n = {n}: {e:.5f} vs bias floor + σ² = {floor:.5f} + {s2:.5f} = {t:.5f}, off by {rel:.2%} ≤ 5%; "
              "lowest over all n minus (floor + σ²) = {low:.1e} ≥ 0",
              n=settings.ns[-1], e=small[-1], floor=floor, s2=s2, t=target, rel=abs(small[-1] - target) / target, low=lowest),
        claim(f"the degree-{settings.large_degree} basis contains the target: its test error falls to the noise level",
              abs(large[-1] - s2) <= 0.05 * s2,
              "test MSE at n = {n}: {e:.5f} vs σ² = {s2:.5f}, off by {rel:.2%} ≤ 5% (at n = {n0}: {e0:.5f})",
              n=settings.ns[-1], e=large[-1], s2=s2, rel=abs(large[-1] - s2) / s2, n0=settings.ns[0], e0=large[0]),
        claim("the underfit model's error is far above the one that contains the target",
              small[-1] >= 2 * large[-1],
              "at n = {n}: degree {ds} {es:.5f} ≥ 2 × degree {dl} {el:.5f} (ratio {ratio:.2f}; theory (floor + σ²)/σ² = {pred:.2f})",
              n=settings.ns[-1], ds=settings.small_degree, es=small[-1], dl=settings.large_degree, el=large[-1],
              ratio=small[-1] / large[-1], pred=target / s2),
    )
    X, y = draw(settings.ns[-1], settings.truth, settings.noise, child_seed(seed, "data", len(settings.ns) - 1, settings.repeats - 1))
    figure = png_figure(
        _figure(settings, {labels[k]: errors[k] for k in degrees}, floor, {labels[k]: last_fits[k] for k in degrees}, X, y),
        "error-vs-n",
        f"Left: exact test MSE against the number of examples (log-log). The degree-{settings.small_degree} basis levels off at the "
        f"bias floor + σ² (dashed) — more data cannot remove the bias — while the degree-{settings.large_degree} basis falls to the "
        "noise level σ² (dotted). Right: both fits at the largest n against the truth.",
    )
    table = Table("Exact test MSE (mean over the repeats) against n",
                  ("n", f"degree {settings.small_degree}", f"degree {settings.large_degree}", "floor + σ²", "σ²"),
                  tuple((n, a, b, target, s2) for n, a, b in zip(settings.ns, small, large)))
    return Outcome(numbers=numbers, claims=claims, figures=(figure,), tables=(table,))


EXPERIMENT = Experiment(
    name="underfitting",
    number=2,
    title="Too few features: underfitting",
    intro=(
        "With fixed features, the best a model can do is the projection of the truth onto their span. A quadratic basis fitted "
        "to a cubic target keeps a bias floor — the error of the best quadratic — that no amount of data removes, while a cubic "
        "basis, which contains the target, approaches the noise level."
    ),
    settings=Settings,
    quick=QUICK,
    run=run,
)
