"""Section 10, relu-surface: the (w₀, w₁) surface as contours and in 3-D, with the valley and the certified chords."""

from __future__ import annotations

import numpy as np

from ...experiments.relu_surface import ReluSurfaceMeasured
from ..drawn import Figure, Table, plotly_figure, png_figure
from ..figures import subplots
from ..plots.surfaces import contour, surface

__all__ = ["FIGURES", "TABLES", "chords_table", "contour_figure", "surface_3d"]

LABELS = ("w₀", "w₁")
TITLE = "relu(w₁·relu(w₀x + b₀) + b₁)"


def _cap(m: ReluSurfaceMeasured) -> float:
    """The top of the colour scale: four times the larger of the grid chord's midpoint loss and y²."""
    return float(max(4 * m.grid_witness["losses"][2], 4 * m.y**2))


def contour_figure(m: ReluSurfaceMeasured) -> Figure:
    """Filled contours of the surface (capped), the zero-loss valley, the grid chord and its midpoint."""
    g, cap = m.grid_witness, _cap(m)
    fig, ax = subplots(figsize=(6, 4.4))
    contour(ax, m.surface.alphas, m.surface.betas, m.surface.losses, title=f"{TITLE}: squared loss of one sample", labels=LABELS,
            origin=m.centre, log=False, cap=cap)
    if len(m.valley):
        ax.plot(m.valley[:, 0], m.valley[:, 1], color="white", lw=1.2, ls="--", label="zero-loss valley")
    (a0, a1), (b0, b1) = g["a"], g["b"]
    ax.plot([a0, b0], [a1, b1], "o-", color="orange", lw=2, ms=5, label="certified chord")
    ax.plot([0.5 * (a0 + b0)], [0.5 * (a1 + b1)], "s", color="red", ms=6, label=f"midpoint: L = {g['losses'][2]:.3g}")
    ax.legend(loc="lower left", fontsize=7, framealpha=0.85)
    ax.title.set_fontsize(10)
    return png_figure(
        fig, "contour",
        f"The loss over (w₀, w₁) with b₀, b₁ fixed (colours capped at {cap:.3g}). The flat regions (w₀x + b₀ ≤ 0, or "
        "w₁·relu(·) + b₁ ≤ 0) are where a relu is dead: the gradient is exactly zero and training cannot move. The dashed "
        "white curve is the zero-loss valley. Both ends of the orange chord lie on or near the valley (loss ≈ 0), its midpoint "
        "(red square) above it: the chord is below the loss, which a convex function never allows.",
    )


def _hover(name: str) -> str:
    return f"{LABELS[0]} = %{{x:.3g}}<br>{LABELS[1]} = %{{y:.3g}}<br>loss = %{{z:.4g}}<extra>{name}</extra>"


def surface_3d(m: ReluSurfaceMeasured) -> Figure:
    """The capped surface in 3-D with the loss along the grid chord (red) and the chord itself (orange); legend below."""
    import plotly.graph_objects as go

    g, cap = m.grid_witness, _cap(m)
    path, path_losses = m.chord_path.numpy(), m.chord_path_losses.numpy()
    (a0, a1), (b0, b1) = g["a"], g["b"]
    along, straight = "loss along the chord", "the chord (straight line)"
    traces = [
        go.Scatter3d(x=path[:, 0], y=path[:, 1], z=np.minimum(path_losses, cap), mode="lines", line={"color": "red", "width": 6},
                     name=along, hovertemplate=_hover(along)),
        go.Scatter3d(x=[a0, b0], y=[a1, b1], z=g["losses"][:2], mode="lines+markers", line={"color": "orange", "width": 6},
                     marker={"size": 4}, name=straight, hovertemplate=_hover(straight)),
    ]
    fig = surface(m.surface.alphas, m.surface.betas, m.surface.losses, title=f"squared loss of {TITLE}", labels=LABELS,
                  origin=m.centre, extra=traces, cap=cap)
    # plotly puts the legend and the colourbar both at the top right (x = 1.02), the legend over the colourbar's title:
    # the legend goes below the scene, in one row
    fig.update_layout(legend={"orientation": "h", "x": 0.5, "xanchor": "center", "y": 0, "yanchor": "top"},
                      margin={"l": 0, "r": 0, "t": 40, "b": 40})
    return plotly_figure(
        fig, "surface-3d",
        f"The same surface in 3-D (losses above {cap:.3g} drawn at {cap:.3g}). Drag to rotate: the flat plateaus of dead relus, "
        "the curved zero-loss valley, and the orange chord between two valley points passing under the red path of the loss.",
    )


def _rounded(theta) -> list[float]:
    return [round(float(v), 4) for v in theta]


def chords_table(m: ReluSurfaceMeasured) -> Table:
    """The grid's certified chord and the verdict engine's, in (w₀, w₁)."""
    g, e = m.grid_witness, m.engine_witness
    rows = [("largest relative gap on the grid", _rounded(g["a"]), _rounded(g["b"]), 0.5, *g["losses"], g["gap"], g["bound"])]
    if m.engine_endpoints:
        wa, wb = m.engine_endpoints
        rows.append((f"verdict engine ({e['source']})", _rounded(wa), _rounded(wb), e["lam"], *e["losses"], e["gap"], e["bound"]))
    return Table(
        "The two certified chords (λ = 1/2 for the grid's; the engine's λ as found), in (w₀, w₁)",
        ("chord", "a", "b", "λ", "L(a)", "L(b)", "L(middle)", "gap", "rounding bound"), tuple(rows),
    )


FIGURES = (contour_figure, surface_3d)
TABLES = (chords_table,)
