"""A task that fails is recorded with its error, retried once, and the sweep goes on.

Real parts: a local pool of spawned workers, the store read back with :mod:`sqlite3`, the command line
through typer's runner. The user's analysis logs every execution to a file, so the number of attempts
is counted independently of the store.
"""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

from typer.testing import CliRunner

import losslab.sweep as sweep
from losslab.cli import app

STUDY = '''
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent


def analyse(*, seed, mode, x=0):
    with open(HERE / "executions.log", "a") as log:
        log.write(f"{mode} {seed} {x}\\n")
    if mode == "raise":
        raise ValueError(f"no good seed {seed}\\nthe second line of the message")
    if mode == "flaky" and not (HERE / f"flaky-{seed}").exists():  # fails on its first attempt only
        (HERE / f"flaky-{seed}").touch()
        raise RuntimeError("only the first time")
    if mode == "fixable" and not (HERE / "fixed").exists():
        raise LookupError("not fixed yet")
    if mode == "list":  # not a dict of numbers
        return [seed]
    if mode == "die" and x == 2:  # kills its worker process
        os._exit(1)
    return {"value": 10 * seed + len(mode) + x}
'''


def _config(folder: Path, grid: str, seeds: int, workers: int = 2) -> Path:
    (folder / "study.py").write_text(STUDY)
    config = folder / "study.toml"
    config.write_text(textwrap.dedent(f"""\
        [sweep]
        function = "study.py:analyse"
        seeds = {seeds}
        workers = {workers}

        [grid]
        """) + grid + "\n")
    return config


def _rows(store: Path) -> dict[tuple, tuple]:
    """(mode, x, seed) → (status, error, attempts, numbers), read with sqlite3."""
    con = sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True)
    try:
        raw = con.execute("SELECT settings, seed, status, error, attempts, numbers FROM tasks").fetchall()
        assert con.execute("SELECT count(*) = count(DISTINCT key) FROM tasks").fetchone()[0] == 1
    finally:
        con.close()
    out = {}
    for settings, seed, *rest in raw:
        s = json.loads(settings)
        out[(s["mode"], s.get("x", 0), seed)] = tuple(rest)
    return out


def _executions(folder: Path) -> list[tuple[str, int, int]]:
    log = folder / "executions.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(m, int(s), int(x)) for m, s, x in (line.split() for line in lines)]


def test_raising_tasks_fail_twice_flaky_ones_recover_and_the_cli_says_how_to_retry(tmp_path):
    config = _config(tmp_path, 'mode = ["ok", "raise", "flaky", "fixable", "list"]', seeds=2)
    result = CliRunner().invoke(app, ["sweep", str(config), "--quiet"])
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    store = tmp_path / "study.sqlite"
    assert line == (f"error: 6 task(s) failed twice; `losslab sweep status {store}` shows their errors, and "
                    f"`losslab sweep {config} --retry-failed` runs them again")
    assert "Traceback" not in result.output

    rows = _rows(store)
    assert len(rows) == 10
    for seed in (0, 1):
        assert rows[("ok", 0, seed)] == ("done", None, 1, f'{{"value": {10 * seed + 2}}}')
        assert rows[("flaky", 0, seed)] == ("done", None, 2, f'{{"value": {10 * seed + 5}}}')  # failed once, then done
        assert rows[("raise", 0, seed)] == ("failed", f"ValueError: no good seed {seed}", 2, None)  # one line: Type: message
        assert rows[("fixable", 0, seed)] == ("failed", "LookupError: not fixed yet", 2, None)
        assert rows[("list", 0, seed)] == ("failed", "TypeError: expected study.py:analyse to return a dict of numbers, got list", 2, None)
    runs = _executions(tmp_path)
    assert sorted(runs) == sorted([(m, s, 0) for s in (0, 1) for m in ("ok", "flaky", "flaky", "raise", "raise", "fixable", "fixable",
                                                                        "list", "list")])
    summary = sweep.summary(store)
    assert (summary.done, summary.failed, summary.retrying) == (4, 6, 0)

    again = sweep.run(config, workers=1)  # failed twice: not run again without --retry-failed
    assert (again.skipped, again.done, again.failed) == (10, 0, 0) and len(_executions(tmp_path)) == len(runs)

    (tmp_path / "fixed").touch()
    retried = sweep.run(config, workers=1, retry_failed=True)
    assert (retried.skipped, retried.done, retried.failed) == (4, 2, 4)
    rows = _rows(store)
    assert [rows[("fixable", 0, s)][:2] for s in (0, 1)] == [("done", None)] * 2
    assert [rows[("raise", 0, s)][:3] for s in (0, 1)] == [("failed", f"ValueError: no good seed {s}", 2) for s in (0, 1)]
    new = _executions(tmp_path)[len(runs):]
    assert sorted(new) == sorted([("fixable", s, 0) for s in (0, 1)] + [(m, s, 0) for m in ("raise", "list") for s in (0, 1)] * 2)
    assert rows[("ok", 0, 0)] == ("done", None, 1, '{"value": 2}')  # done rows untouched


def test_a_task_that_kills_its_worker_fails_alone_and_the_others_finish(tmp_path):
    # the killer sits among the other tasks (the last grid key varies fastest), so the broken pool loses its neighbours too
    config = _config(tmp_path, 'x = [1, 2, 3]\nmode = ["ok", "die"]', seeds=1)
    result = sweep.run(config)
    assert (result.done, result.failed) == (5, 1)
    rows = _rows(tmp_path / "study.sqlite")
    status, error, attempts, numbers = rows.pop(("die", 2, 0))
    assert (status, attempts, numbers) == ("failed", 2, None)
    assert error.startswith("BrokenProcessPool: a worker process died") and "\n" not in error
    for (mode, x, _), row in rows.items():  # never charged an attempt for a neighbour's death
        assert row == ("done", None, 1, f'{{"value": {len(mode) + x}}}')
    runs = _executions(tmp_path)
    assert sorted(set(runs)) == sorted([(m, 0, x) for x in (1, 2, 3) for m in ("ok", "die")])
    assert runs.count(("die", 0, 2)) >= 2  # tried twice (or more: a death among others is not charged to anyone)
