"""The Ray backend: the same rows as the local pool, data shipped once per worker, failures recorded and retried.

One local Ray (2 CPUs) serves the whole module; the sweeps use it as it is and leave it running.
References: the local backend's store (the rows' key, settings, seed, status, numbers JSON text,
error and attempts, bit for bit), the user's analysis called here with the task's seed, log files
the user's objects write when they are unpickled or run (one line per event, with the process id).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import ray
import torch
from typer.testing import CliRunner

import losslab
import losslab.sweep as sweep
from losslab._checks import LosslabError
from losslab.cli import app

STUDY = """
import os
import torch
from torch.utils.data import DataLoader, Dataset

import losslab
from losslab import Problem
from losslab.models import MLP

SHIPPED = {shipped!r}  # one line per unpickling of a user object: the process id
RAN = {ran!r}  # one line per task attempt: the process id and the task


def _log(path, text):
    with open(path, "a") as f:
        f.write(text + "\\n")


class Shipped:
    def __init__(self, X, y):
        self.X, self.y = X, y

    def __setstate__(self, state):
        self.__dict__.update(state)
        _log(SHIPPED, f"{{os.getpid()}}")


def make_data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(32, 3, generator=g, dtype=torch.float64)
    return Shipped(X, torch.tanh(X @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)))


def analyse(data, *, seed, lr, fail=""):
    _log(RAN, f"{{os.getpid()}} {{seed}} {{lr}} {{fail}}")
    if fail == "raise":
        raise ValueError(f"lr {{lr}} refused for seed {{seed}}")
    if fail == "die":
        os._exit(3)
    W, v = torch.randn(3, 8, dtype=torch.float64), torch.randn(8, dtype=torch.float64) / 8  # the task's seeded RNG
    for _ in range(50):
        W.requires_grad_(True), v.requires_grad_(True)
        loss = ((torch.tanh(data.X @ W) @ v - data.y) ** 2).mean()
        gW, gv = torch.autograd.grad(loss, (W, v))
        W, v = (W - lr * gW).detach(), (v - lr * gv).detach()
    return {{"loss": float(loss.detach()), "v": v.tolist(), "losslab": losslab.__file__}}


class Points(Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(1)
        self.X = torch.randn(24, 2, generator=g, dtype=torch.float64)
        self.y = torch.sin(3 * self.X[:, 0])

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.X[i], self.y[i]

    def __setstate__(self, state):
        self.__dict__.update(state)
        _log(SHIPPED, f"{{os.getpid()}}")


def problem():
    return Problem(MLP([2, 6, 1], activation="tanh"), DataLoader(Points(), batch_size=10))
"""

ROWS = "SELECT key, idx, settings, seed, status, numbers, error, attempts FROM tasks ORDER BY key"


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def study(tmp_path):
    (tmp_path / "study.py").write_text(STUDY.format(shipped=str(tmp_path / "shipped.log"), ran=str(tmp_path / "ran.log")))
    return tmp_path


def _config(folder, name, body):
    path = folder / f"{name}.toml"
    path.write_text(textwrap.dedent(body))
    return path


def _rows(store):
    with sqlite3.connect(store) as con:
        return con.execute(ROWS).fetchall()


def _lines(path):
    return path.read_text().splitlines() if path.is_file() else []


def _both(folder, config, **kw):
    """The config's sweep on the local pool and on Ray (2 workers each): their runs and rows, and the shipping log of each."""
    out = {}
    for backend in ("local", "ray"):
        (folder / "shipped.log").unlink(missing_ok=True)
        store = folder / f"{backend}.sqlite"
        result = sweep.run(config, backend=backend, workers=2, store=store, **kw)
        assert (result.backend, result.workers) == (backend, 2)
        out[backend] = (result, _rows(store), _lines(folder / "shipped.log"))
    assert ray.is_initialized()  # an already-initialised Ray is used as it is, not shut down
    return out


def _shipped_once(lines, ran_pids):
    """One unpickling per worker process: no pid twice, at most 2 workers, and every process that ran a task is one of them."""
    pids = [int(p) for p in lines]
    assert len(pids) == len(set(pids)) and 1 <= len(pids) <= 2, pids
    assert os.getpid() not in pids  # the driver builds the payload, it never unpickles it
    assert set(ran_pids) <= set(pids), (ran_pids, pids)


def test_an_experiment_sweep_on_ray_equals_the_local_one(tmp_path, local_ray):
    config = _config(tmp_path, "exp", """
        [sweep]
        experiment = "bias-variance"
        quick = true
        seeds = 2
        [grid]
        draws = [20, 30]
    """)
    runs = _both(tmp_path, config)
    local, on_ray = runs["local"][1], runs["ray"][1]
    assert len(local) == 4 and all(r[4] == "done" and r[7] == 1 for r in local)
    assert on_ray == local
    assert sorted((r[3], r[2]) for r in local) == [(s, f'{{"draws": {d}}}') for s in (0, 1) for d in (20, 30)]


def test_a_function_sweep_on_ray_equals_the_local_one_and_ships_its_data_once_per_worker(study, local_ray):
    config = _config(study, "fn", """
        [sweep]
        function = "study.py:analyse"
        factory = "study.py:make_data"
        seeds = 10
        [grid]
        lr = [0.05, 0.2]
    """)
    runs = _both(study, config)
    local, on_ray = runs["local"][1], runs["ray"][1]
    assert len(local) == 20 and all(r[4] == "done" for r in local)
    assert on_ray == local
    ran = [line.split() for line in _lines(study / "ran.log")]
    assert len(ran) == 40  # 20 tasks on each backend, each run once
    local_pids, ray_pids = {int(r[0]) for r in ran[:20]}, {int(r[0]) for r in ran[20:]}
    _shipped_once(runs["local"][2], local_pids)
    _shipped_once(runs["ray"][2], ray_pids)
    assert local_pids.isdisjoint(ray_pids)
    # the numbers are the analysis's own, called here with the task's seed, in the worktree's losslab
    module = _import(study / "study.py")
    data = module.make_data()
    for _, _, settings, seed, _, numbers, _, _ in local[:6]:
        torch.manual_seed(seed)
        want = module.analyse(data, seed=seed, **json.loads(settings))
        assert json.loads(numbers) == {**want, "losslab": losslab.__file__}


def test_a_plane_sweep_on_ray_equals_the_local_one_and_ships_its_problem_once_per_worker(study, local_ray):
    config = _config(study, "plane", """
        [sweep]
        plane = "study.py:problem"
        steps = 6
        span = 0.5
        tile_rows = 1
    """)
    runs = _both(study, config)
    local, on_ray = runs["local"][1], runs["ray"][1]
    assert len(local) == 6 and all(r[4] == "done" for r in local)
    assert on_ray == local
    for backend in ("local", "ray"):
        _shipped_once(runs[backend][2], set())
    assert torch.equal(sweep.plane_slice(study / "ray.sqlite").losses, sweep.plane_slice(study / "local.sqlite").losses)


def test_a_task_that_raises_is_recorded_and_retried_once_on_ray_as_on_local(study, local_ray):
    config = _config(study, "fail", """
        [sweep]
        function = "study.py:analyse"
        factory = "study.py:make_data"
        seeds = 2
        [grid]
        lr = [0.1]
        fail = ["", "raise"]
    """)
    runs = _both(study, config)
    local, on_ray = runs["local"][1], runs["ray"][1]
    assert on_ray == local
    assert (runs["ray"][0].done, runs["ray"][0].failed) == (2, 2)
    failed = [r for r in local if r[4] == "failed"]
    assert sorted(r[6] for r in failed) == [f"ValueError: lr 0.1 refused for seed {s}" for s in (0, 1)]
    assert all(r[7] == 2 and r[5] is None for r in failed)
    ran = [line.split()[1:] for line in _lines(study / "ran.log")]
    assert sorted(ran) == sorted(2 * [["0", "0.1"], ["1", "0.1"]] + 4 * [["0", "0.1", "raise"], ["1", "0.1", "raise"]])


@pytest.mark.parametrize(("backend", "errors"), [("ray", "actor"), ("local", "BrokenProcessPool")])
def test_a_worker_that_dies_fails_its_task_alone_and_the_sweep_goes_on(study, local_ray, backend, errors):
    config = _config(study, "die", """
        [sweep]
        function = "study.py:analyse"
        factory = "study.py:make_data"
        seeds = 2
        [grid]
        lr = [0.1]
        fail = ["die", ""]
    """)
    result = sweep.run(config, backend=backend, workers=2)  # Ray: the actor dies and a new one replaces it
    assert (result.total, result.done, result.failed) == (4, 2, 2)
    rows = _rows(study / "die.sqlite")
    dead = [r for r in rows if json.loads(r[2])["fail"] == "die"]
    names = _actor_errors() if errors == "actor" else {errors}
    assert len(dead) == 2 and all(r[4] == "failed" and r[7] == 2 for r in dead)
    assert all(r[6].split(":")[0] in names and "died" in r[6] for r in dead), [r[6] for r in dead]
    alive = [r for r in rows if r not in dead]
    assert len(alive) == 2 and all(r[4] == "done" and r[7] == 1 for r in alive)  # the tasks beside it are never charged
    deaths = [r[0] for r in (line.split() for line in _lines(study / "ran.log")) if r[-1] == "die"]
    assert len(set(deaths)) == len(deaths)  # each death in its own process, the next run in a new one
    # Ray: each dying task tried twice; local: also rerun uncharged when it broke the pool beside other tasks
    assert len(deaths) == 4 if backend == "ray" else len(deaths) >= 4


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_a_worker_that_cannot_start_fails_its_tasks_with_the_reason(tmp_path, local_ray, backend):
    (tmp_path / "study.py").write_text(f"import os\nif os.getpid() != {os.getpid()}:\n    raise RuntimeError('only in the driver')\n"
                                       "def analyse(*, seed):\n    return {'x': seed}\n")
    config = _config(tmp_path, "f", '[sweep]\nfunction = "study.py:analyse"\nseeds = 3\n')
    result = sweep.run(config, backend=backend, workers=2)
    assert (result.done, result.failed) == (0, 3)
    rows = _rows(tmp_path / "f.sqlite")
    assert [(r[4], r[7]) for r in rows] == 3 * [("failed", 2)]
    assert {r[6] for r in rows} == {f"the worker could not start: LosslabError: expected [sweep] {tmp_path / 'study.py'} to import, "
                                    "got RuntimeError: only in the driver (study.py, line 3)"}


def test_the_ray_backend_starts_its_own_ray_on_every_cpu_and_stops_it(tmp_path):
    config = _function_config(tmp_path)  # no address, no workers: a local Ray with every CPU, shut down at the end
    code = (f"import ray, losslab.sweep as s; r = s.run({str(config)!r}, backend='ray'); "
            "print(r.done, r.total, r.workers, ray.cluster_resources() if ray.is_initialized() else 'stopped')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(losslab.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    done, total, workers, after = out.stdout.split()[-4:]
    assert (done, total, after) == ("2", "2", "stopped") and int(workers) >= 1
    assert [json.loads(r[5])["x"] for r in sorted(_rows(tmp_path / "f.sqlite"), key=lambda r: r[3])] == [0, 1]


def _actor_errors():
    found, todo = set(), [ray.exceptions.RayActorError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo += cls.__subclasses__()
    return found


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _function_config(folder):
    (folder / "study.py").write_text("def analyse(*, seed):\n    return {'x': seed}\n")
    return _config(folder, "f", '[sweep]\nfunction = "study.py:analyse"\nseeds = 2\n')


@pytest.mark.parametrize(("address", "message"), [
    ("127.0.0.1:{port}", "expected a Ray cluster at 127.0.0.1:{port}, got no answer"),
    ("ray://127.0.0.1:{port}", "expected a Ray cluster at ray://127.0.0.1:{port}, got no answer"),
    ("nonsense", "expected a Ray address HOST:PORT (e.g. 10.0.0.1:6379 or ray://10.0.0.1:10001), got 'nonsense'"),
    ("127.0.0.1:port", "expected a Ray address HOST:PORT (e.g. 10.0.0.1:6379 or ray://10.0.0.1:10001), got '127.0.0.1:port'"),
    (":6379", "expected a Ray address HOST:PORT (e.g. 10.0.0.1:6379 or ray://10.0.0.1:10001), got ':6379'"),
])
def test_an_unreachable_or_malformed_ray_address_is_one_line(tmp_path, address, message):
    port = _free_port()
    config = _function_config(tmp_path)
    with pytest.raises(LosslabError) as err:
        sweep.run(config, backend="ray", address=address.format(port=port))
    assert message.format(port=port) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "f.sqlite").exists()  # refused before the store is opened
    result = CliRunner().invoke(app, ["sweep", str(config), "--backend", "ray", "--address", address.format(port=port)])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0] == f"error: {err.value}", result.stderr


def test_the_ray_backend_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    config = _function_config(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as when it is not installed
    with pytest.raises(LosslabError, match=r"expected the ray package for --backend ray, got it not installed; "
                                           r"pip install 'losslab\[ray\]'$"):
        sweep.run(config, backend="ray")
    result = CliRunner().invoke(app, ["sweep", str(config), "--backend", "ray"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "pip install 'losslab[ray]'" in result.stderr


def _import(path):
    spec = importlib.util.spec_from_file_location("ray_test_study", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

