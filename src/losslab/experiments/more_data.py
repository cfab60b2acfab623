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

from .._checks import LosslabError, finite_float, positive_int
from ..random_streams import child_seed
from ._legacy import Outcome, Table, claim, legacy_experiment, png_figure
from ._polyfit import CUBIC, check_increasing, check_truth, draw, excess_error, fit, polyval, two_panels

__all__ = ["EXPERIMENT", "QUICK", "Settings", "run"]


@dataclass(frozen=True)
class Settings:
    """Settings of the more-data experiment.

    Attributes:
        degree: degree of the (large) polynomial basis.
        ns: training-set sizes, increasing, each > degree.
        repeats: independent training sets per size (the errors are averaged over them).
        noise: standard deviation σ of the label noise.
        truth: the target's coefficients, constant term first (default x³ − x); degree ≤ ``degree``.
    """

    degree: int = 15
    ns: tuple[int, ...] = (20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
    repeats: int = 3
    noise: float = 0.1
    truth: tuple[float, ...] = CUBIC

    def __post_init__(self) -> None:
        positive_int("degree", self.degree, minimum=1)
        positive_int("repeats", self.repeats)
        if self.repeats > 100 or (isinstance(self.ns, tuple) and len(self.ns) > 10):
            raise LosslabError(f"expected at most 10 sample sizes and 100 repeats (distinct data seeds), got {len(self.ns)} sizes, "
                               f"repeats={self.repeats}")
        finite_float("noise", self.noise, positive=True)
        check_truth(self.truth)
        check_increasing("ns", self.ns, minimum=self.degree + 2)
        if not len(self.truth) - 1 <= self.degree <= 30:
            raise LosslabError(
                f"expected degree of truth <= degree <= 30 (the basis must contain the target), got truth of degree "
                f"{len(self.truth) - 1}, degree={self.degree}"
            )
        if self.ns[-1] > 200_000:
            raise LosslabError(f"expected ns up to 200000, got ns={self.ns}")


QUICK = {"ns": (20, 200, 2000, 10000)}


def _figure(settings: Settings, excess: list[float], thetas: list[torch.Tensor]):
    ns, s2 = settings.ns, settings.noise**2
    fig, left, right = two_panels(f"excess test error of the degree-{settings.degree} fit", "fitted curves as n grows")
    left.plot(ns, excess, "o-", color="C3", label="E[(f̂ − g)²] (exact)")
    left.plot(ns, [s2 * (settings.degree + 1) / n for n in ns], color="0.5", ls="--", lw=1, label="σ²·p/n")
    left.axhline(s2, color="0.3", ls=":", lw=1, label="noise variance σ²")
    left.axhline(0.1 * s2, color="C2", ls=":", lw=1, label="10% of σ²")
    left.set(xscale="log", yscale="log", xlabel="training examples n", ylabel="excess test MSE")
    left.legend(fontsize=8)
    grid = torch.linspace(-1, 1, 401, dtype=torch.float64)
    right.plot(grid, polyval(settings.truth, grid), "k--", lw=1.5, label="truth", zorder=5)
    shown = sorted({0, len(ns) // 3, 2 * len(ns) // 3, len(ns) - 1})
    for color, i in zip(("C3", "C1", "C0", "C2"), shown):
        right.plot(grid, polyval(thetas[i], grid), color=color, lw=1.5, label=f"n = {ns[i]}")
    right.set(xlabel="x", ylim=(-1.0, 1.0))
    right.legend(fontsize=8)
    return fig


def run(settings: Settings, seed: int, say) -> Outcome:
    """Fit the degree-``degree`` basis at every n; the exact excess error, and the largest deviation on a grid."""
    s2 = settings.noise**2
    grid = torch.linspace(-1, 1, 2001, dtype=torch.float64)
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
    ratios = [excess[a] / excess[b] for a, b in decades]
    numbers = {"ns": list(ns), "degree": settings.degree, "noise_variance": s2, "excess": excess,
               "test_mse": [e + s2 for e in excess], "max_deviation": sup, "decade_ratios": ratios}
    p = settings.degree + 1
    claims = (
        claim("with enough data the large basis reaches the noise level",
              excess[-1] <= 0.1 * s2,
              "excess test MSE at n = {n} (mean of {reps} draws) = {e:.2e} ≤ 10% of σ² = {bound:.0e} "
              "(test MSE {t:.5f} vs σ² = {s2:.5f}; σ²·p/n = {pred:.1e})",
              n=ns[-1], reps=settings.repeats, e=excess[-1], bound=0.1 * s2, t=excess[-1] + s2, s2=s2, pred=s2 * p / ns[-1]),
        claim("the excess error falls steadily with n: over every decade of n by at least a factor 2 (theory: 10)",
              bool(decades) and min(ratios) >= 2,
              "excess(n)/excess(10n) for n = {pairs}: {ratios} — smallest {low:.3g} ≥ 2",
              pairs=", ".join(str(ns[a]) for a, _ in decades),
              ratios=", ".join(f"{r:.3g}" for r in ratios), low=min(ratios) if ratios else float("nan")),
        claim("the fitted curve converges to the truth: within one noise standard deviation everywhere on [−1, 1]",
              sup[-1] <= settings.noise,
              "max_x |f̂(x) − g(x)| at n = {n} (worst of {reps} draws) = {d:.3f} ≤ σ = {s} (pointwise standard deviation at "
              "the ends ≈ σ(k + 1)/√n = {pred:.3f}; at n = {n0}: {d0:.3g})",
              n=ns[-1], reps=settings.repeats, d=sup[-1], s=settings.noise, pred=settings.noise * p / ns[-1] ** 0.5, n0=ns[0], d0=sup[0]),
    )
    figure = png_figure(
        _figure(settings, excess, thetas), "error-and-fits-vs-n",
        f"Left: the exact excess test error of the degree-{settings.degree} fit against n (log-log) follows σ²·p/n (dashed): "
        "tenfold less per decade of data. Right: the fitted curves at a few n; the wild small-n fit settles onto the truth "
        "(dashed) as n grows.",
    )
    table = Table(f"Degree-{settings.degree} fit: exact excess and test error (mean of {settings.repeats} draws), and the largest "
                  "deviation from the truth (worst draw)",
                  ("n", "excess E[(f̂ − g)²]", "test MSE", "σ²·p/n", "max |f̂ − g|"),
                  tuple((n, e, e + s2, s2 * (settings.degree + 1) / n, d) for n, e, d in zip(ns, excess, sup)))
    return Outcome(numbers=numbers, claims=claims, figures=(figure,), tables=(table,))


EXPERIMENT = legacy_experiment(
    name="more-data",
    number=4,
    title="More data tames the large basis",
    intro=(
        "The large basis that overfits 20 samples contains the target, so its error is all variance — and variance averages "
        "out. With more examples the least-squares fit of the same 16 fixed features settles onto the truth and its test "
        "error falls to the noise level, about tenfold per tenfold more data."
    ),
    settings=Settings,
    quick=QUICK,
    run=run,
)
