"""Section 6, feature-learning: test error against n for the five models, where the first layer points, two tables."""

from __future__ import annotations

import math

import matplotlib.ticker

from ...experiments._feature_learning_models import MODELS, subspace_fraction, unit_overlaps
from ...experiments.feature_learning import COUNT_DEGREES, COUNT_DIMS, FeatureLearningMeasured, model_names
from ..drawn import Figure, Table, png_figure
from ..figures import subplots

__all__ = ["FIGURES", "TABLES", "counts_table", "error_vs_n", "errors_table", "overlap"]

STYLE = {"linear": ("C7", "s"), "monomials": ("C3", "o"), "kernel_ridge": ("C1", "v"), "random_features": ("C2", "^"),
         "network": ("C0", "D")}
SHRUNK = 1e-3  # units whose ‖w_j‖ fell below this fraction of the largest initial norm are drawn at that floor


def error_vs_n(m: FeatureLearningMeasured) -> Figure:
    """Test error against n, log-log, one line per model."""
    names = model_names(m.degree)
    fig, ax = subplots(figsize=(6, 4))
    for key, _ in MODELS:
        color, marker = STYLE[key]
        ax.plot(m.n_values, m.test_errors[key], marker=marker, color=color, label=names[key])
    ax.axhline(m.linear_floor, color=STYLE["linear"][0], ls=":", lw=1, label="bias floor of the linear basis")
    ax.set(xscale="log", yscale="log", xlabel="training samples n", ylabel="test error / Var f*",
           title=f"{m.n_monomials:,} monomials vs {m.rf_width} random features vs a width-{m.width} network")
    ax.set_xticks(m.n_values, [str(n) for n in m.n_values])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return png_figure(fig, "error-vs-n",
                      "Test error (relative to Var f*) against the number of samples, log-log. The fixed bases flatten out: the "
                      "linear one at its bias floor (dotted), the full monomial basis interpolates its samples (by least squares, "
                      "or in kernel form with a small ridge λ when its features do not fit in memory: the same fixed basis), "
                      "random features cannot aim at the hidden directions. The trained network's error keeps falling with n.")


def overlap(m: FeatureLearningMeasured) -> Figure:
    """Per-unit overlap ‖Uᵀw_j‖/‖w_j‖ against ‖w_j‖, before and after training (at the largest n)."""
    W0, W1, U = m.W_before, m.W_after, m.U
    d, r = U.shape
    floor = SHRUNK * float(W0.norm(dim=1).max())
    fig, ax = subplots(figsize=(6, 4))
    for W, label, color in ((W0, "at initialisation", "0.55"), (W1, f"after training (n = {m.n_values[-1]})", "C0")):
        norms = W.norm(dim=1)
        ax.scatter(norms.clamp(min=floor).numpy(), unit_overlaps(W, U).numpy(), s=14, color=color,
                   label=f"{label}: ‖WU‖/‖W‖ = {subspace_fraction(W, U):.2f}")
    shrunk = int((W1.norm(dim=1) < floor).sum())
    if shrunk:
        ax.axvline(floor, color="0.8", lw=4, zorder=0, label=f"{shrunk} unit(s) shrunk below {floor:.0e} (drawn on this line)")
    ax.axhline(math.sqrt(r / d), color="0.3", ls="--", lw=1, label=f"√(r/d) = {math.sqrt(r / d):.2f} (random direction)")
    ax.set(xscale="log", ylim=(0, 1.05), xlabel="‖w_j‖ (norm of hidden unit j's weights)",
           ylabel="‖Uᵀw_j‖ / ‖w_j‖", title="how much of each unit's weight points along the hidden directions")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return png_figure(fig, "overlap",
                      "Each dot is a hidden unit: its weight norm (x) and the share of its weight vector inside the hidden "
                      "subspace span(U) (y). At initialisation every unit sits near √(r/d); after training the large units "
                      "point along the hidden directions; the units weight decay shrank towards 0 (the fit does not use them) are "
                      "drawn at the left edge, and their directions do not matter.")


def counts_table(m: FeatureLearningMeasured) -> Table:
    """The number of monomials of degree ≤ k in d variables, C(d + k, k), for a few d and k."""
    rows = tuple((d, *(m.monomial_counts[f"d={d},k={k}"] for k in COUNT_DEGREES)) for d in COUNT_DIMS)
    return Table("Monomials of total degree ≤ k in d variables, C(d + k, k): the size of the fixed basis",
                 ("d", *(f"k = {k}" for k in COUNT_DEGREES)), rows)


def errors_table(m: FeatureLearningMeasured) -> Table:
    """Test error / Var f* per n for every model, and how the monomial fit was computed."""
    names = model_names(m.degree)
    rows = tuple((n, *(round(m.test_errors[key][i], 5) for key, _ in MODELS), m.monomial_methods[i]) for i, n in enumerate(m.n_values))
    return Table(
        f"Test error / Var f* against n (d = {m.d}, r = {m.hidden_dims}, link {m.link}, noise {m.noise:g}); the last column says how "
        f"the {m.n_monomials:,}-monomial least-squares fit was computed (materialised features, or the same fit in kernel form)",
        ("n", *(names[key] for key, _ in MODELS), "monomial fit computed as"), rows,
    )


FIGURES = (error_vs_n, overlap)
TABLES = (counts_table, errors_table)
