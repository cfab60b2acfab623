"""Every experiment's figures read cleanly (issue #11): no colliding text in a PNG, named traces with hover text in plotly.

A PNG's text collisions are found by :mod:`losslab.report.text_overlaps` when it is rendered
(:attr:`losslab.report.drawn.Figure.overlaps`). A plotly figure's traces each need a name (not
plotly's "trace 0") and a hovertemplate that names the coordinates and the loss (not plotly's x / y / z).
"""

from __future__ import annotations

import json

import pytest

from losslab.experiments import NAMES


def plotly_problems(figure) -> list[str]:
    """The traces of a plotly figure without a name or a hovertemplate, as 'figure: trace i (type)'."""
    traces = json.loads(figure.plotly_json)["data"]
    return [f"{figure.name}: trace {i} ({t.get('type', '?')}) lacks {', '.join(k for k in ('name', 'hovertemplate') if not t.get(k))}"
            for i, t in enumerate(traces) if not (t.get("name") and t.get("hovertemplate"))]


@pytest.mark.parametrize("name", NAMES)
def test_no_text_collides_in_any_png(quick_result, name):
    pngs = [f for f in quick_result(name).figures if f.png is not None]
    assert {f.name: f.overlaps for f in pngs if f.overlaps} == {}


@pytest.mark.parametrize("name", NAMES)
def test_plotly_traces_are_named_and_have_hover_text(quick_result, name):
    problems = [p for f in quick_result(name).figures if f.plotly_json is not None for p in plotly_problems(f)]
    assert problems == []


def test_a_trace_without_hover_text_is_found():
    import plotly.graph_objects as go

    from losslab.report.drawn import plotly_figure

    bare = plotly_figure(go.Figure(go.Surface(z=[[0, 1], [1, 0]])), "bare", "a surface")
    assert plotly_problems(bare) == ["bare: trace 0 (surface) lacks name, hovertemplate"]
    named = go.Surface(z=[[0, 1], [1, 0]], name="loss", hovertemplate="α = %{x}<br>β = %{y}<br>loss = %{z}<extra></extra>")
    assert plotly_problems(plotly_figure(go.Figure(named), "named", "a surface")) == []
