"""Section 2, underfitting: the test error against n for both bases, and both fits at the largest n."""

from __future__ import annotations

import torch

from ...experiments._polyfit import polyval
from ...experiments.underfitting import UnderfittingMeasured
from ..drawn import Figure, Table, png_figure
from ..plots.curves import two_panels

__all__ = ["FIGURES", "TABLES", "error_vs_n", "errors_table"]


def error_vs_n(m: UnderfittingMeasured) -> Figure:
    """Left: test MSE against n (log-log) with the bias floor and the noise level; right: both fits at the largest n."""
    ns, s2 = m.ns, m.noise_variance
    labels = (f"degree {m.small_degree}", f"degree {m.large_degree}")
    fig, left, right = two_panels("test error against n", f"fits at n = {ns[-1]}")
    for label, errs, color in zip(labels, (m.test_mse_small, m.test_mse_large), ("C3", "C0"), strict=True):
        left.plot(ns, errs, "o-", color=color, label=label)
    left.axhline(m.bias_floor + s2, color="C3", ls="--", lw=1, label="bias floor + σ²")
    left.axhline(s2, color="C0", ls=":", lw=1, label="noise σ²")
    left.set(xscale="log", yscale="log", xlabel="training examples n", ylabel="test MSE")
    left.legend(fontsize=8)
    grid = torch.linspace(-1, 1, 201, dtype=torch.float64)
    right.scatter(m.shown_x, m.shown_y, s=4, color="0.6", label=f"data (n = {ns[-1]}, some shown)")
    right.plot(grid, polyval(m.truth, grid), "k--", lw=1.5, label="truth", zorder=3)
    for label, theta, color in zip(labels, (m.theta_small_last, m.theta_large_last), ("C3", "C0"), strict=True):
        right.plot(grid, polyval(theta, grid), color=color, lw=2, label=label)
    right.set(xlabel="x")
    right.legend(fontsize=8)
    return png_figure(
        fig, "error-vs-n",
        f"Left: exact test MSE against the number of examples (log-log). The degree-{m.small_degree} basis levels off at the "
        f"bias floor + σ² (dashed) — more data cannot remove the bias — while the degree-{m.large_degree} basis falls to the "
        "noise level σ² (dotted). Right: both fits at the largest n against the truth.",
    )


def errors_table(m: UnderfittingMeasured) -> Table:
    """Exact test MSE per n for both bases, beside the floor + σ² and σ²."""
    target = m.bias_floor + m.noise_variance
    return Table("Exact test MSE (mean over the repeats) against n",
                 ("n", f"degree {m.small_degree}", f"degree {m.large_degree}", "floor + σ²", "σ²"),
                 tuple((n, a, b, target, m.noise_variance) for n, a, b in zip(m.ns, m.test_mse_small, m.test_mse_large, strict=True)))


FIGURES = (error_vs_n,)
TABLES = (errors_table,)
