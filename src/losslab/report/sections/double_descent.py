"""Section 14, double descent: the measured test error against p with the exact curve, and the numbers per p."""

from __future__ import annotations

import math

from ...experiments.double_descent import DoubleDescentMeasured, expected_error
from ..drawn import Figure, Table, png_figure
from ..figures import subplots

__all__ = ["FIGURES", "TABLES", "error_vs_p", "errors_table"]


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


FIGURES = (error_vs_p,)
TABLES = (errors_table,)
