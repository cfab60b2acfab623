"""A sweep's store: one embedded SQLite file (WAL mode), one row per finished task, written as it finishes.

Schema::

    meta(key TEXT PRIMARY KEY, value TEXT)       -- identity (JSON), config text, planned task count, paths of the user's files, created
    planned(key TEXT PRIMARY KEY)                -- the task keys of the last run's config (rows of earlier grids may remain)
    tasks(key TEXT PRIMARY KEY,                  -- Task.key: SHA-256 of the grid point and seed (or the tile's rows)
          idx INTEGER, settings TEXT, seed INTEGER,  -- the task (settings as JSON)
          status TEXT,                           -- 'done' or 'failed'
          numbers TEXT, error TEXT,              -- the task's numbers as JSON, or its error in one line
          attempts INTEGER, seconds REAL, host TEXT, finished REAL)  -- attempts so far, run time (s), where, when (Unix time)

Guarantees:

* **Nothing lost, nothing duplicated.** Each row is committed in its own transaction when its task
  finishes (``synchronous=FULL``: on disk before the next task is recorded), keyed by the task's key.
  A sweep killed at any moment (SIGKILL included) and restarted runs exactly the tasks without a
  ``done`` row and with fewer than two failed attempts.
* **One sweep per store.** A sweep holds an exclusive ``flock`` on ``STORE.lock`` while it runs; a
  second sweep pointed at the same store refuses with a one-line error naming the holder (the
  operating system frees the lock when the holder dies, even by SIGKILL). Readers
  (``losslab sweep status``, :func:`~losslab.sweep.export.to_frame`) never take it: WAL lets them
  read while the sweep writes.
* **One sweep's identity.** A store records what its rows depend on (:meth:`SweepConfig.identity`);
  a sweep with another identity is refused (unless the store has no row yet), while the same sweep
  with a larger grid or more seeds adds its new rows.

The store lives on a local disk of the machine that drives the sweep: SQLite's WAL needs shared
memory, which network filesystems do not give (SQLite's documentation, "WAL mode", §"Disadvantages").
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from pathlib import Path

from .._checks import LosslabError
from .tasks import Outcome, Task

__all__ = ["Store", "open_read_only"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS planned(key TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS tasks(key TEXT PRIMARY KEY, idx INTEGER, settings TEXT, seed INTEGER, status TEXT NOT NULL,
    numbers TEXT, error TEXT, attempts INTEGER NOT NULL, seconds REAL, host TEXT, finished REAL);
"""
_FIX = "give another store (--store PATH, or store = \"…\" in the config)"


def _lock(path: Path):
    """The exclusive lock of ``path``'s sweep, or a one-line error naming its holder."""
    try:
        import fcntl
    except ModuleNotFoundError:  # not POSIX
        return None
    lock_path = Path(f"{path.resolve()}.lock")  # resolved: a symlink to the store locks the same file
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise LosslabError(f"expected a writable store, got {str(path)!r} ({err.strerror}); {_FIX}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise LosslabError(f"expected store {str(path)!r} to be free, got a sweep already writing to it ({holder}); two sweeps "
                           f"never share a store: wait for it to finish, or {_FIX}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
    return fd


def _shown(identity: dict, key: str) -> str:
    return repr(identity[key]) if key in identity else "(none)"


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=60, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    return con


class Store:
    """The open store of a running sweep (see the module docstring); use as a context manager."""

    def __init__(self, path: str | Path, identity: dict, *, config_text: str = "", planned: int = 0, paths: dict | None = None,
                 keys: list[str] | None = None) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise LosslabError(f"expected the store to be a file, got a folder {str(self.path)!r}; {_FIX}")
        if not self.path.parent.is_dir():
            raise LosslabError(f"expected the store's folder to exist, got {str(self.path)!r} (no folder {str(self.path.parent)!r}); "
                               f"create it or {_FIX}")
        self._fd = _lock(self.path)
        try:
            self.con = _connect(self.path)
            self.con.executescript(_SCHEMA)
            self._check_identity(identity)
            self._put_meta(config=config_text, planned=str(planned), paths=json.dumps(paths or {}))
            if keys is not None:
                with self.con:
                    self.con.execute("BEGIN IMMEDIATE")
                    self.con.execute("DELETE FROM planned")
                    self.con.executemany("INSERT OR IGNORE INTO planned VALUES (?)", ((k,) for k in keys))
        except sqlite3.Error as err:
            self.close()
            raise LosslabError(f"expected a writable SQLite store, got {str(self.path)!r} ({err}); {_FIX}") from None
        except LosslabError:
            self.close()
            raise

    def _put_meta(self, **values: str) -> None:
        with self.con:
            self.con.execute("BEGIN IMMEDIATE")
            self.con.executemany("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                                 list(values.items()))

    def _claim(self, key: str, value: str) -> str | None:
        """Record ``value`` under ``key`` in meta, unless the store's rows were computed with another: then return that one.

        A store without rows takes the new value (its last run stopped before a task finished, e.g. at a typo: nobody's)."""
        row = self.con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is not None and row[0] != value and self.con.execute("SELECT count(*) FROM tasks").fetchone()[0]:
            return row[0]
        if row is None or row[0] != value:
            self._put_meta(**{key: value})
        return None

    def _check_identity(self, identity: dict) -> None:
        self.con.execute("INSERT OR IGNORE INTO meta VALUES ('created', ?)", (str(time.time()),))
        recorded = self._claim("identity", json.dumps(identity, sort_keys=True))
        if recorded is None:
            return
        try:
            theirs = json.loads(recorded)
        except ValueError:
            raise LosslabError(f"expected store {str(self.path)!r} to record its sweep as JSON, got {recorded[:40]!r} (a damaged "
                               f"store); {_FIX}") from None
        theirs = theirs if isinstance(theirs, dict) else {"identity": theirs}
        differ = sorted(k for k in {*theirs, *identity} if theirs.get(k) != identity.get(k))
        raise LosslabError(f"expected store {str(self.path)!r} to hold this sweep, got one of another sweep (they differ in "
                           f"{', '.join(f'{k}: {_shown(theirs, k)} vs {_shown(identity, k)}' for k in differ)}); {_FIX}")

    def check_meta(self, key: str, value: str, what: str) -> None:
        """Record ``value`` under ``key`` at a store's first run; later runs must bring the same (else a one-line error on ``what``)."""
        if self._claim(key, value) is not None:
            raise LosslabError(f"expected the same {what} as the store {str(self.path)!r} was computed with, got another; {_FIX}")

    def attempts(self) -> dict[str, tuple[str, int]]:
        """Task key → (status, attempts) of every row."""
        return {k: (s, a) for k, s, a in self.con.execute("SELECT key, status, attempts FROM tasks")}

    def record(self, task: Task, outcome: Outcome, attempts: int) -> None:
        """Write the row of ``task`` after an attempt, in one committed transaction (a later attempt replaces it)."""
        row = (task.key, task.index, json.dumps(task.settings, sort_keys=True) if task.rows is None else json.dumps({"rows": task.rows}),
               task.seed, "failed" if outcome.failed else "done", outcome.numbers or None, outcome.error or None, attempts,
               outcome.seconds, outcome.host, time.time())
        with self.con:
            self.con.execute("BEGIN IMMEDIATE")
            self.con.execute("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                             "idx = excluded.idx, settings = excluded.settings, seed = excluded.seed, status = excluded.status, "
                             "numbers = excluded.numbers, error = excluded.error, "
                             "attempts = excluded.attempts, seconds = excluded.seconds, host = excluded.host, "
                             "finished = excluded.finished", row)

    def reset_failed(self) -> int:
        """Let failed tasks run again (their attempts back to 0); returns how many."""
        with self.con:
            self.con.execute("BEGIN IMMEDIATE")
            return self.con.execute("UPDATE tasks SET attempts = 0 WHERE status = 'failed'").rowcount

    def close(self) -> None:
        con = getattr(self, "con", None)
        if con is not None:
            con.close()
            self.con = None
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)  # frees the flock
            self._fd = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_read_only(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to an existing store (no lock: it reads while a sweep writes)."""
    p = Path(path)
    if not p.is_file():
        raise LosslabError(f"expected a sweep store (an SQLite file written by losslab sweep), got {str(path)!r} "
                           f"({'a folder' if p.is_dir() else 'no such file'})")
    try:
        con = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as err:
        raise LosslabError(f"expected a sweep store (an SQLite file written by losslab sweep), got {str(path)!r} ({err})") from None
    if not {"meta", "tasks"} <= tables:
        con.close()
        raise LosslabError(f"expected a sweep store with tables meta and tasks, got {str(path)!r} with {sorted(tables)}; "
                           "point at the .sqlite file a sweep wrote")
    return con
