"""The narrative of the report: each experiment's number, title and introduction, read from ``argument.md``.

``argument.md`` (beside this module) holds one section per experiment, ``## NUMBER. NAME — TITLE``
followed by its introduction, so the whole argument can be read and edited in one place;
:func:`from_argument` builds an :class:`~losslab.experiments.base.Experiment` from its section.
The experiments are grouped in parts: a line ``# Part ROMAN — TITLE`` followed by the part's
introduction opens a part, which holds every experiment up to the next part (:func:`parts`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from .._checks import LosslabError
from .base import Experiment

__all__ = ["Part", "Section", "from_argument", "parts", "sections"]

ARGUMENT = Path(__file__).with_name("argument.md")
_HEADING = re.compile(r"^## (\d+)\. ([a-z0-9-]+) — (.+)$")
_PART = re.compile(r"^# Part ([IVX]+) — (.+)$")


class Section(NamedTuple):
    """One step of the argument: its number, title and introduction (plain text, one paragraph)."""

    number: int
    title: str
    intro: str


class Part(NamedTuple):
    """A part of the argument: its roman numeral, title, introduction and experiments (names, in order)."""

    numeral: str
    title: str
    intro: str
    experiments: tuple[str, ...]


def _paragraph(body: list[str]) -> str:
    return " ".join(w for w in body if w)


@functools.cache
def _read() -> tuple[dict[str, Section], tuple[Part, ...]]:
    out: dict[str, Section] = {}
    found: list[Part] = []
    name, part = None, None
    body: list[str] = []
    for line in [*ARGUMENT.read_text(encoding="utf-8").splitlines(), "# Part X — end"]:
        heading, opens = _HEADING.match(line), _PART.match(line)
        if heading is None and opens is None:
            body.append(line.strip())
            continue
        if name is not None:
            out[name] = out[name]._replace(intro=_paragraph(body))
        elif part is not None:
            found[-1] = found[-1]._replace(intro=_paragraph(body))
        body = []
        if opens:
            name, part = None, opens.group(1)
            found.append(Part(opens.group(1), opens.group(2), "", ()))
        else:
            name = heading.group(2)
            out[name] = Section(int(heading.group(1)), heading.group(3), "")
            if found:
                found[-1] = found[-1]._replace(experiments=(*found[-1].experiments, name))
    return out, tuple(found[:-1])


def sections() -> dict[str, Section]:
    """Experiment name → its :class:`Section` of argument.md, in the order of the file."""
    return dict(_read()[0])


def parts() -> tuple[Part, ...]:
    """The parts of the argument, in order, each with its introduction and experiments."""
    return _read()[1]


def from_argument(name: str, *, settings: type, quick: dict, measure: Callable, claims: Callable) -> Experiment:
    """The experiment ``name`` with its number, title and introduction from argument.md; an unknown name is an error."""
    if name not in sections():
        raise LosslabError(f"experiment {name!r} has no section in {ARGUMENT.name}; sections: {', '.join(sections())}")
    number, title, intro = sections()[name]
    return Experiment(name=name, number=number, title=title, intro=intro, settings=settings, quick=quick, measure=measure,
                      claims=claims)
