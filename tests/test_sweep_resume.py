"""A sweep killed with SIGKILL at random moments and restarted ends with the table of an uninterrupted run.

Real parts only: the ``losslab sweep`` command in a subprocess with a local pool of 2 spawned workers,
a real SQLite file, ``os.kill(pid, SIGKILL)``. The reference is the same sweep run once without a kill
into another store; the comparison reads both files with :mod:`sqlite3` directly. The user's analysis
logs the pid of every execution, so the test also counts what each run recomputed and checks that the
killed driver's workers die with it (they set ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

import losslab.sweep as sweep

SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}

STUDY = '''
import os
import time

import torch

LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "executions.log")


def analyse(*, seed, width):
    with open(LOG, "a") as log:  # one line per execution: the worker's pid and the task
        log.write(f"{os.getpid()} {seed} {width}\\n")
    time.sleep(0.02 + 0.01 * ((7 * seed + width) % 4))
    g = torch.Generator().manual_seed(1000 * seed + width)
    w = torch.randn(width, 3, generator=g, dtype=torch.float64)
    gram = w @ w.T
    return {"trace": float(gram.trace()), "top": float(torch.linalg.eigvalsh(gram)[-1]), "row": w[0].tolist(),
            "noise": float(torch.rand(()))}
'''
WIDTHS = list(range(2, 10))
SEEDS = 5
TOTAL = len(WIDTHS) * SEEDS


def _write_sweep(folder: Path) -> Path:
    (folder / "study.py").write_text(STUDY)
    config = folder / "study.toml"
    config.write_text(textwrap.dedent(f"""\
        [sweep]
        function = "study.py:analyse"
        seeds = {SEEDS}
        workers = 2
        store = "killed.sqlite"

        [grid]
        width = {WIDTHS}
        """))
    return config


def _rows(store: Path) -> int:
    """Finished rows in the store, read directly (0 before the store exists)."""
    if not store.exists():
        return 0
    con = sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute("SELECT count(*) FROM tasks").fetchone()[0]
    except sqlite3.OperationalError:  # created but the schema not yet written
        return 0
    finally:
        con.close()


def _executions(log: Path) -> list[tuple[int, int, int]]:
    if not log.exists():
        return []
    return [tuple(int(v) for v in line.split()) for line in log.read_text().splitlines() if line.strip()]


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid``, from /proc (the pool's workers, multiprocessing's helpers)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    """Running (not gone and not a zombie waiting for its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _start(config: Path, round_: int) -> subprocess.Popen:
    """The sweep command, its output to files (an orphan holding a pipe would block a reader; here it is found by pid)."""
    with open(config.parent / f"out-{round_}.txt", "w") as out:
        return subprocess.Popen([sys.executable, "-m", "losslab.cli", "sweep", str(config), "--workers", "2", "--quiet"], env=ENV,
                                stdout=out, stderr=subprocess.STDOUT, cwd=config.parent)


def _kill_when(proc: subprocess.Popen, ready, pause: float, deadline: float = 90.0) -> set[int]:
    """Wait until ``ready()`` (or the run ends), wait ``pause`` s more, SIGKILL the driver; its workers' pids."""
    start = time.monotonic()
    workers: set[int] = set()
    while proc.poll() is None and not ready() and time.monotonic() - start < deadline:
        workers |= _children(proc.pid)
        time.sleep(0.01)
    time.sleep(pause)
    workers |= _children(proc.pid)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return workers


def test_sigkill_at_random_moments_then_restart_gives_the_uninterrupted_table(tmp_path):
    config = _write_sweep(tmp_path)
    store, log = tmp_path / "killed.sqlite", tmp_path / "executions.log"
    rng = np.random.default_rng(20261130)
    # the moments: as the workers start (before any task), as the first task runs (no row yet), after a random number
    # of rows (twice), and two rows before the end
    plans = [("workers starting", None), ("first task", None), ("rows", None), ("rows", None), ("near the end", TOTAL - 2)]
    killed = 0
    for round_, (what, target) in enumerate(plans):
        before = _rows(store)
        if before == TOTAL:
            break
        proc = _start(config, round_)
        if what == "workers starting":
            workers = _kill_when(proc, lambda p=proc: bool(_children(p.pid)), float(rng.uniform(0.0, 0.5)))
        elif what == "first task":
            started = len(_executions(log))
            workers = _kill_when(proc, lambda s=started: len(_executions(log)) > s, float(rng.uniform(0.0, 0.01)))
        else:
            if target is None:  # somewhere in the first half of what is left, so that every round finds work
                target = before + int(rng.integers(1, max(2, (TOTAL - before) // 2)))
            target = max(target, before + 1)
            pause = 0.0 if what == "near the end" else float(rng.uniform(0.0, 0.03))
            workers = _kill_when(proc, lambda t=target: _rows(store) >= t, pause)
        killed += proc.returncode == -signal.SIGKILL
        # no orphan: every worker dies with its driver (PR_SET_PDEATHSIG), multiprocessing's helpers with it
        for _ in range(300):  # a worker still importing torch when its driver died exits when it gets to run
            if not any(_alive(p) for p in workers):
                break
            time.sleep(0.1)
        assert not [p for p in workers if _alive(p)], f"workers left running after the driver was killed ({what})"
        assert _rows(store) >= before  # nothing already written is lost
    assert killed >= 4, "the kills should land while the sweep runs"

    missing = TOTAL - _rows(store)
    runs_before = len(_executions(log))
    final = subprocess.run([sys.executable, "-m", "losslab.cli", "sweep", str(config), "--workers", "2", "--quiet"], env=ENV,
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    assert f"{TOTAL} tasks; {TOTAL - missing} already in the store, {missing} done, 0 failed" in final.stdout
    assert len(_executions(log)) - runs_before == missing  # the restart recomputed exactly the unfinished tasks

    reference = sweep.run(config, store=tmp_path / "reference.sqlite", workers=1)
    assert (reference.done, reference.failed, reference.skipped) == (TOTAL, 0, 0)
    got, want = _table(store), _table(tmp_path / "reference.sqlite")
    assert got["count"] == got["distinct"] == want["count"] == TOTAL  # no duplicates, nothing lost
    assert got["rows"].keys() == want["rows"].keys()
    assert got["rows"] == want["rows"]  # same settings, seed, numbers (JSON text), status done, one attempt
    assert {r[3:] for r in got["rows"].values()} == {("done", None, 1)}
    expected = {(seed, width) for width in WIDTHS for seed in range(SEEDS)}
    assert {(r[1], json.loads(r[0])["width"]) for r in got["rows"].values()} == expected
    numbers = [json.loads(r[2]) for r in got["rows"].values()]
    assert len({n["noise"] for n in numbers}) == SEEDS  # torch's global RNG seeded per task: one value per seed, any worker


def _table(store: Path) -> dict:
    con = sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True)
    try:
        count, distinct = con.execute("SELECT count(*), count(DISTINCT key) FROM tasks").fetchone()
        rows = {key: tuple(rest) for key, *rest in con.execute("SELECT key, settings, seed, numbers, status, error, attempts FROM tasks")}
    finally:
        con.close()
    return {"count": count, "distinct": distinct, "rows": rows}


def test_sigterm_stops_the_sweep_at_once_and_a_restart_finishes_it(tmp_path):
    """SIGTERM (a scheduler's stop): exit code 128 + 15, the workers stopped, the finished rows kept."""
    config = _write_sweep(tmp_path)
    store = tmp_path / "killed.sqlite"
    proc = _start(config, 0)
    workers: set[int] = set()
    deadline = time.monotonic() + 90
    while proc.poll() is None and _rows(store) < 5 and time.monotonic() < deadline:
        workers |= _children(proc.pid)
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    for _ in range(100):
        if not any(_alive(p) for p in workers):
            break
        time.sleep(0.1)
    assert workers and not [p for p in workers if _alive(p)]
    kept = _rows(store)
    assert 5 <= kept < TOTAL
    result = sweep.run(config, workers=1)
    assert (result.skipped, result.done, result.failed) == (kept, TOTAL - kept, 0)
    table = _table(store)
    assert table["count"] == table["distinct"] == TOTAL and {r[3:] for r in table["rows"].values()} == {("done", None, 1)}
