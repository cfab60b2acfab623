"""What the report shows of an experiment besides its claims: figures (PNG or plotly) and tables.

Drawing functions (in :mod:`losslab.report.sections`) turn an experiment's Measured into these;
:func:`png_figure` renders a :class:`matplotlib.figure.Figure` made with
:func:`losslab.report.figures.subplots`, :func:`plotly_figure` stores a plotly figure as JSON.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from .._checks import LosslabError
from .._jsonable import jsonable

__all__ = ["Figure", "Table", "plotly_figure", "png_figure"]


@dataclass(frozen=True)
class Figure:
    """A figure of an experiment: a PNG (bytes), or a plotly figure (its JSON) that the report renders interactively.

    ``name`` is the file stem (letters, digits, ``-``); ``caption`` says what to look at; ``overlaps`` lists
    text elements of a PNG that collide (:func:`losslab.report.text_overlaps.text_overlaps`; a test requires none).
    """

    name: str
    caption: str
    png: bytes | None = None
    plotly_json: str | None = None
    overlaps: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.png is None) == (self.plotly_json is None):
            raise LosslabError(f"figure {self.name!r}: expected exactly one of png or plotly_json")
        if not self.name or not all(ch.isalnum() or ch == "-" for ch in self.name):
            raise LosslabError(f"figure name: expected letters, digits and '-', got {self.name!r}")


def png_figure(fig, name: str, caption: str) -> Figure:
    """Render a matplotlib figure (made with :func:`losslab.report.figures.subplots`) to PNG bytes as a :class:`Figure`."""
    from .text_overlaps import text_overlaps

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return Figure(name, caption, png=buf.getvalue(), overlaps=text_overlaps(fig))


def plotly_figure(fig, name: str, caption: str) -> Figure:
    """A plotly ``go.Figure`` as a :class:`Figure` (stored as JSON; the report embeds it with plotly.js)."""
    return Figure(name, caption, plotly_json=fig.to_json())


@dataclass(frozen=True)
class Table:
    """A small table of numbers for the report: a caption, column names and rows."""

    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]

    def to_dict(self) -> dict:
        return {"caption": self.caption, "columns": list(self.columns), "rows": jsonable(self.rows)}


