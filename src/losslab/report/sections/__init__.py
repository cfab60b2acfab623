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

__all__ = ["draw", "drawings", "register_drawings"]

_REGISTERED: dict[str, tuple[tuple[Callable, ...], tuple[Callable, ...]]] = {}


def register_drawings(name: str, figures: Sequence[Callable] = (), tables: Sequence[Callable] = ()) -> None:
    """Register the figure and table functions (each ``measured -> Figure`` / ``-> Table``) of experiment ``name``."""
    if not all(callable(f) for f in (*figures, *tables)):
        raise LosslabError(f"register_drawings({name!r}): expected functions measured -> Figure/Table, got {figures!r}, {tables!r}")
    _REGISTERED[name] = (tuple(figures), tuple(tables))


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
    return dataclasses.replace(result, figures=tuple(f(result.measured) for f in figure_fns),
                               tables=tuple(t(result.measured) for t in table_fns))
