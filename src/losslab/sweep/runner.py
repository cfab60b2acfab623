"""Run a sweep: its tasks on a backend, each finished task written to the store, failures retried once.

The driver (this process) is the only writer of the store; workers return outcomes. A task that
raises is recorded as ``failed`` with its error and submitted once more; the sweep goes on. After a
kill, the same call runs only what is missing (see :mod:`losslab.sweep.store`).
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .._checks import LosslabError, choice
from .._user_code import import_user_file, short_error, where_in
from .backends import LocalPool, RayPool, check_ray_address, cpu_count
from .config import BACKENDS, MAX_WORKERS, SweepConfig, load_config
from .store import Store
from .tasks import Payload, Task, make_tasks, seed_globals

__all__ = ["SweepRun", "run"]

ATTEMPTS = 2  # a failing task is tried twice in all


@dataclass(frozen=True)
class SweepRun:
    """What one call of :func:`run` did.

    Attributes:
        store: the SQLite file.
        total: tasks in the config.
        skipped: tasks already finished in the store before this call (done, or failed twice).
        done: tasks that finished in this call; failed: tasks that failed twice in this call.
        failed_before: tasks that had failed twice before this call and were not run again (``retry_failed`` runs them).
        seconds: wall-clock time of this call (s); backend, workers: where the tasks ran.
    """

    store: Path
    total: int
    skipped: int
    done: int
    failed: int
    seconds: float
    backend: str
    workers: int
    failed_before: int = 0


def _function_parts(config: SweepConfig) -> tuple[tuple[str, ...], dict]:
    """Import the user's files once each (the same module objects for the factory and the analysis); call the factory."""
    specs = [("[sweep] function", config.target), *([("[sweep] factory", config.factory)] if config.factory else [])]
    files = tuple(dict.fromkeys(s.rpartition(":")[0] for _, s in specs))
    modules = {f: import_user_file(f"[sweep] in {Path(f).name}", Path(f)) for f in files}
    for option, spec in specs:
        file, _, name = spec.rpartition(":")
        if not callable(getattr(modules[file], name, None)):
            raise LosslabError(f"expected {option} {Path(file).name}:{name} to be a function in {file}, got "
                               f"{type(getattr(modules[file], name, None)).__name__}; check the name")
    parts: dict = {}
    if config.factory:
        file, _, name = config.factory.rpartition(":")
        try:
            parts = {"data": getattr(modules[file], name)(), "has_data": True}
        except (Exception, SystemExit) as err:
            raise LosslabError(f"expected [sweep] factory {Path(file).name}:{name}() to build the data, got {short_error(err)}"
                               f"{where_in(err, Path(file))}") from None
    return files, parts


def _seeded_call(fn, seed: int):
    """``fn()`` with the global RNGs seeded by ``seed``; the caller's RNG states are restored afterwards."""
    import random

    import numpy as np
    import torch

    states = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=[]):
            seed_globals(seed)
            return fn()
    finally:
        np.random.set_state(states[0])
        random.setstate(states[1])


def plane_parts(config: SweepConfig) -> tuple[tuple[str, ...], dict]:
    """The plane's problem, centre, directions (2, p) and coordinates (steps,), as the sweep evaluates them."""
    import torch

    from ..landscape.slices import directions_cosine, plane_coordinates, plane_directions
    from ..problem import Problem

    file, _, name = config.target.rpartition(":")
    fn = getattr(import_user_file("[sweep] plane", Path(file)), name, None)
    if not callable(fn):
        raise LosslabError(f"expected [sweep] plane {Path(file).name}:{name} to be a function returning a losslab Problem, got "
                           f"{type(fn).__name__}; check the name")
    seed = config.seeds[0]
    try:
        made = _seeded_call(fn, seed)  # an unseeded initialisation in problem() is the same at every call (resume, plane_slice)
    except (Exception, SystemExit) as err:
        raise LosslabError(f"expected [sweep] plane {Path(file).name}:{name}() to return a losslab Problem, got {short_error(err)}"
                           f"{where_in(err, Path(file))}") from None
    problem, center = made if isinstance(made, tuple) and len(made) == 2 else (made, None)
    if not isinstance(problem, Problem):
        raise LosslabError(f"expected [sweep] plane {Path(file).name}:{name}() to return a losslab Problem or (Problem, center), "
                           f"got {type(made).__name__}; build it with losslab.Problem(model, data)")
    try:
        center = problem.default_theta(seed) if center is None else problem.as_theta(center, "center")
        d1, d2 = plane_directions(problem, center, seed)
    except LosslabError as err:
        raise LosslabError(f"[sweep] plane {Path(file).name}:{name}(): {err}") from None
    cosine = directions_cosine(d1, d2)
    if not abs(cosine) < 1 - 1e-9:
        raise LosslabError(f"expected two independent plane directions, got parallel ones (cosine {cosine:.12g}; the problem has "
                           f"{problem.n_params} parameter(s)): the plane is a line; use losslab.landscape.line")
    alphas = plane_coordinates(config.plane["steps"], config.plane["span"], problem.dtype).to(problem.device)
    return (file,), {"problem": problem, "center": center, "directions": torch.stack([d1, d2]), "coordinates": alphas}


def plane_fingerprint(parts: dict) -> str:
    """SHA-256 (16 hex digits) of a plane's centre, directions and coordinates: the points its tiles evaluate."""
    digest = hashlib.sha256()
    for key in ("center", "directions", "coordinates"):
        digest.update(parts[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def build_payload(config: SweepConfig, built: tuple | None = None) -> tuple[bytes, tuple[str, ...]]:
    """The pickled payload every worker gets, and the user files a worker imports before unpickling it (``built``: the parts)."""
    parts_of = {"experiment": lambda c: ((), {}), "function": _function_parts, "plane": plane_parts}[config.kind]
    files, parts = built if built is not None else parts_of(config)
    payload = Payload(kind=config.kind, target=config.target, quick=config.quick, files=files, threads=config.threads, **parts)
    try:
        return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL), files
    except Exception as err:  # a factory's result that cannot travel to another process
        raise LosslabError(f"expected the factory's result to be picklable (it is sent to each worker), got {short_error(err)}; "
                           "return tensors, arrays, dicts, a Dataset or a losslab Problem, not open files, locks or lambdas") from None


def _progress(enabled: bool, total: int, skipped: int):
    """A rich progress bar: done / total, failed, ETA (or a no-op)."""
    if not enabled:
        return contextlib.nullcontext(lambda done, failed: None)

    @contextlib.contextmanager
    def bar():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = (TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("failed {task.fields[failed]}"),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
        with Progress(*columns, transient=True, console=Console(stderr=True)) as progress:  # stdout stays the result's
            bar_id = progress.add_task("sweep", total=total, completed=skipped, failed=0)
            yield lambda done, failed: progress.update(bar_id, completed=skipped + done + failed, failed=failed)

    return bar()


def run(config: SweepConfig | str | Path, *, backend: str | None = None, address: str | None = None, workers: int | None = None,
        store: str | Path | None = None, retry_failed: bool = False, progress: bool = False) -> SweepRun:
    """Run the sweep of ``config`` (a TOML path or a :class:`~losslab.sweep.config.SweepConfig`), resuming its store.

    Every task without a ``done`` row (and with fewer than two failed attempts) runs on the backend;
    each finished attempt is written to the store at once. Keyword arguments override the config's.

    Args:
        config: the sweep (see :mod:`losslab.sweep.config` for the TOML format).
        backend: ``"local"`` (a process pool, no server) or ``"ray"``.
        address: a Ray cluster's address (``HOST:PORT`` or ``ray://HOST:PORT``); none starts a local Ray.
        workers: worker processes (default: every CPU, or the Ray cluster's CPUs).
        store: the SQLite file (default: the config's).
        retry_failed: run tasks that failed twice before once more (twice).
        progress: draw a rich progress bar (done / total, failed, ETA) on stderr.

    Returns:
        A :class:`SweepRun`; the rows are in the store (:func:`losslab.sweep.to_frame`).

    Raises:
        LosslabError: a bad config, an unwritable or busy store, a store of another sweep, an unreachable Ray address.
    """
    if not isinstance(config, (SweepConfig, str, Path)) or config == "":
        raise LosslabError(f"expected a sweep config file (a TOML path) or a SweepConfig, got {type(config).__name__} {config!r}; "
                           "e.g. losslab.sweep.run('study.toml')")
    for name, value, kinds in (("backend", backend, str), ("address", address, str), ("store", store, (str, Path))):
        if value is not None and not isinstance(value, kinds):
            raise LosslabError(f"expected {name} as a string, got {type(value).__name__} {value!r}; e.g. {name}='…'")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or not 0 <= workers <= MAX_WORKERS):
        raise LosslabError(f"expected workers as an integer from 1 to {MAX_WORKERS} (or 0: every CPU), got {workers!r}; e.g. workers=2")
    config = config if isinstance(config, SweepConfig) else load_config(config)
    config = replace(config, backend=choice("backend", backend, BACKENDS) if backend is not None else config.backend,
                     address=config.address if address is None else address, store=Path(store) if store is not None else config.store,
                     workers=config.workers if workers is None else workers)
    if config.address and config.backend != "ray":
        raise LosslabError(f"expected an address only with the ray backend, got --address {config.address} with backend "
                           f"{config.backend!r}; add --backend ray")
    if config.backend == "ray" and config.address:
        check_ray_address(config.address)
    if config.backend == "local" and config.workers > 4 * cpu_count():
        raise LosslabError(f"expected at most {4 * cpu_count()} local workers (4 per CPU of this machine), got {config.workers}; more "
                           "processes than CPUs only compete: lower --workers, or use --backend ray to reach other machines")
    tasks = make_tasks(config)
    start = time.perf_counter()
    with Store(config.store, config.identity(), config_text=config.text, planned=len(tasks), paths=config.paths(),
               keys=[t.key for t in tasks]) as db:
        if retry_failed:
            db.reset_failed()
        seen = db.attempts()
        todo = [t for t in tasks if t.key not in seen or (seen[t.key][0] == "failed" and seen[t.key][1] < ATTEMPTS)]
        tries = {t.key: seen.get(t.key, ("", 0))[1] for t in todo}
        built = None
        if config.kind == "plane":  # the points of the tiles done before and now must be the same
            built = plane_parts(config)
            db.check_meta("plane", plane_fingerprint(built[1]), "plane centre and directions (its problem() returned another "
                          "centre or model than when the store's tiles were computed: seed its initialisation, or return "
                          "(problem, center))")
        counts = _drive(config, db, todo, tries, progress, skipped=len(tasks) - len(todo), built=built)
    waiting = {t.key for t in todo}
    failed_before = sum(seen.get(t.key, ("", 0))[0] == "failed" and t.key not in waiting for t in tasks)
    return SweepRun(store=config.store, total=len(tasks), skipped=len(tasks) - len(todo), done=counts[0], failed=counts[1],
                    failed_before=failed_before,
                    seconds=time.perf_counter() - start, backend=config.backend, workers=counts[2])


def _drive(config: SweepConfig, db: Store, todo: list[Task], tries: dict[str, int], progress: bool, skipped: int,
           built: tuple | None) -> tuple[int, int, int]:
    if not todo:
        return 0, 0, 0
    payload, files = build_payload(config, built)
    workers = config.workers or cpu_count()
    if config.backend == "ray":
        pool = RayPool(payload, files, workers=config.workers, address=config.address)
    else:
        pool = LocalPool(payload, files, workers=min(workers, len(todo)))
    done = failed = 0
    queue = list(reversed(todo))
    finished = False
    try:
        with _progress(progress, skipped + len(todo), skipped) as update:
            while queue or pool.in_flight():
                while queue and pool.in_flight() < 2 * pool.workers:
                    pool.submit(queue.pop())
                for task, outcome in pool.finished(timeout=1.0):
                    tries[task.key] += 1
                    db.record(task, outcome, tries[task.key])
                    if not outcome.failed:
                        done += 1
                    elif tries[task.key] < ATTEMPTS:
                        queue.append(task)
                    else:
                        failed += 1
                    update(done, failed)
        finished = True
    finally:
        pool.close(now=not finished)  # interrupted (Ctrl-C, SIGTERM): stop the workers at once
    return done, failed, pool.workers
