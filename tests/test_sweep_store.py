"""The sweep store: one sweep at a time, one sweep's identity, growth without recomputation, WAL readers.

References: the SQLite file read directly with :mod:`sqlite3`, the pid of the process that holds the
lock, and a log of every execution written by the user's analysis.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import losslab.sweep as sweep
from losslab import LosslabError
from losslab.cli import app
from losslab.sweep.store import Store
from losslab.sweep.tasks import Outcome, make_tasks

SRC = str(Path(__file__).resolve().parents[1] / "src")

STUDY = '''
import os
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def analyse(*, seed, width, pause=0.0):
    with open(HERE / "executions.log", "a") as log:
        log.write(f"{seed} {width}\\n")
    time.sleep(pause)
    return {"score": width * 100 + seed}


def other(*, seed, width, pause=0.0):
    return {"score": -1}
'''


def _config(folder: Path, *, widths, seeds, function="analyse", extra="") -> Path:
    (folder / "study.py").write_text(STUDY)
    config = folder / "study.toml"
    config.write_text(f'[sweep]\nfunction = "study.py:{function}"\nseeds = {seeds}\nworkers = 1\n{extra}\n[grid]\nwidth = {widths}\n')
    return config


def _executions(folder: Path) -> list[tuple[int, int]]:
    log = folder / "executions.log"
    return [tuple(map(int, line.split())) for line in log.read_text().splitlines()] if log.exists() else []


def _query(store: Path, sql: str, *args) -> list[tuple]:
    con = sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def _finished_rows(store: Path) -> int:
    try:
        return _query(store, "SELECT count(*) FROM tasks")[0][0] if store.exists() else 0
    except sqlite3.OperationalError:  # the file created, its schema not yet
        return 0


def _record(db: Store, task, *, error: str = "", attempts: int = 1, seconds: float = 0.5, host: str = "a") -> None:
    numbers = "" if error else json.dumps({"score": task.seed})
    db.record(task, Outcome(task.key, numbers, error, seconds, host), attempts)


def test_a_second_sweep_on_a_held_store_is_refused_naming_the_holder(tmp_path):
    config = sweep.load_config(_config(tmp_path, widths=[1, 2], seeds=1))
    with Store(config.store, config.identity()):
        with pytest.raises(LosslabError) as busy:
            sweep.run(config)
    message = str(busy.value)
    assert "\n" not in message and message.startswith("expected store ")
    assert f"got a sweep already writing to it (pid {os.getpid()} on {socket.gethostname()}, since " in message
    assert "--store PATH" in message
    assert _executions(tmp_path) == []  # refused before any task ran
    assert sweep.run(config).done == 2  # free again once the holder closed it


def test_a_running_sweep_holds_the_store_until_killed(tmp_path):
    """Across processes: a running ``losslab sweep`` refuses a second one; SIGKILL frees its lock (the OS drops the flock)."""
    path = _config(tmp_path, widths=[1, 2, 3, 4, 5, 6], seeds=1, extra="[settings]\npause = 0.4\n")
    store = tmp_path / "study.sqlite"
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    holder = subprocess.Popen([sys.executable, "-m", "losslab.cli", "sweep", str(path), "--quiet"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while holder.poll() is None and time.monotonic() < deadline and not _finished_rows(store):
            time.sleep(0.02)
        assert holder.poll() is None, "the sweep should still run (6 tasks of 0.4 s)"
        with pytest.raises(LosslabError, match=rf"got a sweep already writing to it \(pid {holder.pid} on "):
            sweep.run(path)
        status = CliRunner().invoke(app, ["sweep", "status", str(store), "--json"])  # readers take no lock
        assert status.exit_code == 0 and json.loads(status.stdout)["done"] >= 1
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    before = _query(store, "SELECT count(*) FROM tasks")[0][0]
    resumed = sweep.run(path)
    assert resumed.skipped == before and resumed.done == 6 - before


def test_a_store_of_another_sweep_is_refused_naming_what_differs(tmp_path):
    mine = sweep.load_config(_config(tmp_path, widths=[1], seeds=1))
    with Store(mine.store, mine.identity()) as db:
        _record(db, make_tasks(mine)[0])
    other = _config(tmp_path, widths=[1], seeds=1, function="other")
    with pytest.raises(LosslabError) as err:
        sweep.run(other)
    message = str(err.value)
    assert "\n" not in message and "got one of another sweep (they differ in target: " in message
    assert f"{tmp_path / 'study.py'}:analyse" in message and f"{tmp_path / 'study.py'}:other" in message
    experiment = tmp_path / "experiment.toml"
    experiment.write_text(f'[sweep]\nexperiment = "overfitting"\nquick = true\nstore = "{mine.store}"\n')
    with pytest.raises(LosslabError, match="they differ in factory: '' vs None, kind: 'function' vs 'experiment', quick: None vs True"):
        sweep.run(experiment)
    assert _query(mine.store, "SELECT count(*) FROM tasks") == [(1,)]


def test_a_run_stopped_before_its_first_row_does_not_claim_the_store(tmp_path):
    """A typo in the function's name stops the run after the store was opened; the corrected sweep may use it."""
    typo = _config(tmp_path, widths=[1], seeds=1, function="analyze")
    with pytest.raises(LosslabError, match=r"^expected \[sweep\] function study.py:analyze to be a function in .*, got NoneType"):
        sweep.run(typo)
    fixed = sweep.run(_config(tmp_path, widths=[1], seeds=1))
    assert fixed.done == 1 and _executions(tmp_path) == [(0, 1)]


def test_growing_the_grid_and_seeds_runs_only_the_new_tasks(tmp_path):
    first = sweep.run(_config(tmp_path, widths=[1, 2], seeds=2))
    assert (first.total, first.skipped, first.done) == (4, 0, 4)
    store = tmp_path / "study.sqlite"
    before = dict(_query(store, "SELECT key, finished FROM tasks"))
    grown = sweep.run(_config(tmp_path, widths=[1, 2, 3], seeds=3))
    assert (grown.total, grown.skipped, grown.done, grown.failed) == (9, 4, 5, 0)
    runs = _executions(tmp_path)
    assert sorted(runs[:4]) == [(s, w) for s in (0, 1) for w in (1, 2)]
    assert sorted(runs[4:]) == sorted([(2, 1), (2, 2), (0, 3), (1, 3), (2, 3)])  # only the new ones ran
    after = dict(_query(store, "SELECT key, finished FROM tasks"))
    assert {k: after[k] for k in before} == before  # the old rows untouched
    assert sorted(json.loads(n)["score"] for (n,) in _query(store, "SELECT numbers FROM tasks")) == sorted(
        w * 100 + s for w in (1, 2, 3) for s in (0, 1, 2))
    shrunk = sweep.run(_config(tmp_path, widths=[2], seeds=1))  # a smaller grid: nothing to run, nothing deleted
    assert (shrunk.total, shrunk.skipped, shrunk.done) == (1, 1, 0) and len(_executions(tmp_path)) == 9
    assert _query(store, "SELECT count(*), count(DISTINCT key) FROM tasks") == [(9, 9)]
    assert _query(store, "PRAGMA journal_mode") == [("wal",)]


def test_status_summary_matches_the_file_and_readers_work_while_a_sweep_writes(tmp_path):
    config = sweep.load_config(_config(tmp_path, widths=[1, 2, 3], seeds=4))
    tasks = make_tasks(config)
    store = config.store
    with Store(store, config.identity(), config_text="text", planned=len(tasks)) as db:
        for i, task in enumerate(tasks[:7]):
            _record(db, task, seconds=0.25 * (i + 1), host="a" if i % 2 else "b")
        _record(db, tasks[7], error="ValueError: x", attempts=2, seconds=1.0)
        _record(db, tasks[8], error="ValueError: x", attempts=2, seconds=1.0)
        _record(db, tasks[9], error="KeyError: 'y'", attempts=1, seconds=2.0)
        # a write transaction left open on another connection: readers see the committed rows and do not wait
        writer = sqlite3.connect(store, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO tasks (key, status, attempts) VALUES ('uncommitted', 'done', 1)")
        start = time.monotonic()
        s = sweep.summary(store)
        frame = sweep.to_frame(store)
        status = CliRunner().invoke(app, ["sweep", "status", str(store), "--json"])
        assert time.monotonic() - start < 30  # no lock wait (SQLite's busy timeout is 60 s)
        writer.execute("ROLLBACK")
        writer.close()

    q = lambda sql: _query(store, sql)[0][0]
    assert s.planned == int(q("SELECT value FROM meta WHERE key = 'planned'")) == 12
    assert s.done == q("SELECT count(*) FROM tasks WHERE status = 'done'") == 7
    assert s.failed == q("SELECT count(*) FROM tasks WHERE status = 'failed' AND attempts >= 2") == 2
    assert s.retrying == q("SELECT count(*) FROM tasks WHERE status = 'failed' AND attempts < 2") == 1
    assert s.seconds == pytest.approx(q("SELECT sum(seconds) FROM tasks"))
    assert s.mean_seconds == pytest.approx(q("SELECT avg(seconds) FROM tasks WHERE status = 'done'"))
    assert s.hosts == dict(_query(store, "SELECT host, count(*) FROM tasks GROUP BY host"))
    assert (s.first, s.last) == _query(store, "SELECT min(finished), max(finished) FROM tasks")[0]
    assert s.errors == [("ValueError: x", 2), ("KeyError: 'y'", 1)]
    assert s.identity == json.loads(q("SELECT value FROM meta WHERE key = 'identity'")) == config.identity()
    assert len(frame) == 10 and "uncommitted" not in set(frame["key"])
    assert status.exit_code == 0 and json.loads(status.stdout) == json.loads(json.dumps(vars(s)))


def test_the_store_of_a_failed_run_records_each_failed_attempt(tmp_path):
    """A later attempt replaces the row (one row per key), with the attempt count."""
    config = sweep.load_config(_config(tmp_path, widths=[1], seeds=1))
    (task,) = make_tasks(config)
    with Store(config.store, config.identity()) as db:
        _record(db, task, error="ValueError: first", attempts=1)
        assert _query(config.store, "SELECT status, error, attempts FROM tasks") == [("failed", "ValueError: first", 1)]
        _record(db, task, attempts=2)
    assert _query(config.store, "SELECT status, error, attempts, numbers FROM tasks") == [("done", None, 2, '{"score": 0}')]
