"""The figures and tables of each experiment's section, drawn from its Measured alone.

Each built-in experiment has a module here named like its module in :mod:`losslab.experiments`,
defining ``FIGURES`` and ``TABLES``: tuples of functions ``measured -> Figure`` and
``measured -> Table``. The captions live beside the drawing. A user's own experiment registers
its lists with :func:`register_drawings`. :func:`draw` returns a Result with its figures and tables.

The drawing functions build on the shared figure kinds of :mod:`losslab.report.plots`
(curves, contour + surface, histograms) and use matplotlib's object API only.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Sequence

from ..._checks import LosslabError
from ..drawn import Figure, Table

__all__ = ["draw", "drawings", "register_drawings"]

_REGISTERED: dict[str, tuple[tuple[Callable, ...], tuple[Callable, ...]]] = {}


def register_drawings(name: str, figures: Sequence[Callable] = (), tables: Sequence[Callable] = ()) -> None:
    """Register the figure and table functions (each ``measured -> Figure`` / ``-> Table``) of experiment ``name``.

    ``name`` is the registered experiment's name; a built-in experiment's figures live in this package and
    cannot be replaced. Registering a name again replaces its lists.
    """
    from ...experiments import MODULES

    if name in MODULES:
        raise LosslabError(f"register_drawings: {name!r} is a built-in experiment (its figures are in losslab.report.sections); "
                           "register your own experiment under another name")
    figures, tables = (tuple(fns) if isinstance(fns, (list, tuple)) else fns for fns in (figures, tables))
    if not isinstance(figures, tuple) or not isinstance(tables, tuple) or not all(callable(f) for f in (*figures, *tables)):
        raise LosslabError(f"register_drawings({name!r}): expected tuples of functions measured -> Figure/Table, got "
                           f"figures={figures!r}, tables={tables!r}")
    _REGISTERED[name] = (figures, tables)


def drawings(name: str) -> tuple[tuple[Callable, ...], tuple[Callable, ...]]:
    """(figure functions, table functions) of experiment ``name``: registered, or its module here, or none."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    from ...experiments import MODULES

    if name not in MODULES:
        return (), ()
    module = importlib.import_module(f"{__name__}.{MODULES[name]}")
    return tuple(module.FIGURES), tuple(module.TABLES)


def draw(result):
    """``result`` with its figures and tables drawn from ``result.measured`` (unchanged when it has none)."""
    if result.measured is None:
        return result
    figure_fns, table_fns = drawings(result.name)
    figures = tuple(_checked(f, result, Figure) for f in figure_fns)
    names = [f.name for f in figures]
    if len(set(names)) != len(names):
        raise LosslabError(f"experiment {result.name!r}: expected distinct figure names (they name the report's files), got {names}")
    return dataclasses.replace(result, figures=figures, tables=tuple(_checked(t, result, Table) for t in table_fns))


def _checked(fn: Callable, result, kind: type):
    out = fn(result.measured)
    if not isinstance(out, kind):
        raise LosslabError(f"experiment {result.name!r}: the drawing function {getattr(fn, '__name__', fn)!r} returned "
                           f"{type(out).__name__}; expected a {kind.__name__} (png_figure, plotly_figure or Table of losslab.report.drawn)")
    return out
