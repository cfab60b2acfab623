"""Text that collides in a rendered matplotlib figure: axis labels, titles, legends, colourbar labels and tick labels.

After a figure is drawn, every text element has a bounding box in display pixels. Two elements
*collide* when their boxes intersect by more than ``slack`` pixels in both directions and they are
not meant to share space: elements of different axes (a colourbar's label and the next panel's
axis label; a legend and a colourbar title), or two labelled elements of one axes (a legend over
the title). Tick labels of one axis among themselves, and a legend over its own plotted data, are
not checked. The report records the collisions of each PNG (:attr:`losslab.report.drawn.Figure.overlaps`),
and a test requires none.
"""

from __future__ import annotations

import itertools

__all__ = ["text_boxes", "text_overlaps"]


def text_boxes(fig, renderer) -> list[tuple[str, int, object]]:
    """(description, index of its axes, display-pixel bbox) of every visible, non-empty text element of ``fig``."""
    boxes = []
    for i, ax in enumerate(fig.axes):
        named = [("title", ax.title), ("x label", ax.xaxis.label), ("y label", ax.yaxis.label)]
        for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            lo, hi = min(lo, hi), max(lo, hi)
            pad = 1e-9 * (hi - lo)
            named += [("tick label", t) for loc, t in zip(axis.get_majorticklocs(), axis.get_majorticklabels(), strict=False)
                      if lo - pad <= loc <= hi + pad]  # ticks outside the view are not drawn
        for kind, text in named:
            if text.get_visible() and text.get_text().strip():
                boxes.append((f"{kind} {text.get_text()!r} (axes {i})", i, text.get_window_extent(renderer)))
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            boxes.append((f"legend (axes {i})", i, legend.get_window_extent(renderer)))
    for text in fig.texts:
        if text.get_visible() and text.get_text().strip():
            boxes.append((f"figure text {text.get_text()!r}", -1, text.get_window_extent(renderer)))
    return boxes


def _intersect(a, b, slack: float) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > slack and min(a.y1, b.y1) - max(a.y0, b.y0) > slack


def text_overlaps(fig, *, slack: float = 1.0) -> tuple[str, ...]:
    """The colliding pairs of text elements of the drawn ``fig``, each as "A × B"; empty when nothing collides."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # a canvas for this figure only; no backend switch

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    out = []
    for (da, ia, ba), (db, ib, bb) in itertools.combinations(text_boxes(fig, canvas.get_renderer()), 2):
        same_axes_ticks = ia == ib and (da.startswith("tick label") or db.startswith("tick label"))
        if not same_axes_ticks and _intersect(ba, bb, slack):
            out.append(f"{da} × {db}")
    return tuple(out)
