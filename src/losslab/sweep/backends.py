"""Where tasks run: a local process pool (the default, no server) or a Ray cluster. One interface, one worker code path.

Both backends start ``workers`` long-lived workers; each receives the pickled :class:`~losslab.sweep.tasks.Payload`
once and turns it into its state with :func:`~losslab.sweep.tasks.prepare_worker`, then runs task after
task with :func:`~losslab.sweep.tasks.execute`. So the numbers of a task do not depend on the backend.
A worker that cannot start (the user's file does not import there) stays up and fails each of its
tasks with that error, so the cause is in the store rather than a dead worker.

* ``local``: :class:`concurrent.futures.ProcessPoolExecutor` with the ``spawn`` start method (a
  clean interpreter, no inherited locks or torch threads); the payload is the initializer's
  argument, sent once per worker process. A worker that dies (killed, out of memory) breaks the
  pool, and which of the tasks in flight killed it is unknown: a new pool starts and runs them one
  at a time, so that only a task that breaks the pool alone is reported failed (its neighbours are
  not charged an attempt).
* ``ray``: one actor per worker (``num_cpus=1``) built from an ``ObjectRef`` of the payload, put once
  in Ray's object store, so every node fetches it once and every actor reads it once (Moritz et al.
  2018, "Ray: A Distributed Framework for Emerging AI Applications", §4.2.3 on the object store).
  Without an address a local Ray starts with ``num_cpus=workers`` and stops at the end; an already
  initialised Ray (``ray.init(...)`` by the caller) is used as it is. An actor that dies (its node
  lost) fails its task, which is retried on a new actor.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import socket
from collections.abc import Iterator

from .._checks import LosslabError
from .._user_code import short_error
from .tasks import Outcome, Payload, Task, execute, prepare_worker

__all__ = ["LocalPool", "RayPool", "check_ray_address", "cpu_count"]

_STATE = None  # the worker process's Payload, or why it could not start (local pool)


def _start_worker(payload_bytes: bytes, files: tuple[str, ...]) -> Payload | str:
    """:func:`prepare_worker`, or its error in one line (then every task of this worker fails with it)."""
    try:
        return prepare_worker(payload_bytes, files)
    except (Exception, SystemExit) as err:
        return f"the worker could not start: {short_error(err)}"[:500]


def _execute(state: Payload | str, task: Task) -> Outcome:
    return _lost(task, state) if isinstance(state, str) else execute(state, task)


def cpu_count() -> int:
    """CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _die_with_parent(parent: int) -> None:
    try:  # Linux: a worker gets SIGKILL when the driver dies, so no orphan keeps running (prctl PR_SET_PDEATHSIG)
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the driver died before the prctl (while this worker imported): nobody will signal it
        os._exit(1)


def _init_local(parent: int, payload_bytes: bytes, files: tuple[str, ...]) -> None:
    global _STATE
    _die_with_parent(parent)
    os.dup2(2, 1)  # what the user's code prints goes to stderr: the driver's stdout (e.g. --json) stays its own
    _STATE = _start_worker(payload_bytes, files)


def _run_local(task: Task) -> Outcome:
    return _execute(_STATE, task)


def _lost(task: Task, why: str) -> Outcome:
    return Outcome(task.key, "", why, 0.0, socket.gethostname())


class LocalPool:
    """``workers`` spawned processes, each holding the payload (module docstring)."""

    name = "local"

    def __init__(self, payload_bytes: bytes, files: tuple[str, ...], *, workers: int) -> None:
        self.workers = workers
        self._args = (payload_bytes, files)
        self._futures: dict[cf.Future, Task] = {}
        self._suspects: list[Task] = []  # in flight when a worker died: run one at a time to find the one that kills
        self._held: list[Task] = []  # submitted while the suspects run alone
        self._unsent: list[Task] = []  # refused by a pool that broke since the last look (they never ran)
        self._alone = False
        self._start()

    def _start(self) -> None:
        self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_init_local, initargs=(os.getpid(), *self._args))

    def _submit(self, task: Task) -> None:
        try:
            self._futures[self._pool.submit(_run_local, task)] = task
        except cf.process.BrokenProcessPool:  # a worker died since the last look; its task's future tells which
            self._unsent.append(task)

    def _restart(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._start()
        unsent, self._unsent = self._unsent, []
        for task in unsent:
            self.submit(task)

    def submit(self, task: Task) -> None:
        (self._held.append if self._alone else self._submit)(task)

    def in_flight(self) -> int:
        return len(self._futures) + len(self._suspects) + len(self._held) + len(self._unsent)

    def finished(self, timeout: float | None = None) -> Iterator[tuple[Task, Outcome]]:
        """The tasks that finish next (at least one unless ``timeout`` passes first)."""
        if self._unsent and not self._futures:
            self._restart()
        if self._alone and not self._futures:
            if self._suspects:
                self._submit(self._suspects.pop(0))
            else:
                self._alone = False
                for task in self._held:
                    self._submit(task)
                self._held.clear()
        done, _ = cf.wait(self._futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        lost = []
        for future in done:
            task = self._futures.pop(future)
            try:
                outcome = future.result()
            except cf.process.BrokenProcessPool:
                lost.append(task)
                continue
            yield task, outcome
        if lost:
            lost += self._futures.values()
            self._futures.clear()
            alone = len(lost) == 1
            if not alone:
                self._suspects += lost
                self._alone = True
            self._restart()
            if alone:  # alone in the pool: this task's worker died
                yield lost[0], _lost(lost[0], "BrokenProcessPool: a worker process died (killed or out of memory) while this task ran")

    def close(self, *, now: bool = False) -> None:
        """Stop the workers: after their running tasks, or ``now`` (an interrupted sweep: their tasks are not recorded)."""
        if now:
            for process in list(getattr(self._pool, "_processes", {}).values()):  # no public way before Python 3.14
                process.terminate()
        self._pool.shutdown(wait=not now, cancel_futures=True)


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """A one-line error unless ``host:port`` (or ``ray://host:port``) accepts a TCP connection within ``timeout`` s."""
    if address in ("auto", "local"):
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host or not 0 < int(port) < 65536:
        raise LosslabError(f"expected a Ray address HOST:PORT (e.g. 10.0.0.1:6379 or ray://10.0.0.1:10001), got {address!r}; "
                           "give the address `ray start --head` printed")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise LosslabError(f"expected a Ray cluster at {address}, got no answer within {timeout:g} s ({err.strerror or err}); "
                           "start it with `ray start --head`, or check --address") from None


def _ray():
    try:
        import ray
    except ModuleNotFoundError:
        raise LosslabError("expected the ray package for --backend ray, got it not installed; pip install 'losslab[ray]'") from None
    return ray


class _Actor:
    def __init__(self, payload_bytes: bytes, files: tuple[str, ...]) -> None:
        self.payload = _start_worker(payload_bytes, files)

    def run(self, task: Task) -> Outcome:
        return _execute(self.payload, task)


class RayPool:
    """One Ray actor per worker, each built once from the payload in the object store (module docstring)."""

    name = "ray"

    def __init__(self, payload_bytes: bytes, files: tuple[str, ...], *, workers: int, address: str = "") -> None:
        ray = self.ray = _ray()
        self._owned = False
        if not ray.is_initialized():
            if address:
                check_ray_address(address)
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers or None, include_dashboard=False, log_to_driver=False)  # 0: every CPU (0 schedules nothing)
            self._owned = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = min(workers, cpus) if workers else cpus
        self._payload = ray.put(payload_bytes)  # once: every actor reads this object
        self._files = files
        self._remote = ray.remote(num_cpus=1, max_restarts=0)(_Actor)
        self._idle = [self._new_actor() for _ in range(self.workers)]
        self._running: dict[object, tuple[object, Task]] = {}
        self._queue: list[Task] = []

    def _new_actor(self):
        return self._remote.remote(self._payload, self._files)

    def submit(self, task: Task) -> None:
        self._queue.append(task)
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue and self._idle:
            actor, task = self._idle.pop(), self._queue.pop(0)
            self._running[actor.run.remote(task)] = (actor, task)

    def in_flight(self) -> int:
        return len(self._running) + len(self._queue)

    def finished(self, timeout: float | None = None) -> Iterator[tuple[Task, Outcome]]:
        ray = self.ray
        if not self._running:
            return
        ready, _ = ray.wait(list(self._running), num_returns=1, timeout=timeout)
        for ref in ready:
            actor, task = self._running.pop(ref)
            try:
                outcome = ray.get(ref)
                self._idle.append(actor)
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError) as err:
                outcome = _lost(task, f"{type(err).__name__}: the Ray worker or its node died while this task ran")
                self._idle.append(self._new_actor())
            self._dispatch()  # the actor's next task before the driver records this one (its store write, an fsync)
            yield task, outcome
        self._dispatch()

    def close(self, *, now: bool = False) -> None:
        """Kill the actors (a running task is not recorded) and stop the Ray this pool started."""
        for actor, _ in self._running.values():
            self.ray.kill(actor)
        for actor in self._idle:
            self.ray.kill(actor)
        self._running.clear()
        self._idle.clear()
        if self._owned:
            self.ray.shutdown()
