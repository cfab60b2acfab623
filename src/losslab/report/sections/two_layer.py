"""Section 7, two-layer: the net's and its random features' plane slices, the net's slice in 3-D, verdicts and trainings."""

from __future__ import annotations

from ...experiments.two_layer import TwoLayerMeasured
from ..drawn import Figure, Table, plotly_figure, png_figure
from ..figures import subplots
from ..plots.surfaces import contour, surface

__all__ = ["FIGURES", "TABLES", "slices", "surface_3d", "training_table", "verdicts_table"]


def slices(m: TwoLayerMeasured) -> Figure:
    """Filled contours of both slices, their negative second differences as red dots."""
    fig, (left, right) = subplots(1, 2, figsize=(9.6, 3.6))
    for ax, grid, title in ((left, m.net_plane, f"trained net v·{m.activation}(Wx+b)"),
                            (right, m.rf_plane, "its initial features, frozen (random features)")):
        contour(ax, grid.alphas, grid.betas, grid.losses, title=title, violations=grid.locations)
    fig.subplots_adjust(wspace=0.42)  # room for the left colourbar's label before the right panel's β
    return png_figure(
        fig, "slices",
        "Left: the loss on a random plane (filter-normalised directions) through the trained two-layer net; red dots mark "
        "negative second differences, confirmed in float64 — the surface bends down there. Right: the same kind of plane "
        "through the random-features model that keeps the net's initial hidden layer (trained the same way): an exact "
        "quadratic bowl with no red dots.",
    )


def surface_3d(m: TwoLayerMeasured) -> Figure:
    """The net's slice as an interactive 3-D surface (hover: α, β, loss)."""
    grid = m.net_plane
    return plotly_figure(
        surface(grid.alphas, grid.betas, grid.losses, title="trained two-layer net: loss on a random plane"), "surface",
        "The left panel's slice in 3-D: drag to rotate. Look for ridges and saddles — a convex function could have none.",
    )


def verdicts_table(m: TwoLayerMeasured) -> Table:
    """The verdict in each parameter group alone, with its proof rule or the witness's source."""
    return Table("Verdict per parameter group, the others held at the initial point", ("group", "verdict", "evidence"),
                 tuple((g, v, m.by_group_evidence[g]) for g, v in m.by_group.items()))


def training_table(m: TwoLayerMeasured) -> Table:
    """Initial and trained losses of both models, beside the random-features model's closed-form minimum."""
    return Table(
        "Training losses: both models trained by the same Adam run from the same start; the random-features loss is convex, so its "
        "closed-form minimum is its global minimum",
        ("model", "parameters", "initial loss", "trained loss", "closed-form minimum"),
        (
            ("two-layer net (W, b, v)", m.net_params, m.net_initial_loss, m.net_trained_loss, "-"),
            ("random features (v)", m.rf_params, m.rf_initial_loss, m.rf_trained_loss, m.rf_least_squares_loss),
        ),
    )


FIGURES = (slices, surface_3d)
TABLES = (verdicts_table, training_table)
