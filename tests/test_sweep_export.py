"""Reading a store: to_frame, to_parquet, read_rows, and their errors.

References: the SQLite file read directly with :mod:`sqlite3`; the user's analysis imported and called
in the test process with the globals seeded as the sweep documents; an experiment's own
:class:`~losslab.experiments.Result` from :func:`~losslab.experiments.run_experiment`, never serialised.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import losslab.sweep as sweep
from losslab import LosslabError
from losslab._jsonable import jsonable
from losslab.experiments import get_experiment, run_experiment

STUDY = '''
import random

import numpy as np
import torch


def analyse(*, seed, width, scale):
    g = torch.Generator().manual_seed(100 * seed + width)
    x = torch.randn(width, generator=g, dtype=torch.float64)
    return {"score": float(scale * x.sum()), "width": width * 2, "vec": x.tolist(), "big": x.abs().max().item() > 1.0,
            "label": f"w{width}", "torch_global": float(torch.rand(())), "numpy_global": float(np.random.rand()),
            "python_global": random.random(), "nested": {"a": [1, 2]}}
'''
CONFIG = '''
[sweep]
function = "study.py:analyse"
seeds = [0, 5]
workers = 2

[settings]
scale = 2.5

[grid]
width = [2, 3, 4]
'''
COLUMNS = ["key", "index", "seed", "status", "error", "attempts", "seconds", "host", "finished"]


@pytest.fixture(scope="module")
def function_store(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    (folder / "study.py").write_text(STUDY)
    (folder / "study.toml").write_text(CONFIG)
    result = sweep.run(folder / "study.toml")
    assert (result.done, result.failed) == (6, 0)
    return folder / "study.sqlite"


def _analysis(folder: Path):
    spec = importlib.util.spec_from_file_location("sweep_export_study", folder / "study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.analyse


def _direct(store: Path) -> list[tuple]:
    con = sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True)
    try:
        return con.execute("SELECT key, idx, seed, status, error, attempts, seconds, host, finished, settings, numbers "
                           "FROM tasks ORDER BY idx").fetchall()
    finally:
        con.close()


def test_to_frame_has_the_rows_of_the_file_and_the_numbers_of_the_analysis(function_store):
    frame = sweep.to_frame(function_store)
    direct = _direct(function_store)
    scalars = ["score", "out.width", "big", "label", "torch_global", "numpy_global", "python_global"]
    assert list(frame.columns) == [*COLUMNS, "planned", "scale", "width", *scalars, "numbers"]  # lists and dicts stay in numbers
    assert len(frame) == len(direct) == 6
    analyse = _analysis(function_store.parent)
    for (_, row), raw in zip(frame.iterrows(), direct):
        assert [row[c] for c in COLUMNS[:8]] == list(raw[:8])
        assert row["finished"] == pd.Timestamp(raw[8], unit="s", tz="UTC")
        assert {"scale": row["scale"], "width": row["width"]} == json.loads(raw[9])
        assert row["numbers"] == json.loads(raw[10])
        # the independent reference: the analysis called here, the globals seeded as the sweep documents
        torch.manual_seed(row["seed"])
        np.random.seed(row["seed"])
        random.seed(row["seed"])
        want = analyse(seed=row["seed"], width=row["width"], scale=row["scale"])
        assert row["numbers"] == want
        assert {c: row[c] for c in scalars} == {("out." + k if k == "width" else k): want[k] for k in
                                                ("score", "width", "big", "label", "torch_global", "numpy_global", "python_global")}
    grid = [(w, s) for w in (2, 3, 4) for s in (0, 5)]  # task order: the grid point, then its seeds
    assert list(zip(frame["width"], frame["seed"])) == grid and list(frame["index"]) == list(range(6))
    assert frame["status"].eq("done").all() and frame["error"].isna().all()


def test_parquet_round_trip_keeps_every_value(function_store, tmp_path):
    frame = sweep.to_frame(function_store)
    path = sweep.to_parquet(function_store, tmp_path / "rows.parquet")
    back = pd.read_parquet(path)
    assert list(back.columns) == list(frame.columns)
    for col in frame.columns:
        if col == "numbers":
            assert [json.loads(v) for v in back[col]] == list(frame[col])
        else:
            assert back[col].tolist() == frame[col].tolist(), col
    assert str(back["finished"].dt.tz) == "UTC"


def test_read_rows_decodes_the_identity_and_rows(function_store):
    identity, rows = sweep.read_rows(function_store)
    direct = _direct(function_store)
    import hashlib

    code = hashlib.sha256((function_store.parent / "study.py").read_bytes()).hexdigest()[:16]
    assert identity == {"kind": "function", "target": "study.py:analyse", "factory": "", "code": code, "settings": {"scale": 2.5}}
    assert all(r["planned"] for r in rows)
    assert [r["key"] for r in rows] == [d[0] for d in direct]
    assert [r["settings"] for r in rows] == [json.loads(d[9]) for d in direct]


def test_an_experiment_sweep_frame_has_the_claims_of_run_experiment(tmp_path):
    (tmp_path / "exp.toml").write_text('[sweep]\nexperiment = "overfitting"\nquick = true\nseeds = [0, 3]\nworkers = 1\n'
                                       '[settings]\nn = 12\n[grid]\nnoise = [0.1, 0.3]\n')
    result = sweep.run(tmp_path / "exp.toml")
    assert (result.done, result.failed) == (4, 0)
    frame = sweep.to_frame(tmp_path / "exp.sqlite")
    experiment = get_experiment("overfitting")
    assert list(zip(frame["noise"], frame["seed"], frame["n"])) == [(0.1, 0, 12), (0.1, 3, 12), (0.3, 0, 12), (0.3, 3, 12)]
    for _, row in frame.iterrows():
        want = run_experiment(experiment, seed=int(row["seed"]), quick=True, overrides={"n": 12, "noise": row["noise"]})
        assert row["passed"] == want.passed
        assert {c: row[c] for c in frame.columns if c.startswith("claim.")} == {f"claim.{c.key}": c.holds for c in want.claims}
        assert len(want.claims) == sum(c.startswith("claim.") for c in frame.columns)
        assert row["numbers"]["settings"] == json.loads(json.dumps(jsonable(want.settings)))
        assert row["numbers"]["numbers"] == json.loads(json.dumps(jsonable(want.numbers)))  # same seed, same numbers
        assert [c["evidence"] for c in row["numbers"]["claims"]] == [c.evidence for c in want.claims]


def _not_sqlite(tmp_path: Path) -> Path:
    (tmp_path / "notes.sqlite").write_text("not a database, just text that is long enough to have a header" * 4)
    return tmp_path / "notes.sqlite"


def _other_sqlite(tmp_path: Path) -> Path:
    con = sqlite3.connect(tmp_path / "other.sqlite")
    con.execute("CREATE TABLE t(x)")
    con.close()
    return tmp_path / "other.sqlite"


BAD_STORES = [
    (lambda p: p / "missing.sqlite", "expected a sweep store (an SQLite file written by losslab sweep), got '{}' (no such file)"),
    (lambda p: p, "expected a sweep store (an SQLite file written by losslab sweep), got '{}' (a folder)"),
    (_not_sqlite, "expected a sweep store (an SQLite file written by losslab sweep), got '{}' (file is not a database)"),
    (_other_sqlite, "expected a sweep store with tables meta and tasks, got '{}' with ['t']; point at the .sqlite file"),
]


@pytest.mark.parametrize("reader", [sweep.to_frame, sweep.summary, sweep.read_rows, sweep.plane_slice,
                                    lambda s: sweep.to_parquet(s, Path(s).parent / "x.parquet")],
                         ids=["to_frame", "summary", "read_rows", "plane_slice", "to_parquet"])
@pytest.mark.parametrize(("make", "message"), BAD_STORES, ids=["missing", "folder", "not-sqlite", "other-tables"])
def test_readers_refuse_what_is_not_a_store_in_one_line(tmp_path, reader, make, message):
    store = make(tmp_path)
    with pytest.raises(LosslabError) as err:
        reader(store)
    assert str(err.value).startswith(message.format(store)) and "\n" not in str(err.value)


def test_plane_slice_of_another_kind_and_parquet_into_a_missing_folder_are_one_line(function_store, tmp_path):
    with pytest.raises(LosslabError, match=r"^expected the store of a plane sweep, got one of a 'function' sweep; use "):
        sweep.plane_slice(function_store)
    with pytest.raises(LosslabError, match=r"^expected the Parquet file's folder to exist, got '.*nowhere/x.parquet'; create"):
        sweep.to_parquet(function_store, tmp_path / "nowhere" / "x.parquet")
    assert not (tmp_path / "nowhere").exists()
