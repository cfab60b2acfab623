"""``enum.StrEnum`` (Python 3.11), or its equivalent on Python 3.10: members that are their string values.

A member compares equal to its value (``Verdict.CONVEX == "convex"``), hashes like it (dict keys),
formats and ``str()``s as it (f-strings, ``print``) and serialises as it (``json.dumps``); only
``repr`` names the enum (``<Verdict.CONVEX: 'convex'>``).
"""

from __future__ import annotations

import enum

__all__ = ["StrEnum"]

if hasattr(enum, "StrEnum"):
    StrEnum = enum.StrEnum
else:  # Python 3.10

    class StrEnum(str, enum.Enum):
        """A str whose ``str()`` and format are its value, as ``enum.StrEnum`` of Python 3.11."""

        __str__ = str.__str__
        __format__ = str.__format__
