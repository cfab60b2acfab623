"""Section 13, gd-vs-sgd: the final losses of each method from the same starts, and which minimum each reaches."""

from __future__ import annotations

import math

import torch

from ...experiments.gd_vs_sgd import GdVsSgdMeasured
from ..drawn import Figure, Table, png_figure
from ..figures import subplots

__all__ = ["FIGURES", "TABLES", "final_losses", "levels", "levels_table", "methods_table"]


def final_losses(m: GdVsSgdMeasured) -> Figure:
    """Violins of log10 of the final (unpolished) losses per method, with the lowest polished loss."""
    names = list(m.final_losses)
    fig, ax = subplots(figsize=(6, 4))
    finite = [torch.log10(raw[torch.isfinite(raw)]).numpy() for raw in m.final_losses.values()]
    ax.violinplot(finite, showmedians=True)
    if math.isfinite(m.best_loss):
        ax.axhline(math.log10(m.best_loss), color="C3", lw=1, ls="--", label="lowest polished loss")
        ax.legend(fontsize=8)
    ax.set_xticks(range(1, len(names) + 1), names, fontsize=8)
    ax.set(ylabel="log10 final training loss", title="final losses from the same starts")
    return png_figure(fig, "final-losses",
                      "Distribution of the loss at the end of training (before polishing) for each method, same starts, same "
                      "learning rate. The red line is the lowest minimum any run found after polishing (Newton steps from each end "
                      "point): training alone stops above it, so which minimum a start is counted at is read after polishing, in "
                      "the next figure.")


def levels(m: GdVsSgdMeasured) -> Figure:
    """Per method, the share of the starts ending at each of the (at most 8) lowest polished loss levels."""
    names = list(m.polished_losses)
    top = list(range(min(len(m.levels), 8)))
    fig, ax = subplots(figsize=(6, 4))
    width = 0.8 / max(len(names), 1)
    k = len(next(iter(m.polished_losses.values())))
    for j, name in enumerate(names):
        shares = [m.level_runs[i][j] / k for i in top]
        ax.bar([i + (j - (len(names) - 1) / 2) * width for i in top], shares, width=width, label=name)
    ax.set_xticks(top, [f"{m.levels[i]:.4g}\n{m.level_kinds[i][:3]}" for i in top], fontsize=7)
    ax.set(xlabel="polished loss level (and kind)", ylabel="share of starts", title="which minimum each method reaches")
    ax.legend(fontsize=8)
    return png_figure(fig, "levels",
                      "Share of the starts whose polished end point lies at each loss level, per method (levels sorted from the "
                      "lowest). If SGD escaped poor minima more often, its bars would shift to the left.")


def methods_table(m: GdVsSgdMeasured) -> Table:
    """One row per method: steps, share at the best level, critical runs, loss levels, minima up to symmetry, median raw loss."""
    return Table(
        "Each method from the same starts: the fraction reaching the best level (± binomial standard error), runs at a "
        "certified critical point after polishing, distinct loss levels and distinct minima up to symmetry among them, and "
        "the median loss at the end of training (before polishing)",
        ("method", "steps", "best level", "critical", "loss levels", "minima (canonical)", "median final loss"),
        tuple((name, p["steps"], f"{p['fraction_best']:.3f} ± {p['se']:.3f}", p["critical"], p["levels"], p["minima"], p["median_raw"])
              for name, p in m.per_method.items()),
    )


def levels_table(m: GdVsSgdMeasured) -> Table:
    """One row per loss level: its value, its kind, and how many runs of each method end there."""
    return Table("The loss levels reached (relative tolerance 1e-6), their kind by curvature, and how many runs of each method end there",
                 ("loss", "kind", *m.per_method), tuple((v, kind, *counts) for v, kind, counts in zip(m.levels, m.level_kinds, m.level_runs,
                                                                                                       strict=True)))


FIGURES = (final_losses, levels)
TABLES = (methods_table, levels_table)
