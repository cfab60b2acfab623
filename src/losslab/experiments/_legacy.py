"""TRANSITIONAL (issue #11): experiments not yet split into measure / claims / figures run through this adapter.

Deleted when the last experiment is converted. ``run(settings, seed, say) -> Outcome`` becomes a
``measure`` that keeps the Outcome in a :class:`LegacyMeasured`; its claims get keys from their order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..report.drawn import Figure, Table, plotly_figure, png_figure
from .base import Claim, Experiment, Measured, jsonable

__all__ = ["Figure", "Outcome", "Table", "claim", "legacy_experiment", "plotly_figure", "png_figure"]


@dataclass(frozen=True)
class Outcome:
    numbers: dict
    claims: tuple
    figures: tuple = ()
    tables: tuple = ()


@dataclass(frozen=True)
class LegacyMeasured(Measured):
    outcome: Outcome

    def to_dict(self) -> dict:
        return jsonable(self.outcome.numbers)


def claim(statement: str, holds: object, evidence: str, **values: object) -> Claim:
    return Claim("pending", statement, bool(holds), evidence.format(**values), dict(values))


def legacy_experiment(*, name: str, number: int, title: str, intro: str, settings: type, quick: dict,
                      run: Callable) -> Experiment:
    def measure(s, seed, say):
        return LegacyMeasured(run(s, seed, say))

    def claims(s, measured):
        return tuple(Claim(f"claim-{i + 1}", c.statement, c.holds, c.evidence, c.values) for i, c in enumerate(measured.outcome.claims))

    return Experiment(name=name, number=number, title=title, intro=intro, settings=settings, quick=quick, measure=measure,
                      claims=claims)
