"""Settings constraints (issue #11): generated bad-settings tests, --set parsing and --show-settings rows.

Every experiment whose settings derive from :class:`losslab.experiments.Settings` gets one test per
bad value of each field's constraint and one per rule: each must be refused with one line
"expected NAME to be …, got NAME=value" (or the rule's "expected …, got …").
"""

from __future__ import annotations

import dataclasses

import pytest

from losslab import LosslabError
from losslab.experiments import NAMES, Integer, Integers, OneOf, Real, Reals, Settings, get_experiment, parse_settings, setting
from losslab.experiments.settings import bad_overrides, describe_settings


def _converted():
    return [n for n in NAMES if issubclass(get_experiment(n).settings, Settings)]


CASES = [(name, bad) for name in _converted() for bad in bad_overrides(get_experiment(name).settings)]


def test_every_experiment_has_declarative_settings():
    assert _converted(), "no experiment uses declarative settings"
    for name in _converted():
        exp = get_experiment(name)
        exp.make_settings()  # the defaults and the quick settings are valid
        exp.make_settings(quick=True)
        assert all("constraint" in f.metadata for f in dataclasses.fields(exp.settings)), name


@pytest.mark.parametrize(("name", "bad"), CASES, ids=[f"{n}-{'-'.join(b)}-{next(iter(b.values()))!r:.20}" for n, b in CASES])
def test_bad_settings_are_refused_with_one_line(name, bad):
    exp = get_experiment(name)
    with pytest.raises(LosslabError) as err:
        exp.make_settings(overrides=bad)
    message = str(err.value)
    assert "\n" not in message and "expected" in message and f"experiment {name!r}" in message
    assert any(f"{k}=" in message for k in bad), message


@dataclasses.dataclass(frozen=True)
class Toy(Settings):
    n: int = setting(5, Integer(2, 9), "points")
    rate: float = setting(0.5, Real(0, 1, low_open=True), "a rate")
    mode: str = setting("a", OneOf(("a", "b")), "a mode")
    sizes: tuple[int, ...] = setting((1, 2), Integers(1, max_len=3, increasing=True), "sizes")
    coefs: tuple[float, ...] = setting((0.5,), Reals(-1, 1), "coefficients")


@pytest.mark.parametrize(("text", "field", "value"), [("7", "n", 7), ("0.25", "rate", 0.25), ("b", "mode", "b"),
                                                      ("1, 3", "sizes", (1, 3)), ("-0.5,1", "coefs", (-0.5, 1.0))])
def test_set_strings_are_parsed_by_the_constraint(text, field, value):
    assert getattr(parse_settings(Toy(), {field: text}), field) == value


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("n", 10, "expected n to be an integer >= 2 and <= 9 (points), got n=10"),
    ("n", True, "got n=True"),
    ("rate", 0.0, "expected rate to be a finite number > 0 and <= 1 (a rate), got rate=0.0"),
    ("rate", float("nan"), "got rate=nan"),
    ("mode", "c", "expected mode to be one of 'a', 'b' (a mode), got mode='c'"),
    ("sizes", (2, 1), "in strictly increasing order"),
    ("sizes", (1, 2, 3, 4), "1 to 3 integers"),
    ("coefs", (2.0,), "expected coefs to be 1 or more finite numbers >= -1 and <= 1"),
])
def test_each_constraint_refuses_with_its_description(field, value, expected):
    with pytest.raises(LosslabError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        Toy(**{field: value})


def test_unparseable_set_string_names_the_field_and_what_it_may_be():
    with pytest.raises(LosslabError, match=r"expected n to be an integer >= 2 and <= 9 \(points\), got n='seven'"):
        parse_settings(Toy(), {"n": "seven"})


def test_show_settings_rows_give_value_constraint_and_help():
    rows = {r["name"]: r for r in describe_settings(Toy())}
    assert rows["n"] == {"name": "n", "value": 5, "allowed": "an integer >= 2 and <= 9", "help": "points"}
    assert rows["mode"]["allowed"] == "one of 'a', 'b'"


def test_evidence_that_does_not_format_names_the_claim_and_the_values():
    from losslab.experiments import claim

    with pytest.raises(LosslabError, match=r"claim 'a-b': its evidence 'v = \{v:.2f\}' does not format with the values \['w'\]"):
        claim("a-b", "a statement", True, "v = {v:.2f}", w=1.0)
    assert claim("a-b", "a statement", True, "{{literal}} {w}", w=1).evidence == "{literal} 1"


def test_a_drawing_function_that_returns_no_figure_is_named(fake_experiment):
    from losslab.experiments import run_experiment
    from losslab.report import draw, register_drawings

    lost = dataclasses.replace(fake_experiment, name="fake-no-figure")
    register_drawings("fake-no-figure", figures=(lambda m: None,))
    with pytest.raises(LosslabError, match="experiment 'fake-no-figure': the drawing function '<lambda>' returned NoneType; "
                                           "expected a Figure"):
        draw(run_experiment(lost, seed=0, quick=True))
