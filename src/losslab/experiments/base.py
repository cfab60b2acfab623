"""What an experiment is and what it returns: settings in; numbers, tables, figures and checked claims out.

An :class:`Experiment` has a frozen dataclass of settings (the full run's defaults), a dict of
overrides for ``--quick``, and ``run(settings, seed, say) -> Outcome``. :func:`run_experiment`
times it and wraps the outcome into a :class:`Result` with the settings it ran with.

A :class:`Claim` states one step of the argument and whether the measured numbers bear it out;
a claim that fails is reported as failed, never re-tuned until it passes.

Example:
    >>> c = claim("one plus one is two", abs(1 + 1 - 2) <= 0, "|1 + 1 − 2| = {err:.1g}", err=0.0)
    >>> c.holds, c.evidence
    (True, '|1 + 1 − 2| = 0')
"""

from __future__ import annotations

import dataclasses
import io
import math
import time
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .._checks import LosslabError

__all__ = [
    "Claim",
    "Experiment",
    "Figure",
    "Outcome",
    "Result",
    "Table",
    "claim",
    "jsonable",
    "parse_settings",
    "plotly_figure",
    "png_figure",
    "run_experiment",
]

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def jsonable(x: object) -> object:
    """``x`` with tensors, arrays and NumPy scalars turned into plain lists and numbers; NaN/inf as strings."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    if hasattr(x, "tolist"):
        x = x.tolist()
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, (bool, int, float, str)) or x is None:
        return x
    return str(x)


@dataclass(frozen=True)
class Claim:
    """One claim of the argument, the numbers that decide it, and whether they bear it out.

    Attributes:
        statement: the claim in words, e.g. "the training loss is convex in θ".
        holds: whether the measurement supports it.
        evidence: the deciding numbers as a sentence, e.g. "max |XᵀXθ − Xᵀy| = 3e-13 ≤ 1e-8".
        values: those numbers by name (JSON-able).
    """

    statement: str
    holds: bool
    evidence: str
    values: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"statement": self.statement, "holds": bool(self.holds), "evidence": self.evidence, "values": jsonable(self.values)}


def claim(statement: str, holds: object, evidence: str, **values: object) -> Claim:
    """A :class:`Claim`; ``evidence`` is formatted with ``values`` (``str.format`` fields)."""
    return Claim(statement, bool(holds), evidence.format(**values), dict(values))


@dataclass(frozen=True)
class Figure:
    """A figure of an experiment: a PNG (bytes), or a plotly figure (its JSON) that the report renders interactively.

    ``name`` is the file stem (letters, digits, ``-``); ``caption`` says what to look at.
    """

    name: str
    caption: str
    png: bytes | None = None
    plotly_json: str | None = None

    def __post_init__(self) -> None:
        if (self.png is None) == (self.plotly_json is None):
            raise LosslabError(f"figure {self.name!r}: expected exactly one of png or plotly_json")
        if not self.name or not all(ch.isalnum() or ch == "-" for ch in self.name):
            raise LosslabError(f"figure name: expected letters, digits and '-', got {self.name!r}")


def png_figure(fig, name: str, caption: str) -> Figure:
    """Render a matplotlib figure (made with :func:`losslab.report.figures.subplots`) to PNG bytes as a :class:`Figure`."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return Figure(name, caption, png=buf.getvalue())


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


@dataclass(frozen=True)
class Outcome:
    """What ``Experiment.run`` returns: numbers (JSON-able by :func:`jsonable`), claims, figures, tables."""

    numbers: dict
    claims: tuple[Claim, ...]
    figures: tuple[Figure, ...] = ()
    tables: tuple[Table, ...] = ()


@dataclass(frozen=True)
class Experiment:
    """A named experiment of the report.

    Attributes:
        name: CLI name, e.g. ``"overfitting"``.
        number: its place in the argument (1, 2, …).
        title: a heading.
        intro: the step of the argument it checks, a few sentences (plain text).
        settings: a frozen dataclass type whose defaults are the full run's settings.
        quick: field overrides for ``--quick`` (the whole report in under a minute).
        run: ``run(settings, seed, say) -> Outcome``; ``say(msg)`` reports progress.
    """

    name: str
    number: int
    title: str
    intro: str
    settings: type
    quick: dict
    run: Callable[[object, int, Say], Outcome]

    def make_settings(self, *, quick: bool = False, overrides: Mapping[str, object] | None = None):
        """The settings for a run: defaults, then the quick overrides, then ``overrides`` (validated)."""
        base = self.settings()
        if quick:
            base = dataclasses.replace(base, **self.quick)
        return parse_settings(base, overrides or {}, what=f"experiment {self.name!r}")


@dataclass(frozen=True)
class Result:
    """A finished experiment: what it is, what it ran with, and its outcome."""

    name: str
    number: int
    title: str
    intro: str
    seed: int
    quick: bool
    settings: dict
    seconds: float
    numbers: dict
    claims: tuple[Claim, ...]
    figures: tuple[Figure, ...]
    tables: tuple[Table, ...]

    @property
    def passed(self) -> bool:
        """Whether every claim held."""
        return all(c.holds for c in self.claims)

    def to_dict(self) -> dict:
        """Everything but the figure contents, JSON-able (figures by name and caption)."""
        return {
            "name": self.name, "number": self.number, "title": self.title, "seed": self.seed, "quick": self.quick,
            "settings": jsonable(self.settings), "seconds": round(self.seconds, 3), "passed": self.passed,
            "numbers": jsonable(self.numbers), "claims": [c.to_dict() for c in self.claims],
            "figures": [{"name": f.name, "caption": f.caption, "kind": "png" if f.png is not None else "plotly"}
                        for f in self.figures],
            "tables": [t.to_dict() for t in self.tables],
        }


def _convert(name: str, kind: object, raw: object, what: str) -> object:
    """``raw`` (often a string from ``--set``) as the settings field's type, or a LosslabError."""
    if not isinstance(raw, str):
        return raw
    origin = typing.get_origin(kind)
    try:
        if kind is bool:
            low = raw.strip().lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return low in ("true", "1", "yes")
        if kind in (int, float, str):
            return kind(raw)
        if origin is tuple:
            inner = typing.get_args(kind)[0]
            return tuple(inner(p) for p in raw.split(",") if p.strip())
    except ValueError:
        raise LosslabError(f"{what}: expected {getattr(kind, '__name__', kind)} for {name}, got {raw!r}") from None
    return raw


def parse_settings(base: object, overrides: Mapping[str, object], *, what: str = "settings") -> object:
    """``base`` (a settings dataclass) with ``overrides`` applied; unknown keys and bad values are errors.

    String values are converted to the field's type: ``"3"`` → 3, ``"1,2,4"`` → (1, 2, 4) for a tuple field.
    """
    hints = typing.get_type_hints(type(base))
    names = [f.name for f in dataclasses.fields(base)]
    unknown = [k for k in overrides if k not in names]
    if unknown:
        raise LosslabError(f"{what}: unknown setting {unknown[0]!r}; valid settings: {', '.join(names)}")
    values = {k: _convert(k, hints[k], v, what) for k, v in overrides.items()}
    try:
        return dataclasses.replace(base, **values)
    except (ValueError, TypeError) as err:
        raise LosslabError(f"{what}: {err}") from None


def run_experiment(experiment: Experiment, *, seed: int = 0, quick: bool = False,
                   overrides: Mapping[str, object] | None = None, say: Say = _quiet) -> Result:
    """Run ``experiment`` with its (quick) settings and ``overrides``; same seed, same numbers."""
    settings = experiment.make_settings(quick=quick, overrides=overrides)
    start = time.perf_counter()
    outcome = experiment.run(settings, seed, say)
    seconds = time.perf_counter() - start
    return Result(
        name=experiment.name, number=experiment.number, title=experiment.title, intro=experiment.intro, seed=seed,
        quick=quick, settings=dataclasses.asdict(settings), seconds=seconds, numbers=dict(outcome.numbers),
        claims=tuple(outcome.claims), figures=tuple(outcome.figures), tables=tuple(outcome.tables),
    )
