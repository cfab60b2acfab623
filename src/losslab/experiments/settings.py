"""Experiment settings with declarative constraints: one table drives validation, ``--show-settings``, ``--set`` and tests.

A settings class is a frozen dataclass that derives from :class:`Settings`. Each field is declared
with :func:`setting` — its default, its :class:`Constraint` and a one-line help — and relations
between fields are :class:`Rule` s in ``RULES``. The constraints are data, as in scikit-learn's
``_parameter_constraints``: the same table validates a settings object ("expected …, got
name=value"), converts ``--set name=value`` strings, prints ``--show-settings`` and generates
the bad-settings tests (:func:`bad_overrides`, used by tests/test_experiment_settings.py).

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Demo(Settings):
    ...     n: int = setting(15, Integer(3), "training examples")
    ...     noise: float = setting(0.1, Real(0, low_open=True), "label noise σ")
    >>> Demo(n=20).n
    20
    >>> Demo(n=2)
    Traceback (most recent call last):
    ...
    losslab._checks.LosslabError: expected n to be an integer >= 3 (training examples), got n=2
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._checks import LosslabError

__all__ = [
    "Constraint", "Integer", "Integers", "OneOf", "Real", "Reals", "Rule", "Settings", "bad_overrides", "describe_settings",
    "parse_settings", "setting",
]


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_real(v: object) -> bool:
    if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:  # an int beyond float's range
        return False


def _range(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts)


class Constraint:
    """What one setting may be. Subclasses define :meth:`ok`, :meth:`describe`, :meth:`parse` and :meth:`bad_values`."""

    def ok(self, value: object) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def parse(self, text: str) -> object:
        """The value of a ``--set`` string; a ValueError when it does not parse."""
        return text

    def bad_values(self) -> tuple:
        """Values this constraint must refuse (for generated tests)."""
        return ()


@dataclass(frozen=True)
class Integer(Constraint):
    """An integer (not a bool) in [low, high]."""

    low: int | None = None
    high: int | None = None

    def ok(self, value):
        return _is_int(value) and (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def describe(self):
        return "an integer" + (f" {_range(self.low, self.high)}" if self.low is not None or self.high is not None else "")

    def parse(self, text):
        return int(text)

    def bad_values(self):
        out = [1.5, True, None]
        out += [self.low - 1] if self.low is not None else []
        out += [self.high + 1] if self.high is not None else []
        return tuple(out)


@dataclass(frozen=True)
class Real(Constraint):
    """A finite number (not a bool) in the interval from low to high; ``low_open``/``high_open`` exclude the ends."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def ok(self, value):
        if not _is_real(value):
            return False
        v = float(value)
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        return self.high is None or (v < self.high if self.high_open else v <= self.high)

    def describe(self):
        bounds = _range(self.low, self.high, self.low_open, self.high_open)
        return "a finite number" + (f" {bounds}" if bounds else "")

    def parse(self, text):
        return float(text)

    def bad_values(self):
        out = [float("nan"), float("inf"), True, None]
        if self.low is not None:
            out.append(self.low if self.low_open else self.low - max(1.0, abs(self.low)))
        if self.high is not None:
            out.append(self.high if self.high_open else self.high + max(1.0, abs(self.high)))
        return tuple(out)


@dataclass(frozen=True)
class OneOf(Constraint):
    """One of a fixed set of strings."""

    options: tuple[str, ...]

    def ok(self, value):
        return isinstance(value, str) and value in self.options

    def describe(self):
        return "one of " + ", ".join(map(repr, self.options))

    def bad_values(self):
        return ("no-such-option", 1)


@dataclass(frozen=True)
class _Tuple(Constraint):
    """A tuple of items that each satisfy :meth:`item`, with min_len ≤ length ≤ max_len (shared by Integers and Reals)."""

    low: float | None = None
    high: float | None = None
    min_len: int = 1
    max_len: int | None = None
    noun: ClassVar[str] = ""

    def item(self) -> Constraint:  # pragma: no cover - abstract
        raise NotImplementedError

    def ok(self, value):
        return (isinstance(value, tuple) and self.min_len <= len(value) <= (self.max_len or len(value))
                and all(self.item().ok(v) for v in value))

    def describe(self):
        size = f"{self.min_len} to {self.max_len}" if self.max_len else f"{self.min_len} or more"
        each = _range(self.low, self.high)
        return f"{size} {self.noun}{' ' + each if each else ''}"

    def parse(self, text):
        items = text.split(",")
        if any(not p.strip() for p in items):  # "1,,2" or "1,2,": an item left out is not a zero
            raise ValueError(f"an empty item in {text!r}")
        return tuple(self.item().parse(p) for p in items)

    def bad_values(self):
        """Empty, a wrong item type, a scalar, an item below ``low``, one item too many."""
        count = max(self.min_len, 1)
        out = [(), ("x",) * count, 3]
        if self.low is not None:
            out.append((self.low - 1,) * count)
        if self.max_len is not None:
            out.append((self.low if self.low is not None else 0,) * (self.max_len + 1))
        return tuple(out)


@dataclass(frozen=True)
class Integers(_Tuple):
    """A tuple of integers, each in [low, high], with min_len ≤ length ≤ max_len; ``increasing``: strictly."""

    increasing: bool = False
    noun: ClassVar[str] = "integers"

    def item(self):
        return Integer(self.low, self.high)

    def ok(self, value):
        return super().ok(value) and (not self.increasing or all(b > a for a, b in itertools.pairwise(value)))

    def describe(self):
        return super().describe() + (" in strictly increasing order" if self.increasing else "") + " (comma-separated)"

    def bad_values(self):
        low = self.low if self.low is not None else 0
        return super().bad_values() + (((low + 1, low),) if self.increasing and self.min_len <= 2 else ())


@dataclass(frozen=True)
class Reals(_Tuple):
    """A tuple of finite numbers, each in [low, high], with min_len ≤ length ≤ max_len."""

    noun: ClassVar[str] = "finite numbers"

    def item(self):
        return Real(self.low, self.high)

    def describe(self):
        return super().describe() + " (comma-separated)"


@dataclass(frozen=True)
class Rule:
    """A relation between settings: ``holds(settings)`` must be true.

    ``expected`` is the requirement in words ("n - 1 <= max_degree (the largest basis interpolates)");
    ``names`` are the settings it reads (quoted in the error); ``example`` is an override that breaks it
    from the defaults (for generated tests).
    """

    holds: Callable[[object], bool]
    expected: str
    names: tuple[str, ...]
    example: Mapping[str, object]


def setting(default: object, constraint: Constraint, help: str = "") -> object:
    """A settings field: its default, its constraint and a one-line help (shown by ``--show-settings``)."""
    return dataclasses.field(default=default, metadata={"constraint": constraint, "help": help})


@dataclass(frozen=True)
class Settings:
    """Base of every experiment's settings: validates each field's constraint, then the class's ``RULES``."""

    RULES: ClassVar[tuple[Rule, ...]] = ()

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            constraint = f.metadata.get("constraint")
            value = getattr(self, f.name)
            if constraint is not None and not constraint.ok(value):
                why = f" ({f.metadata['help']})" if f.metadata.get("help") else ""
                raise LosslabError(f"expected {f.name} to be {constraint.describe()}{why}, got {f.name}={value!r}")
        for rule in self.RULES:
            if not rule.holds(self):
                got = ", ".join(f"{n}={getattr(self, n)!r}" for n in rule.names)
                raise LosslabError(f"expected {rule.expected}, got {got}")


def describe_settings(settings: Settings) -> list[dict]:
    """One row per setting: name, value, what it may be, help — what ``--show-settings`` prints."""
    rows = []
    for f in dataclasses.fields(settings):
        constraint = f.metadata.get("constraint")
        rows.append({"name": f.name, "value": getattr(settings, f.name),
                     "allowed": constraint.describe() if constraint else "", "help": f.metadata.get("help", "")})
    rows += [{"name": "(rule)", "value": "", "allowed": r.expected, "help": ""} for r in type(settings).RULES]
    return rows


def bad_overrides(settings_type: type[Settings]) -> list[dict[str, object]]:
    """Overrides that the settings must refuse, one per bad value of each field's constraint and one per rule."""
    out = []
    for f in dataclasses.fields(settings_type):
        constraint = f.metadata.get("constraint")
        out += [{f.name: bad} for bad in (constraint.bad_values() if constraint else ())]
    out += [dict(r.example) for r in settings_type.RULES]
    return out


def _convert(field: dataclasses.Field, raw: object, what: str) -> object:
    """``raw`` (a string from ``--set``) as its field's constraint reads it; other values unchanged."""
    constraint = field.metadata.get("constraint")
    if not isinstance(raw, str) or constraint is None:
        return raw
    try:
        return constraint.parse(raw)
    except ValueError:
        why = f" ({field.metadata['help']})" if field.metadata.get("help") else ""
        raise LosslabError(f"{what}: expected {field.name} to be {constraint.describe()}{why}, got {field.name}={raw!r}") from None


def parse_settings(base: object, overrides: Mapping[str, object], *, what: str = "settings") -> object:
    """``base`` (a settings dataclass) with ``overrides`` applied; unknown keys and bad values are errors.

    String values are converted by the field's constraint: ``"3"`` → 3, ``"1,2,4"`` → (1, 2, 4).
    """
    fields = {f.name: f for f in dataclasses.fields(base)}
    unknown = [k for k in overrides if k not in fields]
    if unknown:
        raise LosslabError(f"{what}: unknown setting {unknown[0]!r}; valid settings: {', '.join(fields)}")
    values = {k: _convert(fields[k], v, what) for k, v in overrides.items()}
    try:
        return dataclasses.replace(base, **values)
    except LosslabError as err:
        raise LosslabError(f"{what}: {err}") from None
    except (ValueError, TypeError) as err:
        raise LosslabError(f"{what}: {err}") from None
