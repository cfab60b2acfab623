"""experiments/argument.md, the report's narrative: one section per experiment, in the order of the argument."""

from __future__ import annotations

import pytest

from losslab import LosslabError
from losslab.experiments import NAMES, get_experiment
from losslab.experiments.story import ARGUMENT, from_argument, sections


def test_every_experiment_has_its_section_in_order_numbered_from_one():
    assert list(sections()) == list(NAMES)
    assert [s.number for s in sections().values()] == list(range(1, len(NAMES) + 1))
    for name, section in sections().items():
        exp = get_experiment(name)
        assert (exp.number, exp.title, exp.intro) == tuple(section)
        assert section.intro and "\n" not in section.intro and "  " not in section.intro
        assert section.intro.split()[:3] == ARGUMENT.read_text(encoding="utf-8").split(f"— {section.title}\n")[1].split()[:3]


def test_an_experiment_without_a_section_is_an_error():
    with pytest.raises(LosslabError, match=r"experiment 'nope' has no section in argument\.md; sections: linear-in-parameters"):
        from_argument("nope", settings=object, quick={}, measure=print, claims=print)


def test_the_parts_hold_every_experiment_once_in_order_part_one_the_first_thirteen():
    from losslab.experiments.story import parts

    found = parts()
    assert [p.numeral for p in found] == ["I", "II"]
    assert [n for p in found for n in p.experiments] == list(NAMES)
    assert found[0].experiments[-1] == "gd-vs-sgd" and sections()[found[0].experiments[-1]].number == 13
    for p in found:
        assert p.title and p.intro and "\n" not in p.intro and "##" not in p.intro
        assert p.intro.split()[:2] == ["Part", p.numeral]
    # no part's introduction leaks into the experiment before it
    for section in sections().values():
        assert "# Part" not in section.intro and not any(p.intro in section.intro for p in found)
