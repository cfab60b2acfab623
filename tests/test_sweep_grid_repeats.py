"""A grid value listed twice is refused: a task's key is the SHA-256 of its point and seed, so a repeat is one task twice.

Reference: the task keys themselves (before the check, ``x = [1, 2, 1]`` made 3 tasks with 2 distinct keys,
which ran both copies and counted their attempts together).
"""

from __future__ import annotations

import pytest

import losslab.sweep as sweep
from losslab._checks import LosslabError


@pytest.mark.parametrize(("grid", "message"), [
    ({"x": [1, 2, 1]}, "expected [grid] x to hold distinct values (a repeated value is the same task), got [1, 2, 1]; 1 is there twice"),
    ({"w": [[1, 2], [3], [1, 2]]}, "got [[1, 2], [3], [1, 2]]; [1, 2] is there twice"),
    ({"s": [{"a": 1, "b": 2}, {"b": 2, "a": 1}]}, "{'a': 1, 'b': 2} is there twice"),
    ({"x": [1, 2], "name": ["a", "b", "a"]}, "expected [grid] name to hold distinct values"),
])
def test_a_repeated_grid_value_is_one_line(tmp_path, grid, message):
    (tmp_path / "study.py").write_text("def analyse(*, seed, **settings):\n    return {'seed': seed}\n")
    doc = {"sweep": {"function": "study.py:analyse"}, "grid": grid}
    with pytest.raises(LosslabError) as err:
        sweep.parse_config(doc, folder=tmp_path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_distinct_values_make_distinct_tasks(tmp_path):
    (tmp_path / "study.py").write_text("def analyse(*, seed, **settings):\n    return {'seed': seed}\n")
    grid = {"x": [1, 1.5, 2], "w": [[1, 2], [2, 1]], "name": ["a", "b"]}
    tasks = sweep.make_tasks(sweep.parse_config({"sweep": {"function": "study.py:analyse", "seeds": 2}, "grid": grid}, folder=tmp_path))
    assert len(tasks) == 3 * 2 * 2 * 2 == len({t.key for t in tasks})
