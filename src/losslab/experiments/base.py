"""What an experiment is: settings in; a Measured (numbers) and keyed claims out. Nothing here draws.

An :class:`Experiment` has

* ``settings``: a frozen :class:`~losslab.experiments.settings.Settings` dataclass (the full run's
  defaults, with declarative constraints) and ``quick``, field overrides for ``--quick``;
* ``measure(settings, seed, say) -> Measured``: the computation — a frozen dataclass of numbers,
  arrays and tensors that serialises to JSON and holds everything the figures need;
* ``claims(settings, measured) -> tuple[Claim, ...]``: the judgement — each :class:`Claim` has a
  stable ``key`` that tests and the report read it by.

:func:`run_experiment` times ``measure``, judges the claims and returns a :class:`Result`. The
figures and tables are drawn from the Measured alone by the functions registered for the
experiment in :mod:`losslab.report.sections`; :func:`losslab.report.draw` adds them to a Result.

A claim that fails is reported as failed, never re-tuned until it passes.

Example:
    >>> c = claim("sum", "one plus one is two", abs(1 + 1 - 2) <= 0, "|1 + 1 − 2| = {err:.1g}", err=0.0)
    >>> c.key, c.holds, c.evidence
    ('sum', True, '|1 + 1 − 2| = 0')
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from .._checks import LosslabError
from .._jsonable import jsonable
from ._from_json import dataclass_from_json
from .settings import parse_settings

__all__ = [
    "Claim",
    "Experiment",
    "Measured",
    "Result",
    "claim",
    "jsonable",
    "parse_settings",
    "run_experiment",
]

Say = Callable[[str], None]
_KEY = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Claim:
    """One claim of the argument, the numbers that decide it, and whether they bear it out.

    Attributes:
        key: a stable name, lower-case words joined by ``-`` (e.g. ``"train-error-monotone"``); tests and the
            report find the claim by it, so reordering or rewording claims changes nothing that reads them.
        statement: the claim in words, e.g. "the training loss is convex in θ".
        holds: whether the measurement supports it.
        evidence: the deciding numbers as a sentence, e.g. "max |XᵀXθ − Xᵀy| = 3e-13 ≤ 1e-8".
        values: those numbers by name (JSON-able).
        plain: the evidence in one plain sentence for a learner, when it names a specialist method or formula.
    """

    key: str
    statement: str
    holds: bool
    evidence: str
    values: dict = field(default_factory=dict)
    plain: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not _KEY.fullmatch(self.key):
            raise LosslabError(f"claim key: expected lower-case words joined by '-', got {self.key!r}")
        if not isinstance(self.holds, bool):
            raise LosslabError(f"claim {self.key!r}: expected holds to be True or False, got {self.holds!r}")

    def to_dict(self) -> dict:
        return {"key": self.key, "statement": self.statement, "holds": bool(self.holds), "evidence": self.evidence,
                "plain": self.plain, "values": jsonable(self.values)}


def claim(key: str, statement: str, holds: object, evidence: str, *, plain: str = "", **values: object) -> Claim:
    """A :class:`Claim`; ``evidence`` is formatted with ``values`` (``str.format`` fields: write a literal brace as ``{{``).

    Raises:
        LosslabError: ``evidence`` names a value not given, or does not parse as a format string.
    """
    holds = _truth(key, holds)
    try:
        text = evidence.format(**values)
    except (KeyError, IndexError, ValueError) as err:
        raise LosslabError(f"claim {key!r}: its evidence {evidence!r} does not format with the values {sorted(values)} "
                           f"({type(err).__name__}: {err}); name each {{field}} as a keyword value, a literal brace as {{{{") from None
    return Claim(key, statement, holds, text, dict(values), plain)


def _truth(key: str, holds: object) -> bool:
    """``holds`` as a bool: a bool, a NumPy bool or a one-element boolean tensor; anything else (NaN, an array, a string)
    is refused, so that a claim cannot hold by accident (``bool(nan)`` is True)."""
    if isinstance(holds, (bool, np.bool_)):
        return bool(holds)
    if isinstance(holds, torch.Tensor) and holds.dtype == torch.bool and holds.numel() == 1:
        return bool(holds)
    raise LosslabError(f"claim {key!r}: expected holds to be True or False (a comparison), got {holds!r}")


@dataclass(frozen=True)
class Measured:
    """Base of an experiment's measurements: a frozen dataclass of numbers, lists, arrays and tensors.

    It holds everything the claims and the figures read; :meth:`to_dict` is its JSON form (results.json, a sweep's
    rows) and :meth:`from_dict` rebuilds it from that form.
    """

    def to_dict(self) -> dict:
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping) -> Measured:
        """The Measured that :meth:`to_dict` wrote ``data`` from (after a trip through JSON), rebuilt by field annotation.

        Tensors come back from nested lists as bool, int64 or float64 by their entries (a float32 tensor comes back
        float64 with the same values: JSON keeps no dtype); ``"nan"``/``"inf"``/``"-inf"`` come back as floats;
        nested dataclasses, enums, ``list``/``tuple``/``dict`` and ``X | None`` fields element by element; a bare
        ``dict`` or ``list`` field comes back as plain JSON (non-finite strings restored, tensors as lists). So
        ``type(m).from_dict(json.loads(json.dumps(m.to_dict()))).to_dict() == m.to_dict()``. The table of field
        types is in :mod:`losslab.experiments._from_json`.

        Raises:
            LosslabError: ``data`` is not a mapping; a field is missing or unknown; a value is not of its field's
                kind (the message names the field's path, e.g. ``configs[2].rates``).
        """
        return dataclass_from_json(cls, data)


@dataclass(frozen=True)
class Experiment:
    """A named experiment of the report.

    Attributes:
        name: CLI name, e.g. ``"overfitting"``.
        number: its place in the argument (1, 2, …).
        title: a heading.
        intro: the step of the argument it checks, a few sentences (plain text).
        settings: a frozen settings dataclass type whose defaults are the full run's settings.
        quick: field overrides for ``--quick`` (the whole report in under a minute).
        measure: ``measure(settings, seed, say) -> Measured``; ``say(msg)`` reports progress.
        claims: ``claims(settings, measured) -> tuple[Claim, ...]``.
    """

    name: str
    number: int
    title: str
    intro: str
    settings: type
    quick: dict
    measure: Callable[[object, int, Say], Measured]
    claims: Callable[[object, Measured], tuple[Claim, ...]]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _KEY.fullmatch(self.name):  # it names files of the report
            raise LosslabError(f"experiment name: expected lower-case words joined by '-', got {self.name!r}")

    def make_settings(self, *, quick: bool = False, overrides: Mapping[str, object] | None = None):
        """The settings for a run: defaults, then the quick overrides, then ``overrides`` (validated)."""
        base = self.settings()
        if quick:
            base = parse_settings(base, self.quick, what=f"experiment {self.name!r}, its quick settings")
        return parse_settings(base, overrides or {}, what=f"experiment {self.name!r}")


@dataclass(frozen=True)
class Result:
    """A finished experiment: what it is, what it ran with, what it measured and its claims.

    ``figures`` and ``tables`` are empty until :func:`losslab.report.draw` draws them from ``measured``.
    """

    name: str
    number: int
    title: str
    intro: str
    seed: int
    quick: bool
    settings: dict
    seconds: float
    measured: Measured | None
    claims: tuple[Claim, ...]
    figures: tuple = ()
    tables: tuple = ()
    error: str = ""

    @property
    def passed(self) -> bool:
        """Whether every claim held."""
        return all(c.holds for c in self.claims)

    @property
    def numbers(self) -> dict:
        """The Measured as JSON-able numbers (``{"error": …}`` for an experiment that raised)."""
        return self.measured.to_dict() if self.measured is not None else {"error": self.error}

    def claim(self, key: str) -> Claim:
        """The claim with ``key``; an unknown key is an error listing the valid ones."""
        for c in self.claims:
            if c.key == key:
                return c
        raise LosslabError(f"experiment {self.name!r} has no claim {key!r}; its claims: {', '.join(c.key for c in self.claims)}")

    def to_dict(self) -> dict:
        """Everything but the figure contents, JSON-able (figures by name and caption)."""
        return {
            "name": self.name, "number": self.number, "title": self.title, "seed": self.seed, "quick": self.quick,
            "settings": jsonable(self.settings), "seconds": round(self.seconds, 3), "passed": self.passed,
            "numbers": self.numbers, "claims": [c.to_dict() for c in self.claims],
            "figures": [{"name": f.name, "caption": f.caption, "kind": "png" if f.png is not None else "plotly"}
                        for f in self.figures],
            "tables": [t.to_dict() for t in self.tables],
        }


def _check_claims(experiment: Experiment, claims: object) -> tuple[Claim, ...]:
    if not isinstance(claims, (tuple, list)) or not all(isinstance(c, Claim) for c in claims):
        raise LosslabError(f"experiment {experiment.name!r}: expected claims(settings, measured) to return a tuple of Claim "
                           f"(made with losslab.experiments.claim), got {type(claims).__name__}")
    keys = [c.key for c in claims]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise LosslabError(f"experiment {experiment.name!r}: expected distinct claim keys, got {twice} more than once")
    return tuple(claims)


def run_experiment(experiment: Experiment, *, seed: int = 0, quick: bool = False,
                   overrides: Mapping[str, object] | None = None, say: Say = _quiet) -> Result:
    """Run ``experiment`` with its (quick) settings and ``overrides``: measure, then judge; same seed, same numbers."""
    settings = experiment.make_settings(quick=quick, overrides=overrides)
    start = time.perf_counter()
    measured = experiment.measure(settings, seed, say)
    seconds = time.perf_counter() - start
    if not isinstance(measured, Measured):
        raise LosslabError(f"experiment {experiment.name!r}: expected measure(settings, seed, say) to return a Measured "
                           f"(a frozen dataclass deriving losslab.experiments.Measured), got {type(measured).__name__}")
    claims = _check_claims(experiment, experiment.claims(settings, measured))
    return Result(
        name=experiment.name, number=experiment.number, title=experiment.title, intro=experiment.intro, seed=seed,
        quick=quick, settings=dataclasses.asdict(settings), seconds=seconds, measured=measured, claims=claims,
    )
