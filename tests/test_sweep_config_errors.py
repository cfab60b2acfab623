"""A bad sweep config, store or backend is one line naming the bad key (and the valid ones), in the library and the CLI.

Each case is a real TOML file next to a real user file; the CLI cases check exit code 2, one line on
stderr and no traceback, through typer's runner and once through a real process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import losslab.sweep as sweep
from losslab import LosslabError
from losslab.cli import app

SRC = str(Path(__file__).resolve().parents[1] / "src")
STUDY = '''
NOT_A_FUNCTION = 1


def analyse(*, seed, width=1):
    return {"s": seed * width}


def broken_factory():
    raise ValueError("no data today")
'''
FN = '[sweep]\nfunction = "study.py:analyse"\n'
EXP = '[sweep]\nexperiment = "spurious-minima"\n'
PLANE = '[sweep]\nplane = "study.py:analyse"\n'
SWEEP_KEYS = "valid keys: function, factory, seeds, store, backend, address, workers, threads"
SETTINGS = "valid settings: ks, starts, grad_norm, max_steps, lr_factor, threshold"

# (id, the TOML text, what the one line says: each part must appear)
CONFIGS = [
    ("unknown-experiment", '[sweep]\nexperiment = "spurious-minimum"\n',
     ["[sweep] experiment: unknown experiment 'spurious-minimum'; valid names: linear-in-parameters, ", "spurious-minima"]),
    ("unknown-setting-grid", EXP + "[grid]\nstart = [10]\n",
     ["unknown setting 'start' in [grid] for experiment 'spurious-minima'", SETTINGS]),
    ("unknown-setting-settings", EXP + "[settings]\nstart = 10\n",
     ["unknown setting 'start' in [settings] for experiment 'spurious-minima'", SETTINGS]),
    ("grid-value-type", EXP + '[grid]\nstarts = ["many"]\n', ["[grid] starts = 'many': expected starts to be an integer >= 10"]),
    ("grid-value-range", EXP + "[grid]\nstarts = [50, 5]\n", ["[grid] starts = 5: expected starts to be an integer >= 10"]),
    ("settings-value-type", EXP + '[settings]\nstarts = "many"\n', ["[settings]: expected starts to be an integer", "got starts='many'"]),
    ("setting-twice", EXP + "[settings]\nstarts = 50\n[grid]\nstarts = [50]\n", ["[settings] starts in [settings] or [grid], not both"]),
    ("seeds-string", FN + 'seeds = "x"\n', ["expected [sweep] seeds to be an integer or a list, got 'x'; write e.g. seeds = 10"]),
    ("seeds-bool", FN + "seeds = true\n", ["expected [sweep] seeds to be an integer or a list, got True"]),
    ("seeds-zero", FN + "seeds = 0\n", ["[sweep] seeds a count from 1 to 10,000,000", "got 0"]),
    ("seeds-negative", FN + "seeds = [0, -1]\n", ["[sweep] seeds a non-empty list of integers ≥ 0, got [0, -1]"]),
    ("seeds-empty", FN + "seeds = []\n", ["[sweep] seeds a non-empty list of integers ≥ 0, got []"]),
    ("seeds-duplicate", FN + "seeds = [1, 2, 1]\n", ["[sweep] seeds distinct seeds, got [1, 2, 1]; list each seed once"]),
    ("quick-int", EXP + "quick = 1\n", ["expected [sweep] quick to be true or false, got 1; write e.g. quick = true"]),
    ("workers-string", FN + 'workers = "2"\n', ["expected [sweep] workers to be an integer, got '2'; write e.g. workers = 2"]),
    ("workers-negative", FN + "workers = -1\n", ["[sweep] workers from 1 to 100000 (or 0: every CPU), got -1"]),
    ("threads-zero", FN + "threads = 0\n", ["[sweep] threads from 1 to 1024", "got 0"]),
    ("store-int", FN + "store = 3\n", ["expected [sweep] store to be a string, got 3"]),
    ("backend-unknown", FN + 'backend = "dask"\n', ["expected [sweep] backend one of local, ray, got 'dask'"]),
    ("address-without-ray", FN + 'address = "10.0.0.1:6379"\n', ['[sweep] address only with backend = "ray"']),
    ("grid-empty", FN + "[grid]\nwidth = []\n", ["expected [grid] width a non-empty list", "got []"]),
    ("grid-not-a-list", FN + "[grid]\nwidth = 3\n", ["expected [grid] width to be a list of values, got 3; write e.g. width = [3]"]),
    ("grid-not-a-table", "grid = 3\n" + FN, ["expected [grid] to be a table, got 3"]),
    ("grid-key-seed", FN + "[grid]\nseed = [1]\n", ["setting 'seed' a Python identifier other than 'seed'"]),
    ("grid-key-not-identifier", FN + '[grid]\n"a-b" = [1]\n', ["setting 'a-b' a Python identifier"]),
    ("unknown-sweep-key", FN + "seed = 3\n", ["unknown key 'seed' in [sweep] of a function sweep", SWEEP_KEYS]),
    ("unknown-table", FN + "[setings]\nx = 1\n", ["unknown table or key 'setings' for a function sweep",
                                                 "valid tables: [sweep], [settings], [grid]"]),
    ("two-kinds", FN + 'experiment = "spurious-minima"\n', ["expected exactly one of [sweep] experiment, function, plane, "
                                                            "got experiment and function"]),
    ("no-kind", "[sweep]\nseeds = 2\n", ["expected exactly one of [sweep] experiment, function, plane, got none"]),
    ("no-sweep-table", "[grid]\nx = [1]\n", ["expected a [sweep] table with one of experiment, function, plane, got none"]),
    ("spec-without-function", '[sweep]\nfunction = "study.py"\n', ["expected [sweep] function as FILE.py:FUNCTION, got 'study.py'"]),
    ("spec-bad-name", '[sweep]\nfunction = "study.py:1x"\n', ["expected [sweep] function as FILE.py:FUNCTION, got 'study.py:1x'"]),
    ("missing-file", '[sweep]\nfunction = "nowhere.py:analyse"\n', ["[sweep] function to name an existing Python file",
                                                                     "nowhere.py"]),
    ("missing-factory", FN + 'factory = "nowhere.py:make"\n', ["[sweep] factory to name an existing Python file"]),
    ("plane-steps", PLANE + "steps = 1\n", ["[sweep] steps from 2 to 100000", "got 1"]),
    ("plane-span-zero", PLANE + "span = 0\n", ["[sweep] span a finite number > 0", "got 0"]),
    ("plane-span-negative", PLANE + "span = -1.5\n", ["[sweep] span a finite number > 0", "got -1.5"]),
    ("plane-span-nan", PLANE + "span = nan\n", ["[sweep] span a finite number > 0", "got nan"]),
    ("plane-tile-rows-over-steps", PLANE + "steps = 5\ntile_rows = 6\n", ["[sweep] tile_rows from 1 to steps = 5", "got 6"]),
    ("plane-tile-rows-zero", PLANE + "tile_rows = 0\n", ["[sweep] tile_rows from 1 to steps = 41", "got 0"]),
    ("plane-with-grid", PLANE + "[grid]\nx = [1]\n", ["unknown table or key 'grid' for a plane sweep; valid tables: [sweep]"]),
    ("plane-with-seeds", PLANE + "seeds = 2\n", ["unknown key 'seeds' in [sweep] of a plane sweep; valid keys: plane, steps"]),
    ("toml-syntax", FN + "seeds = [1, 2\n", ["expected study.toml to be TOML, got a syntax error: "]),
]


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "study.py").write_text(STUDY)
    return tmp_path


def _one_line(err: BaseException, parts: list[str]) -> str:
    message = str(err)
    assert "\n" not in message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message


@pytest.mark.parametrize(("text", "parts"), [c[1:] for c in CONFIGS], ids=[c[0] for c in CONFIGS])
def test_bad_config_is_one_line_naming_the_key(folder, text, parts):
    (folder / "study.toml").write_text(text)
    with pytest.raises(LosslabError) as err:
        sweep.load_config(folder / "study.toml")
    _one_line(err.value, parts)
    assert not (folder / "study.sqlite").exists()


def test_config_file_itself(folder):
    for path, parts in [(folder / "none.toml", ["got '", "none.toml' (no such file)"]), (folder, ["(a folder)"])]:
        with pytest.raises(LosslabError) as err:
            sweep.load_config(path)
        _one_line(err.value, ["expected a sweep config file (TOML)", *parts])
    (folder / "latin.toml").write_bytes(b'[sweep]\nfunction = "caf\xe9.py:f"\n')
    with pytest.raises(LosslabError) as err:
        sweep.load_config(folder / "latin.toml")
    _one_line(err.value, ["expected a readable UTF-8 TOML file", "UnicodeDecodeError"])


def _junk(folder: Path) -> Path:
    (folder / "junk.sqlite").write_text("not a database " * 20)
    return folder / "junk.sqlite"


def _afile(folder: Path) -> Path:
    (folder / "afile").write_text("a file, not a folder")
    return folder / "afile" / "x.sqlite"


def _a_folder(folder: Path) -> Path:
    (folder / "adir.sqlite").mkdir()
    return folder / "adir.sqlite"


# (id, run()'s keyword arguments given the folder, the parts of the one line)
RUNS = [
    ("store-is-a-folder", lambda f: {"store": _a_folder(f)}, ["expected the store to be a file, got a folder", "--store PATH"]),
    ("store-under-a-file", lambda f: {"store": _afile(f)}, ["expected the store's folder to exist", "no folder", "afile"]),
    ("store-missing-folder", lambda f: {"store": f / "nodir" / "x.sqlite"}, ["expected the store's folder to exist"]),
    ("store-unwritable", lambda f: {"store": Path("/proc/losslab-sweep-test.sqlite")},
     ["expected a writable store, got '/proc/losslab-sweep-test.sqlite'", "give another store"]),
    ("store-not-sqlite", lambda f: {"store": _junk(f)}, ["expected a writable SQLite store", "file is not a database"]),
    ("ray-unreachable", lambda f: {"backend": "ray", "address": "127.0.0.1:1"},
     ["expected a Ray cluster at 127.0.0.1:1, got no answer within", "ray start --head"]),
    ("ray-address-format", lambda f: {"backend": "ray", "address": "nohost"}, ["expected a Ray address HOST:PORT", "got 'nohost'"]),
    ("address-without-ray", lambda f: {"address": "127.0.0.1:1"}, ["expected an address only with the ray backend", "--backend ray"]),
    ("backend-unknown", lambda f: {"backend": "dask"}, ["unknown backend 'dask': expected one of 'local', 'ray'"]),
    ("workers-negative", lambda f: {"workers": -1}, ["expected workers as an integer from 1 to 100000 (or 0: every CPU), got -1"]),
    ("workers-float", lambda f: {"workers": 2.7}, ["expected workers as an integer from 1 to 100000 (or 0: every CPU), got 2.7"]),
    ("workers-above-cpus", lambda f: {"workers": 1000}, ["expected at most", "local workers (4 per CPU of this machine), got 1000"]),
    ("store-not-a-path", lambda f: {"store": 5}, ["expected store as a string, got int 5"]),
]


@pytest.mark.parametrize(("kwargs", "parts"), [r[1:] for r in RUNS], ids=[r[0] for r in RUNS])
def test_bad_store_or_backend_is_one_line_before_any_task(folder, kwargs, parts):
    (folder / "study.toml").write_text(FN)
    with pytest.raises(LosslabError) as err:
        sweep.run(folder / "study.toml", **kwargs(folder))
    _one_line(err.value, parts)


@pytest.mark.parametrize(("spec", "parts"), [
    ('function = "study.py:NOT_A_FUNCTION"', ["expected [sweep] function study.py:NOT_A_FUNCTION to be a function", "got int"]),
    ('function = "study.py:analyse"\nfactory = "study.py:broken_factory"',
     ["expected [sweep] factory study.py:broken_factory() to build the data, got ValueError: no data today (study.py, line 10)"]),
    ('function = "broken.py:analyse"', ["broken.py to import, got SyntaxError: "]),
], ids=["not-a-function", "factory-raises", "syntax-error"])
def test_bad_user_code_is_one_line_naming_the_spec(folder, spec, parts):
    (folder / "broken.py").write_text("def analyse(:\n")
    (folder / "study.toml").write_text(f"[sweep]\n{spec}\n")
    with pytest.raises(LosslabError) as err:
        sweep.run(folder / "study.toml")
    _one_line(err.value, parts)


CLI = [c for c in CONFIGS if c[0] in ("unknown-experiment", "unknown-setting-grid", "seeds-string", "grid-empty", "toml-syntax")]


@pytest.mark.parametrize(("text", "parts"), [c[1:] for c in CLI], ids=[c[0] for c in CLI])
def test_cli_bad_config_is_one_line_on_stderr_and_exit_code_2(folder, text, parts):
    (folder / "study.toml").write_text(text)
    result = CliRunner().invoke(app, ["sweep", str(folder / "study.toml")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: study.toml: ") or line.startswith("error: expected study.toml")
    _one_line(line, parts)


def test_cli_in_a_real_process_unwritable_store(folder):
    (folder / "study.toml").write_text(FN)
    result = subprocess.run([sys.executable, "-m", "losslab.cli", "sweep", str(folder / "study.toml"), "--store", "/proc/x.sqlite"],
                            env={**os.environ, "PYTHONPATH": SRC}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: expected a writable store, got '/proc/x.sqlite' (")
