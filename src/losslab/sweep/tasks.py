"""A sweep's tasks, what every worker holds, and how one task runs (the same code on every backend).

* :class:`Task`: one unit of work, a grid point and a seed (or a tile of plane rows), with a stable
  ``key``: the first 16 hex digits of SHA-256 of its canonical JSON. The store keys rows by it, so a
  restarted sweep recognises what is done whatever the order or the grid's growth.
* :class:`Payload`: what each worker needs for every task: the experiment's name, or the user's
  analysis spec and the factory's result, or a plane's problem, centre and directions. The driver
  builds it once, pickles it once (our own objects, between our own processes: nothing a user
  passes is unpickled) and each worker receives it once: as the process pool's initializer
  argument, or as one object in Ray's object store that every actor reads at start.
* :func:`execute`: run one task in a worker, never raising: the outcome holds the numbers as JSON
  or the error as one line. Before each task the global RNGs (torch, NumPy, random) are seeded with
  the task's seed, and torch's threads, default dtype and grad mode are reset, so a task gives the
  same numbers whichever worker, backend or order runs it. The data a factory built is shared by a
  worker's tasks: an analysis must not change it in place (its next task would see the change).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import random
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._jsonable import jsonable
from .._user_code import import_user_file, short_error
from .config import SweepConfig, canonical, experiment_overrides

__all__ = ["Outcome", "Payload", "Task", "execute", "make_tasks", "prepare_worker", "seed_globals", "task_key"]


def task_key(point: dict) -> str:
    """16 hex digits of SHA-256 of the canonical JSON of ``point`` (:func:`~losslab.sweep.config.canonical`: NaN is not "nan")."""
    return hashlib.sha256(canonical(point).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Task:
    """One task: ``settings`` (the grid point with ``[settings]``) and ``seed``, or the plane rows ``rows = (start, stop)``."""

    key: str
    index: int
    settings: dict = field(default_factory=dict)
    seed: int | None = None
    rows: tuple[int, int] | None = None


@dataclass(frozen=True)
class Outcome:
    """A finished attempt: ``numbers`` (JSON text) when ``error`` is empty, else the error in one line."""

    key: str
    numbers: str
    error: str
    seconds: float
    host: str

    @property
    def failed(self) -> bool:
        return bool(self.error)


def make_tasks(config: SweepConfig) -> list[Task]:
    """Every task of ``config``, in order: grid points (the last key fastest), each with every seed; or the plane's tiles."""
    if config.kind == "plane":
        steps, rows = config.plane["steps"], config.plane["tile_rows"]
        starts = range(0, steps, rows)
        return [Task(task_key({"rows": [a, min(a + rows, steps)]}), i, rows=(a, min(a + rows, steps))) for i, a in enumerate(starts)]
    tasks = []
    for point in config.grid_points():
        for seed in config.seeds:
            tasks.append(Task(task_key({"settings": point, "seed": seed}), len(tasks), settings=point, seed=seed))
    return tasks


@dataclass
class Payload:
    """What every worker holds: see the module docstring. ``files`` are imported before the payload is unpickled."""

    kind: str
    target: str
    quick: bool = False
    files: tuple[str, ...] = ()
    data: object = None  # the factory's result (function sweeps)
    has_data: bool = False
    problem: object = None  # plane sweeps: the Problem, the centre (p,), the directions (2, p), the coordinates (steps,)
    center: torch.Tensor | None = None
    directions: torch.Tensor | None = None
    coordinates: torch.Tensor | None = None
    threads: int = 1
    analysis: object = field(default=None, repr=False)  # bound in the worker (bind), never pickled

    def __getstate__(self) -> dict:
        return {**self.__dict__, "analysis": None}

    def bind(self, modules: dict[str, object]) -> Payload:
        """Look up the analysis in the user's modules imported in this process (the same module objects as the payload's)."""
        if self.kind == "function":
            file, _, name = self.target.rpartition(":")
            self.analysis = getattr(modules[file], name)
        return self


def seed_globals(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _experiment(payload: Payload, task: Task) -> dict:
    from ..experiments import get_experiment, run_experiment

    result = run_experiment(get_experiment(payload.target), seed=task.seed, quick=payload.quick,
                            overrides=experiment_overrides(task.settings))
    return {"settings": result.settings, "passed": result.passed, "claims": [c.to_dict() for c in result.claims],
            "numbers": result.numbers}


def _function(payload: Payload, task: Task) -> object:
    fn = payload.analysis
    out = fn(payload.data, seed=task.seed, **task.settings) if payload.has_data else fn(seed=task.seed, **task.settings)
    if not isinstance(out, dict):
        raise TypeError(f"expected {payload.target.rpartition('/')[2]} to return a dict of numbers, got {type(out).__name__}")
    return out


def _tile(payload: Payload, task: Task) -> dict:
    from ..landscape.evaluate import evaluate_combinations

    a, b = task.rows
    alphas = payload.coordinates
    A, B = torch.meshgrid(alphas[a:b], alphas, indexing="ij")
    coords = torch.stack([A.reshape(-1), B.reshape(-1)], dim=1)
    losses = evaluate_combinations(payload.problem, coords, payload.directions, payload.center).reshape(b - a, len(alphas))
    return {"rows": [a, b], "losses": losses.double().cpu().tolist()}


_RUN = {"experiment": _experiment, "function": _function, "plane": _tile}


def _where(err: BaseException, payload: Payload) -> str:
    """' (study.py, line 7)': the deepest frame in the user's files, else in losslab (so a stored error says where)."""
    frames = traceback.extract_tb(err.__traceback__)
    user = [f for f in frames if f.filename in payload.files]
    ours = [f for f in frames if f"{Path(__file__).parents[1]}" in f.filename and not f.filename.endswith("sweep/tasks.py")]
    frame = (user or ours or [None])[-1]
    return f" ({Path(frame.filename).name}, line {frame.lineno})" if frame is not None else ""


def execute(payload: Payload, task: Task) -> Outcome:
    """Run ``task`` and return its :class:`Outcome`; an exception becomes the outcome's one-line error."""
    start = time.perf_counter()
    try:
        torch.set_num_threads(payload.threads)  # torch's state as every task starts, whatever an earlier task changed
        torch.set_default_dtype(torch.float32)
        torch.set_grad_enabled(True)
        if task.seed is not None:
            seed_globals(task.seed)
        numbers = json.dumps(jsonable(_RUN[payload.kind](payload, task)), allow_nan=False)
        error = ""
    except (Exception, SystemExit) as err:  # the task's own failure: recorded, retried once, the sweep goes on
        numbers, error = "", short_error(err)[:500] + _where(err, payload)
    return Outcome(task.key, numbers, error, time.perf_counter() - start, socket.gethostname())


def prepare_worker(payload_bytes: bytes, files: tuple[str, ...]) -> Payload:
    """In a worker, once: the user's files imported, then the payload unpickled (it holds the torch threads of every task)."""
    modules = {f: import_user_file("[sweep]", Path(f)) for f in files}
    payload = pickle.loads(payload_bytes)
    torch.set_num_threads(payload.threads)
    return payload.bind(modules)
