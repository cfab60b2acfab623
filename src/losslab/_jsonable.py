"""Plain JSON values from tensors, arrays, NumPy scalars and dataclasses (results.json, --json)."""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping

__all__ = ["jsonable"]


def jsonable(x: object) -> object:
    """``x`` with tensors, arrays and NumPy scalars as plain lists and numbers, dataclasses as dicts, NaN/inf as strings."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    if hasattr(x, "tolist"):
        x = x.tolist()
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        x = {f.name: getattr(x, f.name) for f in dataclasses.fields(x)}
    if isinstance(x, enum.Enum):
        x = x.value
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (set, frozenset)):
        return sorted((jsonable(v) for v in x), key=repr)
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, (bool, int, float, str)) or x is None:
        return x
    return str(x)
