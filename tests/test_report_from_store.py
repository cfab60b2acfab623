"""The report drawn from sweep stores: Part II's figures from the stored numbers, claim rates with Wilson intervals.

References: the experiments run in this process (conftest's quick_result), the claims of every run
re-run here, and the Wilson score interval from its closed form (Wilson 1927).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from losslab._checks import LosslabError
from losslab.experiments import get_experiment, run_experiment
from losslab.report.from_store import results_from_store, write_store_report
from losslab.sweep import parse_config, read_rows, run

PART_TWO = ("lazy-vs-rich", "mode-connectivity", "spurious-minima", "double-descent", "edge-of-stability")


def _sweep(folder: Path, name: str, *, seeds=(0,), grid: dict | None = None) -> Path:
    store = folder / f"{name}.sqlite"
    doc = {"sweep": {"experiment": name, "quick": True, "seeds": list(seeds), "workers": 2, "store": store.name},
           "grid": grid or {}}
    run(parse_config(doc, folder=folder))
    return store


@pytest.fixture(scope="module")
def part_two_stores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stores")
    return {name: _sweep(folder, name) for name in PART_TWO}


@pytest.mark.parametrize("name", PART_TWO)
def test_part_two_figures_from_a_store_equal_the_live_run(part_two_stores, quick_result, name):
    live = quick_result(name)
    stored = results_from_store(part_two_stores[name])
    assert [f.name for f in stored.figures] == [f.name for f in live.figures]
    assert [f.caption for f in stored.figures] == [f.caption for f in live.figures]
    assert all((f.png is not None and f.png.startswith(b"\x89PNG")) or f.plotly for f in stored.figures)
    assert [c.key for c in stored.claims] == [c.key for c in live.claims]
    # the worker ran with one torch thread: the numbers agree with this process's run to rounding
    ours, theirs = stored.measured.to_dict(), live.measured.to_dict()
    assert ours.keys() == theirs.keys()
    assert stored.tables[:-1] and [t.caption for t in stored.tables[:-1]] == [t.caption for t in live.tables]
    assert stored.tables[-1].caption.startswith("Claims over the sweep")


def test_a_report_of_all_part_two_stores_has_their_sections_in_order(part_two_stores, tmp_path):
    shuffled = [part_two_stores[n] for n in reversed(PART_TWO)]
    index = write_store_report(shuffled, tmp_path / "report", version="test")
    html = index.read_text()
    positions = [html.find(get_experiment(n).title) for n in PART_TWO]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)
    figures = sorted(p.name for p in (tmp_path / "report" / "figures").iterdir())
    live_pngs = {f"{n}-{f.name}.png" for n in PART_TWO for f in results_from_store(part_two_stores[n]).figures if f.png is not None}
    assert set(figures) == live_pngs
    payload = json.loads((tmp_path / "report" / "results.json").read_text())
    assert [e["name"] for e in payload["experiments"]] == list(PART_TWO)


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def test_claim_rates_count_every_seed_and_give_wilson_intervals(tmp_path):
    name, seeds, lrs = "edge-of-stability", (0, 1, 2), (0.05, 0.1)
    store = _sweep(tmp_path, name, seeds=seeds, grid={"lr": list(lrs)})
    table = results_from_store(store).tables[-1]
    experiment = get_experiment(name)
    rows = {(r[0], r[1]): r for r in table.rows}
    assert len(rows) == len(lrs) * len(run_experiment(experiment, seed=0, quick=True, overrides={"lr": lrs[0]}).claims)
    for lr in lrs:
        held: dict[str, int] = {}
        for seed in seeds:  # the independent count: each run's claims judged in this process
            for c in run_experiment(experiment, seed=seed, quick=True, overrides={"lr": lr}).claims:
                held[c.key] = held.get(c.key, 0) + c.holds
        for key, k in held.items():
            _, _, count, rate, interval = rows[(f"lr={json.dumps(lr)}", key)]
            assert count == f"{k} of {len(seeds)}" and rate == f"{k / len(seeds):.0%}"
            low, high = _wilson(k, len(seeds))
            assert interval == f"{low:.0%} – {high:.0%}"
    assert "seed 0" in table.caption and "lr=0.05" in table.caption


def test_the_report_skips_failed_rows_and_refuses_stores_without_a_finished_run(tmp_path):
    store = _sweep(tmp_path, "edge-of-stability", seeds=(0, 1))
    import sqlite3

    con = sqlite3.connect(store)
    with con:
        con.execute("UPDATE tasks SET status = 'failed', numbers = NULL, error = 'RuntimeError: boom', attempts = 2 WHERE seed = 0")
    con.close()
    result = results_from_store(store)
    assert result.seed == 1
    assert all(r[2].endswith("of 1") for r in result.tables[-1].rows)
    con = sqlite3.connect(store)
    with con:
        con.execute("UPDATE tasks SET status = 'failed', numbers = NULL, attempts = 2")
    con.close()
    with pytest.raises(LosslabError, match=r"expected at least one finished run"):
        results_from_store(store)


def test_bad_report_inputs_are_one_line(tmp_path):
    folder = tmp_path
    (folder / "study.py").write_text("def analyse(*, seed):\n    return {'x': seed}\n")
    (folder / "f.toml").write_text('[sweep]\nfunction = "study.py:analyse"\nworkers = 1\n')
    run(folder / "f.toml")
    cases = [
        ([folder / "f.sqlite"], r"expected the store of an experiment sweep, got one of a 'function' sweep"),
        ([folder / "missing.sqlite"], r"expected a sweep store .* \(no such file\)"),
        ([], r"expected at least one sweep store"),
    ]
    for stores, pattern in cases:
        with pytest.raises(LosslabError, match=pattern) as info:
            write_store_report(stores, folder / "out", version="t")
        assert "\n" not in str(info.value)
    assert read_rows(folder / "f.sqlite")[0]["kind"] == "function"


def test_the_cli_writes_the_report_and_refuses_a_function_store(tmp_path, part_two_stores):
    store = part_two_stores["edge-of-stability"]
    done = subprocess.run([sys.executable, "-m", "losslab.cli", "sweep", "report", str(store), "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r" / "index.html").is_file() and re.search(r"wrote .*index\.html", done.stdout)
    bad = subprocess.run([sys.executable, "-m", "losslab.cli", "sweep", "report", str(tmp_path / "nope.sqlite")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
