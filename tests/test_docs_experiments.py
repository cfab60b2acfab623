"""docs/experiments.md: its example runs as written, and the experiment it defines behaves as the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from losslab import LosslabError
from losslab.report.html import write_report

DOC = Path(__file__).resolve().parents[1] / "docs" / "experiments.md"


@pytest.fixture(scope="module")
def namespace():
    (block,) = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    ns: dict = {}
    exec(compile(block, str(DOC), "exec"), ns)
    return ns


def test_the_example_runs_and_its_claim_is_decided_by_the_gradient(namespace):
    result, m = namespace["result"], namespace["result"].measured
    assert result.claim("gradient-vanishes").holds and [f.name for f in result.figures] == ["fit"]
    x, y = m.x.clone().requires_grad_(False), m.y
    theta = torch.tensor(m.slope, dtype=torch.float64, requires_grad=True)  # reference: autograd of the loss itself
    ((theta * x - y) ** 2).mean().backward()
    assert abs(float(theta.grad)) == pytest.approx(m.gradient, abs=1e-15)
    assert m.slope == pytest.approx(float(torch.linalg.lstsq(x[:, None], y[:, None]).solution), rel=1e-12)


def test_the_refusal_the_page_quotes(namespace):
    quoted = re.search(r"is refused with\n`(.*?)`", DOC.read_text(encoding="utf-8"), flags=re.S).group(1).replace("\n", " ")
    with pytest.raises(LosslabError) as err:
        namespace["run_experiment"](namespace["LINE"], seed=0, overrides={"n": 1})
    assert str(err.value) == quoted


def test_the_report_page_of_the_example(namespace, tmp_path):
    index = write_report([namespace["result"]], tmp_path / "line-report", seed=0, quick=True, version="dev")
    assert "A line by least squares" in index.read_text() and (index.parent / "figures" / "line-fit-fit.png").exists()
