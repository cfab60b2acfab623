"""The example sweeps of examples/sweeps/ run, and their rows equal the same work done directly; docs/sweeps.md names them right.

References are independent of the sweep machinery: the user's functions called in this process,
the experiment run with :func:`losslab.experiments.run_experiment`, the plane computed by
:func:`losslab.landscape.plane`, the grid expanded with :func:`itertools.product` from the config.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import shlex
from pathlib import Path

import pytest
import torch

from losslab import LosslabError, sweep
from losslab.experiments import get_experiment, run_experiment
from losslab.landscape import plane

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "sweeps"
DOC = ROOT / "docs" / "sweeps.md"
CONFIGS = sorted(EXAMPLES.glob("*.toml"))


def study():
    """examples/sweeps/study.py imported here by hand (not through losslab's loader)."""
    spec = importlib.util.spec_from_file_location("study_by_hand", EXAMPLES / "study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def grid_rows(config: sweep.SweepConfig) -> list[tuple[dict, int]]:
    """(settings, seed) of every task the config asks for, its grid expanded by hand."""
    grid = config.grid
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    return [({**config.settings, **p}, s) for p in points for s in config.seeds]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Each example run once into its own store: {config stem: (store, SweepRun)}."""
    folder = tmp_path_factory.mktemp("sweep-examples")
    out = {}
    for config in CONFIGS:
        store = folder / f"{config.stem}.sqlite"
        out[config.stem] = store, sweep.run(config, store=store)
    return out


def test_there_is_one_example_of_each_kind():
    kinds = sorted(sweep.load_config(c).kind for c in CONFIGS)
    assert kinds == ["experiment", "function", "plane"]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.stem)
def test_each_example_runs_every_task_and_a_rerun_runs_none(stores, config):
    store, result = stores[config.stem]
    cfg = sweep.load_config(config)
    expected = len(grid_rows(cfg)) if cfg.kind != "plane" else -(-cfg.plane["steps"] // cfg.plane["tile_rows"])
    assert (result.total, result.done, result.failed, result.skipped) == (expected, expected, 0, 0)
    frame = sweep.to_frame(store)
    assert len(frame) == expected and frame["key"].is_unique and set(frame["status"]) == {"done"}
    again = sweep.run(config, store=store)
    assert (again.done, again.skipped) == (0, expected)


def test_function_example_rows_equal_the_analysis_called_directly(stores):
    store, _ = stores["widths"]
    cfg = sweep.load_config(EXAMPLES / "widths.toml")
    user = study()
    data = user.make_data()
    frame = sweep.to_frame(store)
    got = {(r["width"], r["lr"], r["seed"]): r["numbers"] for _, r in frame.iterrows()}
    for settings, seed in grid_rows(cfg):
        direct = user.analyse(data, seed=seed, **settings)
        assert got[(settings["width"], settings["lr"], seed)] == direct  # bit for bit: JSON keeps every float


def test_experiment_example_rows_equal_the_experiment_run_directly(stores):
    store, _ = stores["overfitting"]
    cfg = sweep.load_config(EXAMPLES / "overfitting.toml")
    frame = sweep.to_frame(store)
    assert sorted((r["noise"], tuple(r["truth"]), r["seed"]) for _, r in frame.iterrows()) == sorted(
        (s["noise"], tuple(s["truth"]), seed) for s, seed in grid_rows(cfg))
    row = frame.iloc[-1]
    overrides = {"n": cfg.settings["n"], "noise": row["noise"], "truth": tuple(row["truth"])}
    direct = run_experiment(get_experiment("overfitting"), seed=int(row["seed"]), overrides=overrides)
    assert row["passed"] == direct.passed
    assert row["numbers"]["numbers"]["test_mse"] == pytest.approx(direct.numbers["test_mse"], rel=1e-12)
    assert {c["key"]: c["holds"] for c in row["numbers"]["claims"]} == {c.key: c.holds for c in direct.claims}


def test_plane_example_equals_landscape_plane(stores):
    store, _ = stores["plane"]
    cfg = sweep.load_config(EXAMPLES / "plane.toml")
    steps, seed = cfg.plane["steps"], cfg.seeds[0]
    problem = study().problem()
    reference = plane(problem, problem.default_theta(seed), steps=steps, span=cfg.plane["span"], seed=seed, method="grid")
    tiled = sweep.plane_slice(store)
    assert tiled.losses.shape == (steps, steps)
    torch.testing.assert_close(tiled.losses, reference.losses, rtol=1e-12, atol=0)  # float64: the same sums to rounding
    torch.testing.assert_close(tiled.d1, reference.d1, rtol=0, atol=0)


@pytest.mark.parametrize(("grid", "match"), [
    ("truth = [[]]", r"\[grid\] truth = \[\]: expected truth to be 1 to 21"),
    ('truth = [["a", 1.0]]', r"\[grid\] truth = \['a', 1.0\]: expected truth"),
    ("truth = [1.0]", r"\[grid\] truth = 1.0: expected truth"),
    ("noise = [[0.1, 0.2]]", r"\[grid\] noise = \[0.1, 0.2\]"),
])
def test_a_bad_list_setting_of_an_experiment_is_one_line_naming_it(tmp_path, grid, match):
    config = tmp_path / "bad.toml"
    config.write_text(f'[sweep]\nexperiment = "overfitting"\n[grid]\n{grid}\n')
    with pytest.raises(LosslabError, match=match) as err:
        sweep.load_config(config)
    assert "\n" not in str(err.value)


def test_the_doc_names_existing_example_files_and_valid_commands():
    import typer.main

    from losslab.cli import app

    text = DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"examples/sweeps/[\w.]+", text))
    assert {f"examples/sweeps/{c.name}" for c in CONFIGS} <= named
    for path in named:
        if path.endswith((".toml", ".py")):  # inputs; the .sqlite files are what the commands write
            assert (ROOT / path).is_file(), path
    group = typer.main.get_command(app)
    lines = [ln.split("#")[0].strip() for ln in text.splitlines() if ln.startswith("losslab sweep")]
    assert len(lines) >= 4
    for line in lines:  # parsed by the real command line (options, types), not run
        words = shlex.split(line)
        with group.commands["sweep"].make_context("sweep", words[2:]):
            pass


def test_the_doc_python_blocks_run_from_the_repository_root(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})
    printed = capsys.readouterr().out
    assert re.fullmatch(r"\d+ bytes\n", printed), printed
