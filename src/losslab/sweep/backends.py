"""Where tasks run: a local process pool (the default, no server) or a Ray cluster. One interface, one worker code path.

Both backends start ``workers`` long-lived workers; each receives the pickled :class:`~losslab.sweep.tasks.Payload`
once and turns it into its state with :func:`~losslab.sweep.tasks.prepare_worker`, then runs task after
task with :func:`~losslab.sweep.tasks.execute`. So the numbers of a task do not depend on the backend.

* ``local``: :class:`concurrent.futures.ProcessPoolExecutor` with the ``spawn`` start method (a
  clean interpreter, no inherited locks or torch threads); the payload is the initializer's
  argument, sent once per worker process. A worker that dies (killed, out of memory) breaks the
  pool: the tasks in flight are reported failed and a new pool starts.
* ``ray``: one actor per worker (``num_cpus=1``), two calls queued on each (so it starts its next task while the
  driver records the last), built from an ``ObjectRef`` of the payload, put once
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
from .tasks import Outcome, Task, execute, prepare_worker

__all__ = ["LocalPool", "RayPool", "check_ray_address", "cpu_count"]

_STATE = None  # the worker process's Payload (local pool)


def cpu_count() -> int:
    """CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _die_with_parent() -> None:
    try:  # Linux: a worker gets SIGKILL when the driver dies, so no orphan keeps running (prctl PR_SET_PDEATHSIG)
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _init_local(payload_bytes: bytes, files: tuple[str, ...], threads: int) -> None:
    global _STATE
    _die_with_parent()
    _STATE = prepare_worker(payload_bytes, files, threads)


def _run_local(task: Task) -> Outcome:
    return execute(_STATE, task)


def _lost(task: Task, why: str) -> Outcome:
    return Outcome(task.key, "", why, 0.0, socket.gethostname())


class LocalPool:
    """``workers`` spawned processes, each holding the payload (module docstring)."""

    name = "local"

    def __init__(self, payload_bytes: bytes, files: tuple[str, ...], *, workers: int, threads: int) -> None:
        self.workers = workers
        self._args = (payload_bytes, files, threads)
        self._futures: dict[cf.Future, Task] = {}
        self._start()

    def _start(self) -> None:
        self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_init_local, initargs=self._args)

    def submit(self, task: Task) -> None:
        self._futures[self._pool.submit(_run_local, task)] = task

    def in_flight(self) -> int:
        return len(self._futures)

    def finished(self, timeout: float | None = None) -> Iterator[tuple[Task, Outcome]]:
        """The tasks that finish next (at least one unless ``timeout`` passes first)."""
        done, _ = cf.wait(self._futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        broken = False
        for future in done:
            task = self._futures.pop(future)
            try:
                yield task, future.result()
            except cf.process.BrokenProcessPool:
                broken = True
                yield task, _lost(task, "BrokenProcessPool: a worker process died (killed or out of memory) while this task ran")
        if broken:
            for future, task in list(self._futures.items()):
                self._futures.pop(future)
                yield task, _lost(task, "BrokenProcessPool: a worker process died (killed or out of memory) while this task was queued")
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._start()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """A one-line error unless ``host:port`` (or ``ray://host:port``) accepts a TCP connection within ``timeout`` s."""
    if address in ("auto", "local"):
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
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
    def __init__(self, payload_bytes: bytes, files: tuple[str, ...], threads: int) -> None:
        self.payload = prepare_worker(payload_bytes, files, threads)

    def run(self, task: Task) -> Outcome:
        return execute(self.payload, task)


class RayPool:
    """One Ray actor per worker, each built once from the payload in the object store (module docstring)."""

    name = "ray"
    depth = 2  # calls queued per actor (Ray runs them in order): it starts its next task while the driver records the last

    def __init__(self, payload_bytes: bytes, files: tuple[str, ...], *, workers: int, threads: int, address: str = "") -> None:
        ray = self.ray = _ray()
        self._owned = False
        if not ray.is_initialized():
            if address:
                check_ray_address(address)
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers or cpu_count(), include_dashboard=False, log_to_driver=False)  # 0: every CPU
            self._owned = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = min(workers, cpus) if workers else cpus
        self._payload = ray.put(payload_bytes)  # once: every actor reads this object
        self._args = (files, threads)
        self._remote = ray.remote(num_cpus=1, max_restarts=0)(_Actor)
        self._idle = [actor for actor in (self._new_actor() for _ in range(self.workers)) for _ in range(self.depth)]  # free slots
        self._replaced: set[int] = set()  # id() of dead actors already replaced
        self._running: dict[object, tuple[object, Task]] = {}
        self._queue: list[Task] = []

    def _new_actor(self):
        return self._remote.remote(self._payload, *self._args)

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
                if id(actor) not in self._replaced:  # its other queued call fails too: replace it once
                    self._replaced.add(id(actor))
                    self._idle = [a for a in self._idle if a is not actor]
                    new = self._new_actor()
                    self._idle += [new] * self.depth
            yield task, outcome
        self._dispatch()

    def close(self) -> None:
        actors = {id(a): a for a in [*(a for a, _ in self._running.values()), *self._idle]}
        for actor in actors.values():
            self.ray.kill(actor)
        self._running.clear()
        self._idle.clear()
        if self._owned:
            self.ray.shutdown()
