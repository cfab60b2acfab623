"""A plane sweep (the plane of a user's problem split into tiles of grid rows) equals ``landscape.plane``.

References: :func:`losslab.landscape.plane` with ``method="grid"`` on the problem the user's file
builds, called here in the test process (the file imported with :mod:`importlib`, not the sweep's
loader); the same sweep with another number of workers; the store read with :mod:`sqlite3`.

Rounding bound. The sweep and the reference evaluate the same points with the same code, but in
batches of other sizes (a tile of ``tile_rows·steps`` points against the whole ``steps²`` grid), so a
matrix product may block its sums differently. Each loss is a mean of n non-negative squared
residuals of a small network; a reordered sum of m terms of one sign moves by at most
``(m−1)·eps·Σ`` (Higham 2002, "Accuracy and Stability of Numerical Algorithms", §4.2), and the
forward pass's inner products have at most 16 terms here (widths ≤ 16), the mean 40 terms in batches of 16.
The residuals' own error, amplified by the square, doubles it. So ``|Δ| ≤ 64·eps·max|L|`` covers every point
(the relative bound on the sum times its largest value), in float64 and float32 alike.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import textwrap

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import losslab.sweep as sweep
from losslab._checks import LosslabError
from losslab.cli import app
from losslab.landscape import load_slice, plane

LOADER_PROBLEM = """
import torch
from torch.utils.data import DataLoader, TensorDataset

from losslab import Problem
from losslab.models import Module

DTYPE = torch.{dtype}


def problem():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 3, generator=g, dtype=torch.float64).to(DTYPE)
    y = torch.sin(X.sum(1))
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).to(DTYPE)
    return Problem(Module(net), DataLoader(TensorDataset(X, y), batch_size=16), dtype=DTYPE)
"""

MLP_PROBLEM = """
import torch

from losslab import Problem
from losslab.models import MLP

DTYPE = torch.{dtype}


def problem():
    g = torch.Generator().manual_seed(2)
    X = torch.randn(30, 4, generator=g, dtype=torch.float64).to(DTYPE)
    y = torch.randn(30, generator=g, dtype=torch.float64).to(DTYPE)
    prob = Problem(MLP([4, 16, 1], activation="tanh"), X, y, dtype=DTYPE)
    return prob, prob.default_theta(3) * 1.5
"""

NOT_A_PROBLEM = """
def problem():
    return 3
"""

PROBLEMS = {"loader": LOADER_PROBLEM, "mlp": MLP_PROBLEM}


def _write(folder, kind, dtype, *, steps, tile_rows, span=0.8, seed=4, workers=1):
    (folder / "study.py").write_text(PROBLEMS[kind].format(dtype=dtype))
    config = folder / "plane.toml"
    config.write_text(textwrap.dedent(f"""
        [sweep]
        plane = "study.py:problem"
        steps = {steps}
        span = {span}
        seed = {seed}
        tile_rows = {tile_rows}
        workers = {workers}
    """))
    return config


def _user_problem(path):
    """The (problem, center) of the user's file, imported here independently of the sweep's loader."""
    spec = importlib.util.spec_from_file_location(f"plane_reference_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    made = module.problem()
    return made if isinstance(made, tuple) else (made, made.default_theta(0))


def _reference(folder, *, steps, span, seed):
    problem, center = _user_problem(folder / "study.py")
    if not isinstance(center, torch.Tensor):
        center = problem.as_theta(center)
    return plane(problem, center, steps=steps, span=span, seed=seed, method="grid")


def _close(got, want):
    eps = torch.finfo(want.losses.dtype).eps
    bound = 64 * eps * float(want.losses.abs().max())
    gap = float((got.losses.double() - want.losses.double()).abs().max())
    assert gap <= bound, f"tiled plane differs by {gap:.3g} > 64·eps·max|L| = {bound:.3g}"


CASES = [  # (problem, dtype, steps, tile_rows): one row per tile, tiles of 3, one tile; odd and even steps
    ("loader", "float64", 7, 1),
    ("loader", "float64", 7, 3),
    ("loader", "float64", 6, 6),
    ("loader", "float32", 6, 4),
    ("mlp", "float32", 7, 3),
    ("mlp", "float64", 6, 1),
]


@pytest.mark.parametrize(("kind", "dtype", "steps", "tile_rows"), CASES)
def test_the_tiled_plane_equals_landscape_plane(tmp_path, kind, dtype, steps, tile_rows):
    config = _write(tmp_path, kind, dtype, steps=steps, tile_rows=tile_rows)
    result = sweep.run(config)
    assert (result.total, result.done, result.failed) == (-(-steps // tile_rows), -(-steps // tile_rows), 0)
    got = sweep.plane_slice(tmp_path / "plane.sqlite")
    want = _reference(tmp_path, steps=steps, span=0.8, seed=4)
    assert got.losses.dtype == want.losses.dtype == getattr(torch, dtype)
    for name in ("alphas", "betas", "center", "d1", "d2"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name
    assert got.losses.shape == (steps, steps) and got.seed == want.seed == 4 and got.method == "grid"
    _close(got, want)


def test_the_tiles_do_not_depend_on_the_workers(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for folder, workers in ((one, 1), (two, 2)):
        folder.mkdir()
        sweep.run(_write(folder, "loader", "float32", steps=8, tile_rows=2, workers=workers))
    rows = [sqlite3.connect(f / "plane.sqlite").execute("SELECT key, status, numbers FROM tasks ORDER BY key").fetchall()
            for f in (one, two)]
    assert len(rows[0]) == 4 and all(r[1] == "done" for r in rows[0])
    assert rows[0] == rows[1]  # the numbers' JSON text, bit for bit
    a, b = sweep.plane_slice(one / "plane.sqlite"), sweep.plane_slice(two / "plane.sqlite")
    assert torch.equal(a.losses, b.losses)


def test_a_plane_slice_needs_every_tile(tmp_path):
    config = _write(tmp_path, "mlp", "float64", steps=5, tile_rows=2)
    sweep.run(config)
    store = tmp_path / "plane.sqlite"
    with sqlite3.connect(store) as con:
        con.execute("DELETE FROM tasks WHERE idx = 1")
    with pytest.raises(LosslabError, match=r"expected every tile of the plane .* got 1 missing \(rows \(2, 4\)") as err:
        sweep.plane_slice(store)
    assert "\n" not in str(err.value)
    again = sweep.run(config)  # the missing tile alone runs again, and the plane is whole
    assert (again.skipped, again.done) == (2, 1)
    _close(sweep.plane_slice(store), _reference(tmp_path, steps=5, span=0.8, seed=4))


def test_a_plane_slice_of_another_sweep_is_refused(tmp_path):
    (tmp_path / "study.py").write_text("def analyse(*, seed):\n    return {'x': seed}\n")
    (tmp_path / "f.toml").write_text('[sweep]\nfunction = "study.py:analyse"\nseeds = 2\nworkers = 1\n')
    sweep.run(tmp_path / "f.toml")
    with pytest.raises(LosslabError, match="expected the store of a plane sweep, got one of a 'function' sweep") as err:
        sweep.plane_slice(tmp_path / "f.sqlite")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("text", "message"), [
    (NOT_A_PROBLEM, "expected [sweep] plane study.py:problem() to return a losslab Problem or (Problem, center), got int"),
    ("def problem():\n    raise ValueError('no data here')\n", "got ValueError: no data here (study.py, line 2)"),
    ("x = 1\n", "expected [sweep] plane study.py:problem to be a function"),
])
def test_a_bad_plane_problem_is_one_line(tmp_path, text, message):
    config = _write(tmp_path, "mlp", "float64", steps=3, tile_rows=1)
    (tmp_path / "study.py").write_text(text)
    with pytest.raises(LosslabError) as err:
        sweep.run(config)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_cli_writes_the_plane_as_npz_and_png(tmp_path):
    config = _write(tmp_path, "loader", "float64", steps=5, tile_rows=2)
    result = CliRunner().invoke(app, ["sweep", str(config), "--quiet"])
    assert result.exit_code == 0, result.stdout + result.stderr
    data, png = tmp_path / "plane.npz", tmp_path / "plane.png"
    assert data.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = load_slice(data)
    want = _reference(tmp_path, steps=5, span=0.8, seed=4)
    for name in ("alphas", "betas", "center", "d1", "d2"):
        assert np.array_equal(np.asarray(getattr(saved, name)), want.__getattribute__(name).numpy()), name
    assert torch.equal(torch.as_tensor(saved.losses), sweep.plane_slice(tmp_path / "plane.sqlite").losses)
    _close(saved, want)
    rerun = CliRunner().invoke(app, ["sweep", str(config), "--json"])  # finished: nothing runs, the files are written again
    assert rerun.exit_code == 0, rerun.stderr
    assert '"skipped": 3' in rerun.stdout and str(data) in rerun.stdout

