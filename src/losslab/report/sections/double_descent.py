"""Section 14, double descent: the test error against p with the exact curve; random features against N/n, ridgeless
and with tuned ridge; the numbers per p and per N."""

from __future__ import annotations

import math

from ...experiments.double_descent import BAND, DoubleDescentMeasured, expected_error, rf_at_n, rf_peak
from ..drawn import Figure, Table, png_figure
from ..figures import subplots

__all__ = ["FIGURES", "TABLES", "error_vs_p", "errors_table", "random_features_error", "random_features_table"]


def error_vs_p(m: DoubleDescentMeasured) -> Figure:
    """Mean test error ± 2 SE against p (log y), Belkin–Hsu–Xu's exact curve, p = n dashed, the noise floor σ² dotted."""
    n, ps, mean = m.n, m.ps, m.mean
    fig, ax = subplots(figsize=(7, 4.2))
    for part in (range(1, n - 1), range(n + 2, m.features + 1)):  # the exact curve, infinite for |p − n| ≤ 1
        ax.plot(list(part), [expected_error(p, n, m.features, m.signal, math.sqrt(m.noise_variance)) for p in part],
                color="k", lw=1.2, label="exact E (Belkin–Hsu–Xu)" if part.start == 1 else None, zorder=3)
    low = [min(2 * s, 0.9 * e) for e, s in zip(mean, m.se, strict=True)]  # a log axis cannot show a bar below 0
    ax.errorbar(ps, mean, yerr=(low, [2 * s for s in m.se]), fmt="o", ms=3, color="C0", ecolor="C0", elinewidth=1, capsize=2,
                label=f"mean of {m.draws} fits ± 2 SE")
    ax.axvline(n, color="C3", ls="--", lw=1, label=f"p = n = {n}")
    ax.axhline(m.noise_variance, color="0.4", ls=":", lw=1, label="noise floor σ²")
    ax.set(yscale="log", xlabel="features used p", ylabel="test error")
    ax.legend(fontsize=8, loc="upper right")
    top = max(range(len(ps)), key=lambda i: mean[i])
    after = ps.index(n + 2)
    return png_figure(
        fig, "error-vs-p",
        f"Exact test error of the minimum-norm least-squares fit on the first p of D = {m.features} Gaussian features, "
        f"n = {n} training examples, averaged over {m.draws} training sets (bars: ± 2 standard errors), against "
        f"Belkin–Hsu–Xu's exact expectation (line; infinite for |p − n| ≤ 1). The largest mean error is at p = {ps[top]}; "
        f"from p = n + 2 to p = {ps[-1]} it {'falls' if mean[-1] < mean[after] else 'does not fall'}, from {mean[after]:.3g} "
        f"to {mean[-1]:.3g}. Dotted: the noise level σ², "
        "below every model's error.",
    )


def errors_table(m: DoubleDescentMeasured) -> Table:
    """Per p: the mean test error, its standard error, the median, the exact expectation and the z-score."""
    return Table("Test error against p: Monte Carlo mean, standard error, median, exact E and z = (mean − E)/SE",
                 ("p", "mean", "SE", "median", "exact E", "z"),
                 tuple(zip(m.ps, m.mean, m.se, m.median, m.expected, m.z, strict=True)))


def random_features_error(m: DoubleDescentMeasured) -> Figure:
    """Random features: mean test error ± 2 SE against N/n (log-log), ridgeless and with tuned ridge; N = n dashed, the band shaded."""
    n, Ns = m.rf_n, m.rf_widths
    r = [N / n for N in Ns]
    fig, ax = subplots(figsize=(7, 4.2))
    ax.axvspan(*BAND, color="C3", alpha=0.08, lw=0, label=f"N/n in [{BAND[0]:g}, {BAND[1]:g}]")
    for mean, se, colour, label in ((m.rf_ridgeless, m.rf_ridgeless_se, "C0", "minimum norm (ridgeless)"),
                                    (m.rf_ridge, m.rf_ridge_se, "C2", "ridge, λ tuned on held-out data")):
        low = [min(2 * s, 0.9 * e) for e, s in zip(mean, se, strict=True)]  # a log axis cannot show a bar below 0
        ax.errorbar(r, mean, yerr=(low, [2 * s for s in se]), fmt="o-", ms=3, lw=1, color=colour, ecolor=colour,
                    elinewidth=1, capsize=2, label=f"{label}, mean ± 2 SE")
    ax.plot(r, m.rf_ridgeless_median, ls=":", lw=1, color="C0", label="minimum norm, median")
    ax.axvline(1.0, color="C3", ls="--", lw=1, label="N = n")
    ax.axhline(m.rf_noise_variance, color="0.4", ls=":", lw=1, label="noise floor τ²")
    ax.set(xscale="log", yscale="log", xlabel="random features per example N/n", ylabel="test error")
    ax.legend(fontsize=7, loc="upper left")
    top, at = rf_peak(m), rf_at_n(m)
    return png_figure(
        fig, "random-features-error",
        f"Test error of N ReLU random features fitted to n = {n} examples of a noisy linear target on the sphere, against "
        f"N/n, averaged over {m.rf_draws} draws of target, data and features (bars: ± 2 standard errors; dotted blue: the "
        f"median). Without a penalty (minimum-norm least squares, blue) the mean error is largest at N = {Ns[top]} "
        f"(N/n = {Ns[top] / n:.2f}), {m.rf_ridgeless[top]:.3g}; with the ridge penalty chosen for each N on a held-out set "
        f"(green) the error at N = {Ns[at]} is {m.rf_ridge[at]:.3g} and the curve "
        + ("never rises by more than 2 paired standard errors." if max(m.rf_rise_z) <= 2 else "rises somewhere by more "
           "than 2 paired standard errors.") + " Dotted grey: the noise level τ².",
    )


def random_features_table(m: DoubleDescentMeasured) -> Table:
    """Per N: N/n, the ridgeless mean test error, its SE and median, the tuned-ridge mean, its SE and the median chosen λ."""
    return Table("Random features: test error against N, minimum norm (ridgeless) and ridge tuned on held-out data",
                 ("N", "N/n", "ridgeless mean", "SE", "median", "tuned ridge mean", "SE", "median λ"),
                 tuple((N, N / m.rf_n, a, b, c, d, e, f) for N, a, b, c, d, e, f in zip(
                     m.rf_widths, m.rf_ridgeless, m.rf_ridgeless_se, m.rf_ridgeless_median, m.rf_ridge, m.rf_ridge_se,
                     m.rf_lambda, strict=True)))


FIGURES = (error_vs_p, random_features_error)
TABLES = (errors_table, random_features_table)
