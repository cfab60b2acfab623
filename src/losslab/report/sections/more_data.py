"""Section 4, more data: the excess error of the large basis against n, and its fitted curves as n grows."""

from __future__ import annotations

import torch

from ...experiments._polyfit import polyval
from ...experiments.more_data import MoreDataMeasured
from ..drawn import Figure, Table, png_figure
from ..plots.curves import two_panels

__all__ = ["FIGURES", "TABLES", "error_and_fits_vs_n", "errors_table"]


def error_and_fits_vs_n(m: MoreDataMeasured) -> Figure:
    """Left: the exact excess error against n (log-log) beside σ²·p/n; right: the fits at a few n against the truth."""
    ns, s2 = m.ns, m.noise_variance
    fig, left, right = two_panels(f"excess test error of the degree-{m.degree} fit", "fitted curves as n grows")
    left.plot(ns, m.excess, "o-", color="C3", label="E[(f̂ − g)²] (exact)")
    left.plot(ns, [s2 * (m.degree + 1) / n for n in ns], color="0.5", ls="--", lw=1, label="σ²·p/n")
    left.axhline(s2, color="0.3", ls=":", lw=1, label="noise variance σ²")
    left.axhline(0.1 * s2, color="C2", ls=":", lw=1, label="10% of σ²")
    left.set(xscale="log", yscale="log", xlabel="training examples n", ylabel="excess test MSE")
    left.legend(fontsize=8)
    grid = torch.linspace(-1, 1, 401, dtype=torch.float64)
    right.plot(grid, polyval(m.truth, grid), "k--", lw=1.5, label="truth", zorder=5)
    shown = sorted({0, len(ns) // 3, 2 * len(ns) // 3, len(ns) - 1})
    for color, i in zip(("C3", "C1", "C0", "C2"), shown, strict=False):
        right.plot(grid, polyval(m.thetas[i], grid), color=color, lw=1.5, label=f"n = {ns[i]}")
    right.set(xlabel="x", ylim=(-1.0, 1.0))
    right.legend(fontsize=8)
    return png_figure(
        fig, "error-and-fits-vs-n",
        f"Left: the exact excess test error of the degree-{m.degree} fit against n (log-log). With barely more examples "
        f"than its {m.degree + 1} features it is huge; once n is many times the number of features it follows σ²·p/n "
        "(dashed), tenfold less per decade of data. Right: the fitted curves at a few n; the wild small-n fit settles onto the truth "
        "(dashed) as n grows.",
    )


def errors_table(m: MoreDataMeasured) -> Table:
    """Per n: the exact excess and test error, the theory σ²·p/n and the largest deviation from the truth."""
    s2, p = m.noise_variance, m.degree + 1
    return Table(f"Degree-{m.degree} fit: exact excess and test error (mean of {m.repeats} draws), and the largest "
                 "deviation from the truth (worst draw)",
                 ("n", "excess E[(f̂ − g)²]", "test MSE", "σ²·p/n", "max |f̂ − g|"),
                 tuple((n, e, e + s2, s2 * p / n, d) for n, e, d in zip(m.ns, m.excess, m.max_deviation, strict=True)))


FIGURES = (error_and_fits_vs_n,)
TABLES = (errors_table,)
