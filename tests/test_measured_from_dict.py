"""Measured.from_dict, the inverse of to_dict: every experiment's Measured comes back from its JSON and is judged and drawn
the same as the live object (the reference); small hand-made Measured types check each field kind; bad JSON is one line."""

from __future__ import annotations

import dataclasses
import enum
import json
import math

import numpy as np
import pytest
import torch

from losslab import LosslabError
from losslab.experiments import NAMES, Measured, get_experiment
from losslab.report import draw


def _through_json(m: Measured) -> Measured:
    return type(m).from_dict(json.loads(json.dumps(m.to_dict())))


# ---- every experiment: its quick run at seed 0 (conftest's session fixture, run once) ---------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_the_json_round_trip_is_exact(name, quick_result):
    live = quick_result(name).measured
    rebuilt = _through_json(live)
    assert type(rebuilt) is type(live)
    assert rebuilt.to_dict() == live.to_dict()
    _same_structure(live, rebuilt, name)


@pytest.mark.parametrize("name", NAMES)
def test_the_rebuilt_measured_is_judged_as_the_live_one(name, quick_result):
    experiment = get_experiment(name)
    settings = experiment.make_settings(quick=True)
    live = quick_result(name).measured
    judged, rejudged = experiment.claims(settings, live), experiment.claims(settings, _through_json(live))
    assert [(c.key, c.holds, c.evidence) for c in rejudged] == [(c.key, c.holds, c.evidence) for c in judged]
    assert [c.to_dict() for c in rejudged] == [c.to_dict() for c in judged]  # statements and values too


@pytest.mark.parametrize("name", NAMES)
def test_the_rebuilt_measured_draws_the_live_ones_figures_and_tables(name, quick_result):
    live = quick_result(name)  # drawn from the live Measured
    redrawn = draw(dataclasses.replace(live, measured=_through_json(live.measured), figures=(), tables=()))
    assert live.figures, name  # every experiment draws something, so the comparison below compares something
    assert [(f.name, f.caption, f.png is None) for f in redrawn.figures] == [(f.name, f.caption, f.png is None) for f in live.figures]
    assert [f.plotly_json for f in redrawn.figures] == [f.plotly_json for f in live.figures]  # plotly figures are data
    assert [t.to_dict() for t in redrawn.tables] == [t.to_dict() for t in live.tables]


def _same_structure(live: object, rebuilt: object, path: str) -> None:
    """Whatever the live Measured holds comes back of the same kind with the same values (a float tensor may come back
    float64: JSON keeps no dtype). Inside a bare ``dict``/``list`` an enum may come back as its value."""
    if isinstance(live, (torch.Tensor, np.ndarray)):
        assert type(rebuilt) is type(live), path
        a, b = np.asarray(torch.as_tensor(live).cpu()), np.asarray(torch.as_tensor(rebuilt))
        assert a.shape == b.shape or a.size == b.size == 0, path  # a zero dimension comes back as far as the lists show
        assert a.dtype.kind == b.dtype.kind, path
        assert np.array_equal(a.astype(b.dtype).reshape(b.shape), b, equal_nan=b.dtype.kind == "f"), path
    elif dataclasses.is_dataclass(live):
        assert type(rebuilt) is type(live), path
        for f in dataclasses.fields(live):
            _same_structure(getattr(live, f.name), getattr(rebuilt, f.name), f"{path}.{f.name}")
    elif isinstance(live, dict):
        assert isinstance(rebuilt, dict) and list(rebuilt) == [str(k) for k in live], path
        for k, v in live.items():
            _same_structure(v, rebuilt[str(k)], f"{path}[{k!r}]")
    elif isinstance(live, (list, tuple)):
        assert isinstance(rebuilt, (list, tuple)) and len(rebuilt) == len(live), path
        for i, (a, b) in enumerate(zip(live, rebuilt, strict=True)):
            _same_structure(a, b, f"{path}[{i}]")
    elif isinstance(live, enum.Enum):
        assert rebuilt == live or rebuilt == live.value, path
    elif isinstance(live, (bool, np.bool_)) or isinstance(live, str) or live is None:
        assert type(rebuilt) is type(live) or (isinstance(live, np.bool_) and type(rebuilt) is bool), path
        assert rebuilt == live, path
    else:  # a number
        assert isinstance(rebuilt, (int, float)) and not isinstance(rebuilt, bool), path
        assert rebuilt == live or (math.isnan(rebuilt) and math.isnan(live)), path


# ---- each field kind, on hand-made Measured types -------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass(frozen=True)
class Point:
    rates: list[float]
    label: str


@dataclasses.dataclass(frozen=True)
class KindsMeasured(Measured):
    t32: torch.Tensor
    t_int: torch.Tensor
    t_bool: torch.Tensor
    t_empty: torch.Tensor
    t_scalar: torch.Tensor
    a: np.ndarray
    x: float
    n: int
    ok: bool
    word: str
    colour: Colour
    maybe: int | None
    pair: tuple[int, str]
    reals: tuple[float, ...]
    by_name: dict[str, list[float]]
    by_index: dict[int, torch.Tensor]
    configs: list[Point]
    plain: list[dict]
    anything: dict


def _kinds() -> KindsMeasured:
    return KindsMeasured(
        t32=torch.tensor([[0.1, float("nan")], [float("inf"), -2.5]], dtype=torch.float32),
        t_int=torch.arange(6).reshape(2, 3), t_bool=torch.tensor([True, False]), t_empty=torch.zeros(0, dtype=torch.float64),
        t_scalar=torch.tensor(-math.inf, dtype=torch.float64), a=np.array([1.5, math.nan]), x=math.nan, n=7, ok=False,
        word="inf-ish", colour=Colour.BLUE, maybe=None, pair=(3, "three"), reals=(0.25, -math.inf),
        by_name={"a": [1.0, math.inf]}, by_index={2: torch.tensor([1.0, 2.0], dtype=torch.float64)},
        configs=[Point([0.5], "p"), Point([], "q"), Point([math.nan, 1e300], "r")],
        plain=[{"gap": math.nan, "n": 3, "where": [math.inf, 0.5], "verdict": "non-convex"}],
        anything={"nested": {"deep": [-math.inf]}, "flag": True},
    )


def test_each_field_kind_comes_back_as_constructed():
    live = _kinds()
    back = _through_json(live)
    assert back.to_dict() == live.to_dict()
    # tensors: float32 comes back float64 with the same values (documented); ints and bools keep their kind
    assert back.t32.dtype == torch.float64 and torch.equal(back.t32.isnan(), live.t32.isnan())
    assert torch.equal(back.t32.nan_to_num(), live.t32.double().nan_to_num())
    assert back.t_int.dtype == torch.int64 and torch.equal(back.t_int, live.t_int)
    assert back.t_bool.dtype == torch.bool and torch.equal(back.t_bool, live.t_bool)
    assert back.t_empty.dtype == torch.float64 and back.t_empty.shape == (0,)
    assert back.t_scalar.shape == () and back.t_scalar.item() == -math.inf
    assert isinstance(back.a, np.ndarray) and back.a.dtype == np.float64 and back.a[0] == 1.5 and np.isnan(back.a[1])
    assert math.isnan(back.x) and back.n == 7 and back.ok is False and back.word == "inf-ish"
    assert back.colour is Colour.BLUE and back.maybe is None and back.pair == (3, "three")
    assert back.reals == (0.25, -math.inf) and back.by_name == {"a": [1.0, math.inf]}
    assert list(back.by_index) == [2] and torch.equal(back.by_index[2], live.by_index[2])
    assert [type(p) for p in back.configs] == [Point] * 3 and back.configs[1] == Point([], "q")
    assert math.isnan(back.configs[2].rates[0]) and back.configs[2].rates[1] == 1e300
    # bare dict / list[dict]: plain JSON with the non-finite strings restored (documented)
    assert math.isnan(back.plain[0]["gap"]) and back.plain[0]["where"] == [math.inf, 0.5] and back.plain[0]["verdict"] == "non-convex"
    assert back.anything == {"nested": {"deep": [-math.inf]}, "flag": True}


def test_an_optional_field_with_a_value_is_rebuilt_as_its_type():
    back = _through_json(dataclasses.replace(_kinds(), maybe=4))
    assert back.maybe == 4 and type(back.maybe) is int


def _kinds_json() -> dict:
    return json.loads(json.dumps(_kinds().to_dict()))


def _with(path: tuple, value: object) -> dict:
    data = _kinds_json()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def _without(name: str) -> dict:
    data = _kinds_json()
    del data[name]
    return data


@pytest.mark.parametrize(("data", "match"), [
    ([1, 2], r"expected a JSON object with the fields of KindsMeasured, got list \[1, 2\]"),
    (None, "expected a JSON object with the fields of KindsMeasured, got NoneType"),
    ('{"x": 1}', "expected a JSON object with the fields of KindsMeasured, got str"),
    (_without("t_int"), "expected exactly the fields of KindsMeasured, got missing t_int;"),
    ({**_kinds_json(), "extra": 1}, "expected exactly the fields of KindsMeasured, got unknown extra;"),
    ({**_without("n"), "N": 7}, "expected exactly the fields of KindsMeasured, got missing n and unknown N;"),
    (_with(("configs", 2), {"rates": [1.0], "label": "r", "more": 0}), r"fields of Point at configs\[2\], got unknown more"),
    (_with(("configs", 2, "rates"), "fast"), r"expected a list at configs\[2\].rates, got str 'fast'"),
    (_with(("configs", 2, "rates", 0), "1.5"), r"expected a number .* at configs\[2\].rates\[0\], got str '1.5'"),
    (_with(("x",), "1.5"), "expected a number .* at x, got str '1.5'"),
    (_with(("x",), True), "expected a number .* at x, got bool True"),
    (_with(("n",), 7.0), "expected an integer at n, got float 7.0"),
    (_with(("n",), True), "expected an integer at n, got bool True"),
    (_with(("ok",), 1), "expected true or false at ok, got int 1"),
    (_with(("word",), 3), "expected a string at word, got int 3"),
    (_with(("colour",), "green"), r"expected one of \['red', 'blue'\] at colour, got str 'green'"),
    (_with(("maybe",), "4"), "expected an integer at maybe, got str '4'"),
    (_with(("pair",), [3]), r"expected a list of 2 entries at pair, got list \[3\]"),
    (_with(("by_name",), [1.0]), r"expected a JSON object at by_name, got list"),
    (_with(("by_index",), {"two": [1.0]}), "expected integer keys at by_index, got str 'two'"),
    (_with(("t_int",), [[0, 1, 2], [3, 4]]), r"expected a rectangular nested list of numbers \(a tensor\) at t_int"),
    (_with(("t_int",), {"0": 1}), r"expected a number .* in a tensor at t_int, got dict"),
    (_with(("t32", 1, 0), "big"), r"expected a number .* in a tensor at t32\[1\]\[0\], got str 'big'"),
    (_with(("a",), [[1.0], 2.0]), r"expected a rectangular nested list of numbers \(a tensor\) at a"),
    (_with(("plain",), {"gap": 1}), "expected a list at plain, got dict"),
    (_with(("anything",), [1]), r"expected a JSON object at anything, got list \[1\]"),
])
def test_bad_json_is_one_line_naming_where(data, match):
    with pytest.raises(LosslabError, match=match) as err:
        KindsMeasured.from_dict(data)
    assert "\n" not in str(err.value) and str(err.value).startswith("KindsMeasured.from_dict: expected ")
    assert str(err.value).endswith("pass the JSON object that KindsMeasured.to_dict() wrote (Result.numbers)")


def test_a_bad_value_deep_in_a_real_experiment_names_its_path(quick_result):
    data = json.loads(json.dumps(quick_result("sigmoid-mlp").measured.to_dict()))
    data["critical_points"][0]["theta"][1] = "x"
    expected = r"SigmoidMlpMeasured.from_dict: expected a number .* at critical_points\[0\]\.theta\[1\], got str 'x'"
    with pytest.raises(LosslabError, match=expected):
        type(quick_result("sigmoid-mlp").measured).from_dict(data)


@dataclasses.dataclass(frozen=True)
class UnsupportedMeasured(Measured):
    seen: set[int]


def test_a_field_type_it_cannot_rebuild_is_named():
    with pytest.raises(LosslabError, match=r"UnsupportedMeasured.from_dict: expected a field type it can rebuild .* at seen, "
                                           r"got the annotation set\[int\]; annotate the field"):
        UnsupportedMeasured.from_dict({"seen": [1, 2]})


@dataclasses.dataclass(frozen=True)
class UnresolvedMeasured(Measured):
    curve: Curve  # noqa: F821 (a name its module never imports)


def test_an_annotation_that_does_not_resolve_is_named():
    with pytest.raises(LosslabError, match=r"UnresolvedMeasured.from_dict: expected field annotations that resolve, got name 'Curve' "
                                           r"is not defined; import the names"):
        UnresolvedMeasured.from_dict({"curve": []})
