"""The narrative of the report: each experiment's number, title and introduction, read from ``argument.md``.

``argument.md`` (beside this module) holds one section per experiment, ``## NUMBER. NAME — TITLE``
followed by its introduction, so the whole argument can be read and edited in one place;
:func:`from_argument` builds an :class:`~losslab.experiments.base.Experiment` from its section.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from .._checks import LosslabError
from .base import Experiment

__all__ = ["Section", "from_argument", "sections"]

ARGUMENT = Path(__file__).with_name("argument.md")
_HEADING = re.compile(r"^## (\d+)\. ([a-z0-9-]+) — (.+)$")


class Section(NamedTuple):
    """One step of the argument: its number, title and introduction (plain text, one paragraph)."""

    number: int
    title: str
    intro: str


@functools.cache
def sections() -> dict[str, Section]:
    """Experiment name → its :class:`Section` of argument.md, in the order of the file."""
    out: dict[str, Section] = {}
    name = None
    body: list[str] = []
    for line in [*ARGUMENT.read_text(encoding="utf-8").splitlines(), "## 0. end — end"]:
        heading = _HEADING.match(line)
        if heading is None:
            body.append(line.strip())
            continue
        if name is not None:
            out[name] = out[name]._replace(intro=" ".join(w for w in body if w))
        name, body = heading.group(2), []
        out[name] = Section(int(heading.group(1)), heading.group(3), "")
    del out["end"]
    return out


def from_argument(name: str, *, settings: type, quick: dict, measure: Callable, claims: Callable) -> Experiment:
    """The experiment ``name`` with its number, title and introduction from argument.md; an unknown name is an error."""
    if name not in sections():
        raise LosslabError(f"experiment {name!r} has no section in {ARGUMENT.name}; sections: {', '.join(sections())}")
    number, title, intro = sections()[name]
    return Experiment(name=name, number=number, title=title, intro=intro, settings=settings, quick=quick, measure=measure,
                      claims=claims)
