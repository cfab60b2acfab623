"""A loss on a plane: filled contours (matplotlib) and an interactive 3-D surface (plotly), from arrays.

``losses[i, j]`` is the loss at (alphas[i], betas[j]) — rows are α, as in
:class:`~losslab.landscape.PlaneSlice`. The colour scale is log10 of the loss when the losses are
positive and span more than two decades.
"""

from __future__ import annotations

import numpy as np

__all__ = ["contour", "grid", "log_scale", "surface"]


def grid(alphas, betas, losses) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(α, β, L) as float64 NumPy arrays (tensors, arrays or nested lists)."""
    def arr(x):
        x = x.detach().cpu().numpy() if hasattr(x, "detach") else x
        return np.asarray(x, dtype=np.float64)

    return arr(alphas), arr(betas), arr(losses)


def log_scale(losses: np.ndarray) -> bool:
    """Whether to colour log10 of the loss: positive losses spanning more than two decades."""
    return bool(losses.min() > 0 and losses.max() / losses.min() > 100)


def contour(ax, alphas, betas, losses, *, title: str, violations=None, labels=("α", "β"), origin=(0.0, 0.0),
            log: bool | None = None, cap: float | None = None) -> None:
    """Filled contours of the plane on ``ax``; ``violations`` ((k, 2) coordinates of negative second differences) as red dots.

    The axes show α + origin[0], β + origin[1]; ``log`` (default :func:`log_scale`) contours log10 of the loss;
    values above ``cap`` (if given) share the top colour. The colourbar label is short (it sits beside the panel).
    """
    a, b, L = grid(alphas, betas, losses)
    a, b = a + origin[0], b + origin[1]
    log = log_scale(L) if log is None else log and bool(L.min() > 0)
    z = np.log10(L) if log else L
    if cap is not None:
        z = np.minimum(z, cap)
    filled = ax.contourf(a, b, z.T, levels=20, cmap="viridis")
    ax.contour(a, b, z.T, levels=10, colors="k", linewidths=0.3, alpha=0.5)
    label = "log₁₀ loss" if log else "loss"
    ax.figure.colorbar(filled, ax=ax, label=label if cap is None else f"{label} (top colour: ≥ {cap:g})")
    if violations is not None and len(violations):
        where = np.asarray(violations, dtype=np.float64) + np.asarray(origin)
        ax.plot(where[:, 0], where[:, 1], ".", color="red", ms=2.5, label=f"{len(where)} negative 2nd differences")
    ax.plot([origin[0]], [origin[1]], "w*", ms=10, mec="k", label="centre")
    ax.set(xlabel=labels[0], ylabel=labels[1], title=title)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.8)


def surface(alphas, betas, losses, *, title: str, labels=("α", "β"), extra=(), origin=(0.0, 0.0), cap: float | None = None):
    """An interactive plotly 3-D surface of the plane (plus plotly traces ``extra``): a ``go.Figure``.

    Hovering shows the two coordinates by their names and the loss. Values above ``cap`` (if given) are drawn at ``cap``.
    """
    import plotly.graph_objects as go

    a, b, L = grid(alphas, betas, losses)
    a, b = a + origin[0], b + origin[1]
    if cap is not None:
        L = np.minimum(L, cap)
    hover = f"{labels[0]} = %{{x:.3g}}<br>{labels[1]} = %{{y:.3g}}<br>loss = %{{z:.4g}}<extra></extra>"
    fig = go.Figure([go.Surface(x=a, y=b, z=L.T, colorscale="Viridis", colorbar={"title": {"text": "loss"}}, name="loss",
                                hovertemplate=hover), *extra])
    fig.update_layout(
        title=title, scene={"xaxis_title": labels[0], "yaxis_title": labels[1], "zaxis_title": "loss"},
        margin={"l": 0, "r": 0, "t": 40, "b": 0}, height=520,
    )
    return fig
