"""``losslab sweep CONFIG``, ``status`` and ``export`` as a user meets them: exit codes, output, the files written.

The sweep runs once in a real process; status and export run through typer's runner on its store.
References: :func:`losslab.sweep.to_frame` and :func:`~losslab.sweep.summary` (the library's own
objects), the store read with :mod:`sqlite3`, and the analysis's closed form (``score = 100·width + seed``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import losslab.sweep as sweep
from losslab.cli import app

SRC = str(Path(__file__).resolve().parents[1] / "src")
STUDY = '''
def analyse(*, seed, width, tags):
    return {"score": 100 * width + seed, "tags": tags, "half": width / 2}
'''
CONFIG = '''
[sweep]
function = "study.py:analyse"
seeds = 3

[settings]
tags = ["a", "b"]

[grid]
width = [1, 2]
'''


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> dict:
    """The sweep run once by the real command, its store given with --store."""
    folder = tmp_path_factory.mktemp("cli")
    (folder / "study.py").write_text(STUDY)
    (folder / "study.toml").write_text(CONFIG)
    store = folder / "elsewhere.sqlite"
    result = subprocess.run([sys.executable, "-m", "losslab.cli", "sweep", str(folder / "study.toml"), "--workers", "2", "--quiet",
                             "--json", "--store", str(store)], env={**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return {"folder": folder, "store": store, "json": json.loads(result.stdout), "stderr": result.stderr}


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_the_run_reports_in_json_and_writes_the_given_store_only(ran):
    report = ran["json"]
    assert {k: report[k] for k in ("store", "total", "skipped", "done", "failed", "backend", "workers", "files")} == {
        "store": str(ran["store"]), "total": 6, "skipped": 0, "done": 6, "failed": 0, "backend": "local", "workers": 2, "files": {}}
    assert report["seconds"] > 0 and ran["stderr"] == ""
    assert not (ran["folder"] / "study.sqlite").exists()  # --store replaced the config's default
    con = sqlite3.connect(f"{ran['store'].as_uri()}?mode=ro", uri=True)
    rows = con.execute("SELECT seed, settings, numbers, status FROM tasks").fetchall()
    con.close()
    assert sorted((s, json.loads(n)["score"]) for s, _, n, _ in rows) == sorted((s, 100 * w + s) for w in (1, 2) for s in range(3))
    assert {st for *_, st in rows} == {"done"}


def test_running_again_says_everything_is_in_the_store(ran):
    result = invoke("sweep", str(ran["folder"] / "study.toml"), "--store", str(ran["store"]), "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("sweep: 6 tasks; 6 already in the store, 0 done, 0 failed twice, in ")
    assert "(nothing to run)" in result.stdout


def test_status_table_and_json_agree_with_the_store(ran):
    table = invoke("sweep", "status", str(ran["store"]))
    assert table.exit_code == 0, table.output
    text = " ".join(table.stdout.split())
    assert f"function {ran['folder'] / 'study.py'}:analyse" in text
    assert "6 planned: 6 done, 0 failed twice, 0 failed once, 0 to run" in text
    as_json = invoke("sweep", "status", str(ran["store"]), "--json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout) == json.loads(json.dumps(vars(sweep.summary(ran["store"]))))
    assert json.loads(as_json.stdout)["done"] == 6


def test_export_parquet_and_csv_hold_the_frame(ran, tmp_path):
    result = invoke("sweep", "export", str(ran["store"]), "--parquet", str(tmp_path / "rows.parquet"), "--csv", str(tmp_path / "rows.csv"))
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'rows.parquet'}" in result.stdout and f"wrote {tmp_path / 'rows.csv'}" in result.stdout
    frame = sweep.to_frame(ran["store"])
    parquet, csv = pd.read_parquet(tmp_path / "rows.parquet"), pd.read_csv(tmp_path / "rows.csv")
    assert list(parquet.columns) == list(csv.columns) == list(frame.columns)
    for back in (parquet, csv):
        assert back["key"].tolist() == frame["key"].tolist()
        assert back["score"].tolist() == frame["score"].tolist() == [100 * w + s for w in (1, 2) for s in range(3)]
        assert back["half"].tolist() == frame["half"].tolist()
        assert [json.loads(v) for v in back["numbers"]] == frame["numbers"].tolist()
        assert [json.loads(v) for v in back["tags"]] == [["a", "b"]] * 6  # lists as JSON text in both
    assert pd.to_datetime(csv["finished"]).tolist() == frame["finished"].tolist()


@pytest.mark.parametrize(("args", "message"), [
    (["status"], "expected a store after `losslab sweep status`, got none; e.g. losslab sweep status runs.sqlite"),
    (["export"], "expected a store after `losslab sweep export`, got none"),
    (["export", "{store}"], "expected --parquet FILE or --csv FILE for `losslab sweep export STORE`, got neither"),
    (["status", "{store}", "--workers", "2"], "expected --workers only when running a sweep, got it with `losslab sweep status`"),
    (["export", "{store}", "--store", "x.sqlite", "--csv", "x.csv"], "expected --store only when running a sweep"),
    (["{config}", "{store}"], "expected one CONFIG (or status/export/report STORE), got "),
    (["status", "{store}", "{store}"], "expected one store after `losslab sweep status`, got 2; give one at a time"),
    (["{config}", "--parquet", "x.parquet"], "expected --parquet/--csv/--out only with `losslab sweep export/report STORE`"),
    (["status", "{folder}/missing.sqlite"], "expected a sweep store (an SQLite file written by losslab sweep), got "),
    (["export", "{config}", "--csv", "x.csv"], "expected a sweep store (an SQLite file written by losslab sweep), got "),
    (["export", "{store}", "--csv", "/proc/losslab-x.csv"], "expected a writable CSV path, got '/proc/losslab-x.csv'"),
    (["export", "{store}", "--parquet", "{folder}/nowhere/x.parquet"], "expected the Parquet file's folder to exist"),
    (["{config}", "--backend", "dask"], "unknown backend 'dask'"),
    (["{config}", "--address", "127.0.0.1:1"], "expected an address only with the ray backend"),
], ids=["status-no-store", "export-no-store", "export-no-format", "status-workers", "export-store", "two-positionals",
        "status-two-stores", "run-parquet", "status-missing", "export-not-a-store", "csv-unwritable", "parquet-no-folder", "backend",
        "address"])
def test_argument_errors_are_one_line_and_exit_code_2(ran, args, message):
    fill = {"store": str(ran["store"]), "config": str(ran["folder"] / "study.toml"), "folder": str(ran["folder"])}
    result = invoke("sweep", *[a.format(**fill) for a in args])
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line
    assert not (ran["folder"] / "nowhere").exists()


def test_the_progress_bar_is_drawn_on_stderr_and_counts_done_and_failed(tmp_path, monkeypatch, capsys):
    """done / total and failed on stderr (FORCE_COLOR makes rich draw as on a terminal); stdout stays the result's."""
    (tmp_path / "study.py").write_text("def picky(*, seed):\n    if seed == 1:\n        raise ValueError('no')\n    return {}\n")
    (tmp_path / "study.toml").write_text('[sweep]\nfunction = "study.py:picky"\nseeds = 3\nworkers = 1\n')
    monkeypatch.setenv("FORCE_COLOR", "1")
    result = sweep.run(tmp_path / "study.toml", progress=True)
    out, err = capsys.readouterr()
    assert (result.done, result.failed) == (2, 1)
    assert out == ""
    assert "sweep" in err and "3/3" in err and "failed 1" in err and "ETA" in err
