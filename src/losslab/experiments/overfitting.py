"""Experiment 3: too many features on few noisy samples — training error → 0 while the test error blows up.

Fit polynomial bases of degree 0, 1, …, n − 1 by least squares to n = 15 noisy samples of the cubic
g(x) = x³ − x on x ~ Uniform(−1, 1). The bases are nested, so the training error (the squared
distance from y to a growing subspace) can only fall; at degree n − 1 there are as many features as
examples and the fit interpolates: training error 0, noise included. Between the samples the
interpolant swings wildly — the exact test error E[(f̂(x) − y)²] = E[(f̂ − g)²] + σ² (Gauss–Legendre
quadrature, :mod:`._polyfit`) is orders of magnitude above its minimum, reached at a low degree (near 3
when the inputs cover [−1, 1]; lower when they leave a gap the cubic term would have to extrapolate into).

The monomial basis on [−1, 1] is ill-conditioned at high degree, and more so when two random inputs
fall close together: the square n × n system has cond(Φ) ~ 1e8 typically at n = 15 (recorded per
degree). The library's least squares uses LAPACK ``gelsd`` (SVD), which is backward stable, so the
training residual is accurate to about u·cond(Φ)·‖y‖ (Higham 2002, §20.1); the monotonicity of the
training error is checked to that allowance. ``gelsd`` treats singular values below n·u·σ_max as
zero, so a system with cond(Φ) > 1/(n·u) ≈ 3e14 is numerically rank-deficient and cannot be
interpolated in float64 — for 20 uniform inputs and degree 19 that happens for about 5% of the
draws, for 15 inputs and degree 14 for about 0.1%: hence n = 15 (the claim reports the rank).

Data: ``polynomial_1d(n, coefs=truth, noise=noise, seed=seed)`` (its ``"data"`` stream, :mod:`losslab.random_streams`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from .._checks import LosslabError, finite_float, positive_int
from ._legacy import Outcome, Table, claim, legacy_experiment, png_figure
from ._polyfit import CUBIC, check_truth, draw, excess_error, fit, polyval, two_panels

__all__ = ["EXPERIMENT", "QUICK", "Settings", "run"]

UNIT_ROUNDOFF = 2.0**-53


@dataclass(frozen=True)
class Settings:
    """Settings of the overfitting experiment.

    Attributes:
        n: training examples (few).
        max_degree: the largest degree fitted, >= n − 1 so that the largest basis interpolates.
        noise: standard deviation σ of the label noise.
        truth: the target's coefficients, constant term first (default x³ − x).
    """

    n: int = 15
    max_degree: int = 14
    noise: float = 0.1
    truth: tuple[float, ...] = CUBIC

    def __post_init__(self) -> None:
        positive_int("n", self.n, minimum=3)
        positive_int("max_degree", self.max_degree, minimum=2)
        finite_float("noise", self.noise, positive=True)
        check_truth(self.truth)
        if not self.n - 1 <= self.max_degree <= 30:
            raise LosslabError(
                f"expected n - 1 <= max_degree <= 30 (the largest basis must be able to interpolate the n examples), got "
                f"n={self.n}, max_degree={self.max_degree}"
            )


QUICK: dict = {}


def _figure(X, y, truth, thetas, train, test, noise_variance, best):
    degrees = list(range(len(train)))
    fig, left, right = two_panels("training and test error against the degree", "fits on the training data")
    left.plot(degrees, train, "o-", color="C0", label="training MSE")
    left.plot(degrees, test, "s-", color="C3", label="test MSE (exact)")
    left.axhline(noise_variance, color="0.4", ls=":", lw=1, label="noise σ²")
    left.set(yscale="log", xlabel="polynomial degree", ylabel="mean squared error")
    left.legend(fontsize=8)
    grid = torch.linspace(-1, 1, 801, dtype=torch.float64)
    right.scatter(X[:, 0], y, s=18, color="k", zorder=4, label=f"data (n = {len(y)})")
    right.plot(grid, polyval(truth, grid), "k--", lw=1, label="truth")
    right.plot(grid, polyval(thetas[best], grid), color="C2", lw=2, label=f"degree {best} (best test error)")
    right.plot(grid, polyval(thetas[-1], grid), color="C3", lw=1.5, label=f"degree {len(thetas) - 1}")
    spread = float(y.max() - y.min())
    right.set(xlabel="x", ylim=(float(y.min()) - spread, float(y.max()) + spread))
    right.legend(fontsize=8, loc="upper center")
    return fig


def run(settings: Settings, seed: int, say) -> Outcome:
    """Fit degrees 0 … max_degree to the same n samples; record training error, exact test error and cond(Φ)."""
    X, y = draw(settings.n, settings.truth, settings.noise, seed)
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
    interp = settings.n - 1
    mean_y2 = float(y.pow(2).mean())
    allowance = (10 * UNIT_ROUNDOFF * max(conds)) ** 2 * mean_y2
    rise = max(b - a for a, b in itertools.pairwise(train))
    numbers = {
        "degrees": list(range(settings.max_degree + 1)), "train_mse": train, "test_mse": test, "condition": conds, "rank": ranks,
        "best_degree": best, "noise_variance": s2, "theta_best": thetas[best], "theta_max": thetas[-1], "monotone_allowance": allowance,
    }
    claims = (
        claim("more features never increase the training error (the bases are nested)",
              rise <= allowance,
              "max over k of train MSE(k + 1) − train MSE(k) = {rise:.1e} ≤ rounding allowance (10u·cond_max)²·mean(y²) "
              "= {tol:.1e} (cond_max = {cond:.1e})",
              rise=rise, tol=allowance, cond=max(conds)),
        claim(f"with as many features as examples (degree {interp}) the fit interpolates the noisy data: training error ≈ 0",
              train[interp] <= 0.01 * s2,
              "training MSE at degree {d} = {tr:.1e} ≤ 1% of the noise variance σ² = {s2:.0e} (an honest fit cannot go below "
              "about σ²(1 − p/n)); numerical rank {rank} of {n}, cond(Φ) = {cond:.1e}",
              d=interp, tr=train[interp], s2=s2, rank=ranks[interp], n=settings.n, cond=conds[interp]),
        claim("the test error blows up: far above its minimum, which lies strictly inside the degree range",
              test[-1] >= 10 * test[best] and 0 < best < settings.max_degree,
              "exact test MSE at degree {dmax} = {tmax:.3g} ≥ 10 × the minimum {tmin:.4f} (at degree {best}, strictly between 0 and "
              "{dmax}); ratio {ratio:.2g}",
              dmax=settings.max_degree, tmax=test[-1], tmin=test[best], best=best, ratio=test[-1] / test[best]),
    )
    figure = png_figure(
        _figure(X, y, settings.truth, thetas, train, test, s2, best), "train-test-vs-degree",
        f"Left: training error (blue) falls with the degree and reaches ~0 at degree {interp}, where the basis interpolates the "
        f"{settings.n} noisy points; the exact test error (red, log scale) is lowest at degree {best} and then explodes. Right: the "
        f"degree-{best} fit follows the truth; the degree-{settings.max_degree} fit passes through every point and swings wildly "
        "between them (clipped).",
    )
    table = Table("Training and exact test error per degree, with the condition number of the monomial features",
                  ("degree", "training MSE", "test MSE", "cond(Φ)"),
                  tuple((k, train[k], test[k], conds[k]) for k in range(settings.max_degree + 1)))
    return Outcome(numbers=numbers, claims=claims, figures=(figure,), tables=(table,))


EXPERIMENT = legacy_experiment(
    name="overfitting",
    number=3,
    title="Too many features: overfitting",
    intro=(
        "Give a fixed-feature model as many features as it has noisy examples and least squares can fit them exactly — noise "
        "included. The training error goes to zero while the error on new data explodes: the fit is the projection of the "
        "noisy labels, and with enough features that projection follows the noise."
    ),
    settings=Settings,
    quick=QUICK,
    run=run,
)
