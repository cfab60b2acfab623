"""Figures of slices and spectra: matplotlib PNGs, and plotly 3-D surfaces as standalone HTML.

Every HTML figure embeds plotly.js (``include_plotlyjs=True``), so it opens from disk on a
machine with no network. Figures take analysis results (data) and a path; they return the path.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .plots.surfaces import contour, surface


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], dpi: float | None = None, **kwargs):
    """(figure, axes) like ``matplotlib.pyplot.subplots``, through matplotlib's object API: no pyplot state and no
    backend switch, so importing or running losslab leaves a notebook's backend alone. ``savefig`` renders with Agg."""
    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def line_png(slice_, path: str | Path, *, title: str = "loss along a line") -> Path:
    """L(t) along θ(t) = (1−t)·a + t·b from a :class:`~losslab.landscape.LineSlice`; a and b marked."""
    t, losses = _np(slice_.t), _np(slice_.losses)
    fig, ax = subplots(figsize=(6, 4), dpi=120)
    ax.plot(t, losses, color="C0", lw=2)
    for end, label in ((0.0, "a"), (1.0, "b")):
        ax.axvline(end, color="0.7", lw=1, ls="--")
        ax.annotate(label, (end, float(np.interp(end, t, losses))), textcoords="offset points", xytext=(4, 6))
    ax.set(xlabel="t", ylabel="loss", title=title)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def plane_contour_png(slice_, path: str | Path, *, title: str = "loss on a plane", log: bool | None = None) -> Path:
    """Filled contours of L(center + α·d1 + β·d2) from a :class:`~losslab.landscape.PlaneSlice` (:func:`.plots.surfaces.contour`).

    ``log`` (default: when the losses span more than two decades) contours log10 of the loss.
    """
    fig, ax = subplots(figsize=(5.5, 4.5), dpi=120)
    contour(ax, slice_.alphas, slice_.betas, slice_.losses, title=title, labels=("α (direction 1)", "β (direction 2)"), log=log)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def plane_surface_html(slice_, path: str | Path, *, title: str = "loss surface") -> Path:
    """An interactive 3-D surface of the plane slice (:func:`.plots.surfaces.surface`), plotly.js embedded (works offline)."""
    fig = surface(slice_.alphas, slice_.betas, slice_.losses, title=html.escape(title))
    fig.update_layout(height=None)  # a page of its own: the figure fills the window
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
    return Path(path)


def spectrum_png(grid, density, path: str | Path, *, eigenvalues=None, title: str = "Hessian spectral density") -> Path:
    """A spectral density ρ(λ) on ``grid`` (log scale), with exact or Ritz ``eigenvalues`` as ticks."""
    grid, density = _np(grid), _np(density)
    fig, ax = subplots(figsize=(6, 4), dpi=120)
    floor = max(float(density.max()), 1e-300) * 1e-8  # show eight decades below the peak
    ax.semilogy(grid, np.maximum(density, floor), color="C0", lw=1.5)
    ax.set_ylim(bottom=floor)
    if eigenvalues is not None:
        ev = _np(eigenvalues)
        ax.plot(ev, np.full_like(ev, max(density.max(), 1e-12) * 1.5), "|", color="C3", ms=12, label="Lanczos eigenvalues")
        ax.legend(fontsize=8)
    ax.axvline(0.0, color="0.6", lw=1, ls="--")
    ax.set(xlabel="eigenvalue λ", ylabel="density", title=title)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)
