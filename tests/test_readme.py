"""The README's Python examples run, in order, as a new user would paste them."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run_and_say_what_they_claim():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    report = namespace["report"]
    assert report.verdict == "non-convex" and report.witness.verify(namespace["problem"]).holds
    assert report.by_group["v"].verdict == "convex"
    assert namespace["s"].losses.shape == (41, 41)
    assert len(namespace["top"].values) == 5
    result = namespace["result"]
    assert result.settings["noise"] == 0.2 and len(result.numbers["test_mse"]) == len(result.numbers["degrees"])
