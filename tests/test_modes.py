"""Verdicts, critical-point kinds and evaluation implementations are enums that are their strings:
comparisons, f-strings, str() and JSON give the value, so results and CLI output read as before."""

from __future__ import annotations

import json

import pytest
import torch

import losslab
from losslab import CriticalKind, Implementation, LosslabError, Problem, Verdict, check_convexity
from losslab.convexity import VERDICTS, ConvexityReport
from losslab.curvature import KINDS, CriticalPointResult, classify
from losslab.landscape import IMPLEMENTATIONS, backend, evaluate_points
from losslab.models import Polynomial, TwoLayer

DT = torch.float64


@pytest.mark.parametrize(("enum", "values"), [(Verdict, VERDICTS), (CriticalKind, KINDS), (Implementation, IMPLEMENTATIONS)])
def test_each_member_is_its_string(enum, values):
    assert tuple(m.value for m in enum) == values and all(type(v) is str for v in values)
    for member, value in zip(enum, values):
        assert member == value and value == member and hash(member) == hash(value) and {value: 1}[member] == 1
        assert str(member) == value and f"{member}" == value and f"{member:>30}" == f"{value:>30}" and format(member, "") == value
        assert json.dumps({member: [member]}) == json.dumps({value: [value]})
        assert enum(value) is member
    with pytest.raises(ValueError):
        enum("no such mode")


def test_the_enums_are_exported_at_the_top():
    assert {"Verdict", "CriticalKind", "Implementation"} <= set(losslab.__all__)
    assert losslab.Verdict.NON_CONVEX == "non-convex" and losslab.CriticalKind.NOT_CRITICAL == "not a critical point"
    assert losslab.Implementation.LAYERS_PER_POINT == "layers per point"


def test_analyses_return_the_enums():
    x = torch.linspace(-1, 1, 9, dtype=DT)
    poly = Problem(Polynomial(1, 2), x, x**2)
    report = check_convexity(poly)
    assert report.verdict is Verdict.CONVEX and report.to_dict()["verdict"] == "convex"
    assert json.loads(json.dumps(report.to_dict()))["verdict"] == "convex"
    assert classify(poly, torch.tensor([0.0, 0.0, 1.0], dtype=DT)).kind is CriticalKind.MINIMUM
    assert backend(poly) is Implementation.VMAP and backend(poly, "per point") is Implementation.PER_POINT
    net = Problem(TwoLayer(1, 3, "tanh"), x[:, None], x**2)
    assert backend(net) is Implementation.LAYERS
    Theta = torch.stack([net.init(0), net.init(1)])
    torch.testing.assert_close(evaluate_points(net, Theta, implementation=Implementation.LAYERS_PER_POINT),
                               evaluate_points(net, Theta, implementation="layers per point"), rtol=0, atol=0)


def test_a_plain_string_is_accepted_where_a_result_is_built_and_checked():
    report = ConvexityReport("no violation found", "p", ("v",), None, None, None, 0)
    assert report.verdict is Verdict.NO_VIOLATION_FOUND
    with pytest.raises(ValueError):
        ConvexityReport("probably convex", "p", ("v",), None, None, None, 0)
    fields = dict(reason="", grad_norm=0.0, grad_tol=0.0, min_eig=1.0, min_bound=0.0, max_eig=1.0, max_bound=0.0, zero_tol=0.0,
                  converged=True, eigen=None)
    assert CriticalPointResult("saddle", **fields).kind is CriticalKind.SADDLE


def test_an_unknown_implementation_is_refused_with_the_plain_names():
    x = torch.linspace(-1, 1, 9, dtype=DT)
    poly = Problem(Polynomial(1, 2), x, x**2)
    with pytest.raises(LosslabError) as refused:
        backend(poly, "fast")
    assert str(refused.value) == "unknown implementation 'fast': expected one of 'auto', 'layers', 'layers per point', 'vmap', 'per point'"
    with pytest.raises(LosslabError, match=r"for implementation='layers', got"):
        backend(poly, Implementation.LAYERS)
