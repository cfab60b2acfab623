"""Sweeps under hostile inputs (the adversarial review's findings): each a defect once, each checked against sqlite3 or a direct call."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from losslab import sweep
from losslab._checks import LosslabError
from losslab.landscape import plane
from losslab.sweep.store import Store

STUDY = """
import torch

class Weird(Exception):
    def __str__(self):
        raise RuntimeError("no str")

def analyse(*, seed, width=1, mode="ok"):
    if mode == "dtype" and seed == 0:
        torch.set_default_dtype(torch.float64)
        torch.set_num_threads(2)
    if mode == "weird":
        raise Weird()
    if mode == "nan":
        return {"loss": float("nan") if seed == 1 else 0.5}
    if mode == "print":
        print("x" * 100000)
    return {"width": repr(width), "dtype": str(torch.get_default_dtype()), "threads": torch.get_num_threads(),
            "value": float(torch.randn(100).sum())}
"""


def _write(folder: Path, toml: str, name: str = "s") -> Path:
    (folder / "study.py").write_text(STUDY)
    path = folder / f"{name}.toml"
    path.write_text(toml)
    return path


def _rows(store: Path) -> list[tuple]:
    con = sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True)
    try:
        return con.execute("SELECT key, settings, status, numbers, error, attempts FROM tasks ORDER BY idx").fetchall()
    finally:
        con.close()


def test_nan_and_the_string_nan_are_two_tasks_with_their_own_rows(tmp_path):
    path = _write(tmp_path, '[sweep]\nfunction = "study.py:analyse"\nworkers = 1\n[grid]\nwidth = [nan, "nan"]\n')
    result = sweep.run(path)
    rows = _rows(tmp_path / "s.sqlite")
    assert (result.done, len(rows), len({r[0] for r in rows})) == (2, 2, 2)
    assert sorted(json.loads(r[3])["width"] for r in rows) == ["'nan'", "nan"]  # repr of the float and of the string
    assert all(r[5] == 1 for r in rows)


def test_a_task_starts_from_torch_defaults_whatever_the_one_before_changed(tmp_path):
    both = _write(tmp_path, '[sweep]\nfunction = "study.py:analyse"\nworkers = 1\nseeds = [0, 1]\n[settings]\nmode = "dtype"\n', "both")
    alone = _write(tmp_path, '[sweep]\nfunction = "study.py:analyse"\nworkers = 1\nseeds = [1]\n[settings]\nmode = "dtype"\n', "alone")
    sweep.run(both)
    sweep.run(alone)
    seed_one = [json.loads(r[3]) for r in _rows(tmp_path / "both.sqlite")][1]
    assert seed_one == json.loads(_rows(tmp_path / "alone.sqlite")[0][3])
    assert seed_one["dtype"] == "torch.float32" and seed_one["threads"] == 1


def test_an_exception_that_cannot_print_is_recorded(tmp_path):
    path = _write(tmp_path, '[sweep]\nfunction = "study.py:analyse"\nworkers = 1\n[settings]\nmode = "weird"\n')
    result = sweep.run(path)
    (row,) = _rows(tmp_path / "s.sqlite")
    assert result.failed == 1 and row[2] == "failed" and row[4].startswith("Weird: (its message could not be printed)")


def test_nan_outputs_are_floats_in_the_frame_and_the_parquet_file(tmp_path):
    path = _write(tmp_path, '[sweep]\nfunction = "study.py:analyse"\nworkers = 1\nseeds = 2\n[settings]\nmode = "nan"\n')
    sweep.run(path)
    frame = sweep.to_frame(tmp_path / "s.sqlite")
    assert frame["loss"].iloc[0] == 0.5 and math.isnan(frame["loss"].iloc[1])
    back = pd.read_parquet(sweep.to_parquet(tmp_path / "s.sqlite", tmp_path / "s.parquet"))
    assert back["loss"].dtype == float and math.isnan(back["loss"].iloc[1])


def test_settings_named_like_columns_get_a_prefix(tmp_path):
    (tmp_path / "cols.py").write_text("def analyse(*, seed, host, numbers, planned):\n    return {'y': host * 100 + numbers, 'seed': 1}\n")
    path = tmp_path / "c.toml"
    path.write_text('[sweep]\nfunction = "cols.py:analyse"\nworkers = 1\n[settings]\nnumbers = 4\nplanned = 0\n[grid]\nhost = [1, 2]\n')
    sweep.run(path)
    frame = sweep.to_frame(tmp_path / "c.sqlite")
    assert list(frame["setting.host"]) == [1, 2] and list(frame["y"]) == [104, 204] and list(frame["out.seed"]) == [1, 1]
    assert set(frame["host"]) == {frame["host"].iloc[0]} and list(frame["seed"]) == [0, 0]


def test_rows_of_an_earlier_grid_are_kept_but_not_counted_as_planned(tmp_path):
    path = _write(tmp_path, '[sweep]\nfunction = "study.py:analyse"\nworkers = 1\nseeds = 2\n[grid]\nwidth = [1, 2]\n')
    sweep.run(path)
    path.write_text('[sweep]\nfunction = "study.py:analyse"\nworkers = 1\nseeds = [5]\n[grid]\nwidth = [3]\n')
    sweep.run(path)
    s = sweep.summary(tmp_path / "s.sqlite")
    assert (s.planned, s.done, s.earlier) == (1, 1, 4)
    frame = sweep.to_frame(tmp_path / "s.sqlite")
    assert list(frame[frame["planned"]]["seed"]) == [5] and len(frame) == 5


def test_a_symlink_to_a_busy_store_is_busy(tmp_path):
    path = _write(tmp_path, '[sweep]\nfunction = "study.py:analyse"\nworkers = 1\n')
    config = sweep.load_config(path)
    (tmp_path / "link.sqlite").symlink_to(tmp_path / "s.sqlite")
    with Store(config.store, config.identity()):
        with pytest.raises(LosslabError, match=r"expected store .* to be free, got a sweep already writing to it"):
            sweep.run(path, store=tmp_path / "link.sqlite")


@pytest.mark.parametrize(("sql", "part"), [
    ("UPDATE tasks SET numbers = '{broken'", "expected the numbers of task"),
    ("UPDATE meta SET value = 'x' WHERE key = 'identity'", "expected the sweep's identity"),
    ("UPDATE meta SET value = 'many' WHERE key = 'planned'", "expected the planned task count"),
])
def test_a_damaged_store_is_one_line_for_every_reader(tmp_path, sql, part):
    path = _write(tmp_path, '[sweep]\nfunction = "study.py:analyse"\nworkers = 1\n')
    sweep.run(path)
    con = sqlite3.connect(tmp_path / "s.sqlite")
    with con:
        con.execute(sql)
    con.close()
    with pytest.raises(LosslabError, match=part) as err:
        sweep.summary(tmp_path / "s.sqlite")
    assert "\n" not in str(err.value) and "damaged store" in str(err.value)


def test_toml_dates_are_refused_in_one_line(tmp_path):
    path = _write(tmp_path, '[sweep]\nfunction = "study.py:analyse"\n[grid]\nwhen = [1979-05-27, 1980-01-01]\n')
    with pytest.raises(LosslabError, match=r"expected \[grid\] when numbers, strings, booleans, or lists and tables of them"):
        sweep.load_config(path)


def test_what_the_analysis_prints_stays_off_the_json_on_stdout(tmp_path):
    path = _write(tmp_path, '[sweep]\nfunction = "study.py:analyse"\nworkers = 1\n[settings]\nmode = "print"\n')
    done = subprocess.run([sys.executable, "-m", "losslab.cli", "sweep", str(path), "--json"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-500:]
    assert json.loads(done.stdout)["done"] == 1 and "x" * 1000 in done.stderr


PLANE = """
import torch
from losslab import Problem
from losslab.models import Module
from pathlib import Path

def problem():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(30, 3, generator=g), torch.randn(30, 1, generator=g)
    if Path(__file__).with_suffix(".drift").exists():
        torch.randn(1)  # another draw first: another initialisation
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))  # unseeded initialisation
    return Problem(Module(net), X, y)
"""


def test_an_unseeded_plane_problem_is_the_same_at_every_call_and_a_drifting_one_is_refused(tmp_path):
    (tmp_path / "pl.py").write_text(PLANE)
    path = tmp_path / "pl.toml"
    path.write_text('[sweep]\nplane = "pl.py:problem"\nsteps = 5\ntile_rows = 2\nworkers = 1\n')
    sweep.run(path)
    first, second = sweep.plane_slice(tmp_path / "pl.sqlite"), sweep.plane_slice(tmp_path / "pl.sqlite")
    assert torch.equal(first.center, second.center) and torch.equal(first.losses, second.losses)
    import importlib.util

    spec = importlib.util.spec_from_file_location("pl_direct", tmp_path / "pl.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    problem = module.problem()
    assert float(problem.loss(first.center)) == pytest.approx(float(first.losses[2, 2]), rel=1e-6)  # the centre is what was evaluated
    ref = plane(problem, first.center, first.d1, first.d2, steps=5, method="grid")
    assert torch.allclose(ref.losses, first.losses, rtol=1e-5, atol=0)
    (tmp_path / "pl.drift").touch()
    with pytest.raises(LosslabError, match="not deterministic"):
        sweep.plane_slice(tmp_path / "pl.sqlite")
    con = sqlite3.connect(tmp_path / "pl.sqlite")
    with con:
        con.execute("DELETE FROM tasks WHERE idx = 1")
    con.close()
    with pytest.raises(LosslabError, match="expected the same plane centre and directions"):
        sweep.run(path)
