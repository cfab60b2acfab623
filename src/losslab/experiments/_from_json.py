"""A Measured (or any frozen dataclass of numbers) rebuilt from the JSON that :func:`losslab._jsonable.jsonable` wrote.

The inverse of ``Measured.to_dict`` for the field types experiments use, driven by the dataclass field annotations
(:func:`typing.get_type_hints`, which resolves ``from __future__ import annotations`` strings):

* ``torch.Tensor``: a number or a rectangular nested list → a tensor, bool if every entry is a bool, int64 if every
  entry is an int, else float64 (``"nan"``/``"inf"``/``"-inf"`` → floats); ``[]`` → float64 of shape (0,);
* ``np.ndarray``: likewise, an array;
* ``float``: a number, or ``"nan"``/``"inf"``/``"-inf"``; ``int``, ``bool``, ``str``: itself (an int is not a bool,
  a bool is not an int, a float is not an int); an enum ``E``: ``E(value)``;
* a dataclass: a JSON object with exactly its fields (all of them, defaults included: ``to_dict`` writes every one);
* ``list[X]``, ``tuple[X, ...]``, ``tuple[X, Y]``, ``dict[str, X]``, ``dict[int, X]``, ``X | None``: entry by entry;
* a bare ``dict`` or ``list`` (also ``list[dict]``, ``dict[str, dict]``): plain JSON, with the strings
  ``"nan"``/``"inf"``/``"-inf"`` restored to floats at any depth (``jsonable`` writes non-finite floats so, and a
  reader of such a field computes with its numbers).

What JSON does not keep does not come back: a float32 tensor comes back float64 (same values, exactly); a tensor
with a zero dimension comes back as far as its nested lists show (``[]`` is shape (0,), ``[[], []]`` is (2, 0));
inside a bare ``dict``/``list`` a tensor comes back a nested list, an enum its value, a tuple a list, and a string
that reads ``"nan"``/``"inf"``/``"-inf"`` a float. Annotate a field precisely where a reader needs more.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import types
import typing
from collections.abc import Mapping

import numpy as np
import torch

from .._checks import LosslabError

__all__ = ["dataclass_from_json"]

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class _Context(typing.NamedTuple):
    what: str  # the class being rebuilt, for messages
    fix: str


def dataclass_from_json(cls: type, data: object) -> object:
    """``cls`` (a dataclass) rebuilt from ``data``, the JSON form that ``jsonable`` wrote of one; see the module docstring.

    Raises:
        LosslabError: ``data`` is not a mapping; a field is missing or unknown; a value is not of its field's kind
            (the message names the field's path, e.g. ``configs[2].rates``); a field's annotation is not one listed above.

    Example:
        >>> @dataclasses.dataclass(frozen=True)
        ... class Run:
        ...     loss: float
        ...     steps: list[int]
        >>> dataclass_from_json(Run, {"loss": "nan", "steps": [1, 2]})
        Run(loss=nan, steps=[1, 2])
    """
    ctx = _Context(cls.__name__, f"pass the JSON object that {cls.__name__}.to_dict() wrote (Result.numbers)")
    return _dataclass(cls, data, "", ctx)


def _fail(ctx: _Context, path: str, expected: str, value: object) -> typing.NoReturn:
    where = f" at {path}" if path else ""
    raise LosslabError(f"{ctx.what}.from_dict: expected {expected}{where}, got {_show(value)}; {ctx.fix}")


def _show(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


@functools.cache
def _hints(cls: type) -> dict[str, object]:
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError) as err:
        raise LosslabError(f"{cls.__name__}.from_dict: expected field annotations that resolve, got {err}; "
                           f"import the names {cls.__name__}'s annotations use at the top of its module") from None
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _dataclass(cls: type, data: object, path: str, ctx: _Context) -> object:
    if not isinstance(data, Mapping):
        _fail(ctx, path, f"a JSON object with the fields of {cls.__name__}", data)
    hints = _hints(cls)
    missing = [name for name in hints if name not in data]
    unknown = [str(key) for key in data if key not in hints]
    if missing or unknown:
        got = " and ".join(part for part in (f"missing {', '.join(missing)}" if missing else "",
                                          f"unknown {', '.join(unknown)}" if unknown else "") if part)
        where = f" at {path}" if path else ""
        raise LosslabError(f"{ctx.what}.from_dict: expected exactly the fields of {cls.__name__}{where}, got {got}; {ctx.fix}")
    values = {name: _value(hint, data[name], _join(path, name), ctx) for name, hint in hints.items()}
    init = {f.name for f in dataclasses.fields(cls) if f.init}
    try:
        out = cls(**{k: v for k, v in values.items() if k in init})
    except (TypeError, ValueError) as err:
        if isinstance(err, LosslabError):
            raise
        _fail(ctx, path, f"values that {cls.__name__} accepts ({type(err).__name__}: {err})", dict(data))
    for name in hints.keys() - init:  # fields the class computes itself: set as read
        object.__setattr__(out, name, values[name])
    return out


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _value(hint: object, value: object, path: str, ctx: _Context) -> object:
    """``value`` rebuilt as the annotation ``hint`` says (one branch per kind of the module's table)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _union(typing.get_args(hint), value, path, ctx)
    if hint is torch.Tensor:
        return torch.from_numpy(_array(value, path, ctx))
    if hint is np.ndarray or origin is np.ndarray:
        return _array(value, path, ctx)
    if hint in (float, int, bool, str, type(None)) or (isinstance(hint, type) and issubclass(hint, enum.Enum)):
        return _scalar(hint, value, path, ctx)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass(hint, value, path, ctx)
    if hint in (list, tuple) or origin in (list, tuple):
        return _sequence(origin or hint, typing.get_args(hint), value, path, ctx)
    if hint is dict or origin is dict:
        return _mapping(typing.get_args(hint), value, path, ctx)
    if hint is typing.Any or hint is object:
        return _plain(value)
    raise LosslabError(f"{ctx.what}.from_dict: expected a field type it can rebuild (see losslab.experiments._from_json) "
                       f"at {path}, got the annotation {hint!r}; annotate the field with one of those types")


def _union(options: tuple, value: object, path: str, ctx: _Context) -> object:
    """``X | Y | None``: None if it is null and may be, else the first option it rebuilds as (the last one's error)."""
    if value is None and type(None) in options:
        return None
    options = tuple(a for a in options if a is not type(None))
    for option in options[:-1]:
        try:
            return _value(option, value, path, ctx)
        except LosslabError:
            continue
    return _value(options[-1], value, path, ctx)


def _scalar(hint: type, value: object, path: str, ctx: _Context) -> object:
    if hint is float:
        if isinstance(value, str) and value in _NONFINITE:
            return _NONFINITE[value]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(ctx, path, 'a number (or "nan", "inf", "-inf")', value)
        return float(value)
    if issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            _fail(ctx, path, f"one of {[e.value for e in hint]}", value)
    if type(value) is not hint:  # an int is not a bool, a bool is not an int
        _fail(ctx, path, {bool: "true or false", str: "a string", int: "an integer", type(None): "null"}[hint], value)
    return value


def _sequence(kind: type, args: tuple, value: object, path: str, ctx: _Context) -> list | tuple:
    if not isinstance(value, list):
        _fail(ctx, path, "a list", value)
    if not args:
        return kind(_plain(value))
    if kind is tuple and not (len(args) == 2 and args[1] is Ellipsis):  # tuple[X, Y]: a fixed length
        if len(value) != len(args):
            _fail(ctx, path, f"a list of {len(args)} entries", value)
        return tuple(_value(a, v, f"{path}[{i}]", ctx) for i, (a, v) in enumerate(zip(args, value, strict=True)))
    return kind(_value(args[0], v, f"{path}[{i}]", ctx) for i, v in enumerate(value))


def _mapping(args: tuple, value: object, path: str, ctx: _Context) -> dict:
    if not isinstance(value, Mapping):
        _fail(ctx, path, "a JSON object", value)
    if not args:
        return _plain(value)
    return {_key(args[0], k, path, ctx): _value(args[1], v, f"{path}[{k!r}]", ctx) for k, v in value.items()}


def _key(hint: object, key: str, path: str, ctx: _Context) -> object:
    """A dict key: JSON keys are strings (``jsonable`` wrote ``str(key)``)."""
    if hint is str or hint is typing.Any:
        return key
    if hint is int:
        try:
            return int(key)
        except ValueError:
            _fail(ctx, path, "integer keys", key)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _value(hint, key, f"{path} key", ctx)
    raise LosslabError(f"{ctx.what}.from_dict: expected dict keys of type str, int or a str enum at {path}, "
                       f"got the annotation {hint!r}; annotate the field with one of those")


def _plain(value: object) -> object:
    """Plain JSON with the non-finite floats that ``jsonable`` wrote as strings restored."""
    if isinstance(value, str):
        return _NONFINITE.get(value, value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _array(value: object, path: str, ctx: _Context) -> np.ndarray:
    """A nested list of numbers (or one number) as an array: bool, int64 or float64 by the kinds of its entries."""
    kinds: set[type] = set()
    numbers = _numbers(value, path, ctx, kinds)
    dtype = np.bool_ if kinds == {bool} else np.int64 if kinds == {int} else np.float64
    try:
        return np.array(numbers, dtype=dtype)
    except (ValueError, OverflowError):
        _fail(ctx, path, "a rectangular nested list of numbers (a tensor)", value)


def _numbers(value: object, path: str, ctx: _Context, kinds: set[type]) -> object:
    if isinstance(value, list):
        return [_numbers(v, f"{path}[{i}]", ctx, kinds) for i, v in enumerate(value)]
    if isinstance(value, str) and value in _NONFINITE:
        kinds.add(float)
        return _NONFINITE[value]
    if not isinstance(value, (bool, int, float)):
        _fail(ctx, path, 'a number (or "nan", "inf", "-inf") in a tensor', value)
    kinds.add(type(value))
    return value
