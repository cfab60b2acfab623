"""Reading a store: a pandas DataFrame, Parquet, a summary, and the plane of a plane sweep.

All readers open the store read-only and take no lock, so they work while a sweep writes to it.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .._checks import LosslabError
from .store import open_read_only

__all__ = ["StoreSummary", "json_columns", "plane_slice", "read_rows", "summary", "to_frame", "to_parquet"]

COLUMNS = ("key", "index", "seed", "status", "error", "attempts", "seconds", "host", "finished")
RESERVED = {*COLUMNS, "planned", "numbers", "passed"}  # a setting or output of these names gets a prefix in to_frame


def _meta(con) -> dict:
    return dict(con.execute("SELECT key, value FROM meta"))


def read_meta(store: str | Path) -> dict:
    """The store's meta table (identity, config, planned, paths, plane, created) as text values."""
    con = open_read_only(store)
    try:
        return _meta(con)
    finally:
        con.close()


def _json(store: str | Path, what: str, text: str | None, default: object) -> object:
    """``text`` decoded, or a one-line error naming the damaged part of the store."""
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        raise LosslabError(f"expected {what} in {str(store)!r} as JSON, got {text[:40]!r} (a damaged store); "
                           "rerun the sweep into a new store") from None


def read_rows(store: str | Path) -> tuple[dict, list[dict]]:
    """``(identity, rows)``: the store's sweep identity and its rows in task order, settings and numbers decoded from JSON.

    Each row has ``planned``: whether its task is in the config of the store's last run (a grid that
    shrank, or other seeds, leave rows of earlier runs, which stay readable).
    """
    con = open_read_only(store)
    try:
        meta = _meta(con)
        has_planned = con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'planned'").fetchone()[0]
        planned = {k for (k,) in con.execute("SELECT key FROM planned")} if has_planned else None
        raw = con.execute("SELECT key, idx, seed, status, error, attempts, seconds, host, finished, settings, numbers "
                          "FROM tasks ORDER BY idx, key").fetchall()
    finally:
        con.close()
    rows = []
    for r in raw:
        row = dict(zip(COLUMNS, r[:9]))
        row["settings"] = _json(store, f"the settings of task {r[0]}", r[9], {})
        row["numbers"] = _json(store, f"the numbers of task {r[0]}", r[10], None)
        row["planned"] = planned is None or not planned or r[0] in planned
        rows.append(row)
    identity = _json(store, "the sweep's identity", meta.get("identity"), {})
    if not isinstance(identity, dict):
        raise LosslabError(f"expected the sweep's identity in {str(store)!r} as a JSON object, got {identity!r} (a damaged store); "
                           "rerun the sweep into a new store")
    return identity, rows


def _scalar(v: object) -> bool:
    return isinstance(v, (bool, int, float, str)) or v is None


_NONFINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


def _number(v: object) -> object:
    """A flattened output: the strings "nan", "inf", "-inf" (how JSON holds them, see jsonable) back as floats."""
    return _NONFINITE.get(v, v) if isinstance(v, str) else v


def to_frame(store: str | Path):
    """The store as a :class:`pandas.DataFrame`, one row per task, in task order.

    Columns: ``key, index, seed, status, error, attempts, seconds, host, finished`` (a UTC timestamp),
    ``planned`` (the task is in the last run's config), one column per setting (the grid point's
    values; lists stay lists; ``setting.<name>`` for a name above), ``numbers`` (the decoded JSON),
    and flattened from it: for an experiment sweep ``passed`` and ``claim.<key>`` (bool per claim);
    for a function sweep each top-level scalar the analysis returned (``out.<name>`` when a setting
    or a column above has the same name), with "nan", "inf", "-inf" as floats. Inside ``numbers``,
    NaN and ±inf stay the strings "nan", "inf", "-inf" (JSON has no such numbers).
    """
    import pandas as pd

    identity, rows = read_rows(store)
    task_kind = identity.get("kind")
    records = []
    for row in rows:
        rec = {k: row[k] for k in COLUMNS}
        rec["planned"] = row["planned"]
        rec.update({(f"setting.{k}" if k in RESERVED else k): v for k, v in row["settings"].items() if task_kind != "plane"})
        numbers = row["numbers"]
        if task_kind == "experiment" and isinstance(numbers, dict):
            rec["passed"] = numbers.get("passed")
            rec.update({f"claim.{c['key']}": c["holds"] for c in numbers.get("claims", [])})
        elif task_kind == "function" and isinstance(numbers, dict):
            rec.update({(f"out.{k}" if k in rec or k in RESERVED else k): _number(v) for k, v in numbers.items() if _scalar(v)})
        rec["numbers"] = numbers
        records.append(rec)
    frame = pd.DataFrame.from_records(records)
    if len(frame):
        frame["finished"] = pd.to_datetime(frame["finished"], unit="s", utc=True)
    return frame


def json_columns(frame):
    """``frame`` with every list or dict value written as JSON text (for Parquet and CSV, whose cells are scalars)."""
    frame = frame.copy()
    for col in frame.columns:
        if frame[col].map(lambda v: isinstance(v, (list, dict))).any():
            frame[col] = frame[col].map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v)
    return frame


def to_parquet(store: str | Path, path: str | Path) -> Path:
    """Write :func:`to_frame` to Parquet at ``path`` (columns of lists or dicts as JSON text); needs pyarrow."""
    try:
        import pyarrow  # noqa: F401
    except ModuleNotFoundError:
        raise LosslabError("expected pyarrow for Parquet, got it not installed; pip install 'losslab[parquet]'") from None
    frame = json_columns(to_frame(store))
    out = Path(path)
    if not out.parent.is_dir():
        raise LosslabError(f"expected the Parquet file's folder to exist, got {str(out)!r}; create the folder first")
    try:
        frame.to_parquet(out, index=False)
    except OSError as err:
        raise LosslabError(f"expected a writable Parquet path, got {str(out)!r} ({err}); choose another path") from None
    return out


@dataclass(frozen=True)
class StoreSummary:
    """What a store holds: its sweep, rows by status, run time and hosts, and the commonest errors.

    Attributes:
        identity: the sweep (kind, target, …); planned: tasks in the config of its last run.
        done, failed: its rows finished / failed twice; retrying: its rows failed once, to be retried
        (all counts but ``earlier`` are of the planned tasks' rows).
        earlier: rows of tasks not in the last run's config (a grid that shrank, other seeds); kept, readable.
        seconds: summed task time (s); mean_seconds: per done task; hosts: rows per host.
        first, last: Unix times of the first and last finished rows; errors: (error, count), commonest first.
    """

    identity: dict
    planned: int
    done: int
    failed: int
    retrying: int
    seconds: float
    mean_seconds: float
    hosts: dict
    first: float | None
    last: float | None
    errors: list
    earlier: int = 0


def summary(store: str | Path) -> StoreSummary:
    """A :class:`StoreSummary` of ``store``."""
    identity, rows = read_rows(store)
    text = read_meta(store).get("planned", "0") or "0"
    if not text.isdigit():
        raise LosslabError(f"expected the planned task count in {str(store)!r} as a number, got {text[:40]!r} (a damaged store); "
                           "rerun the sweep into a new store")
    planned, earlier = int(text), sum(not r["planned"] for r in rows)
    rows = [r for r in rows if r["planned"]]
    done = [r for r in rows if r["status"] == "done"]
    failed = [r for r in rows if r["status"] == "failed" and r["attempts"] >= 2]
    times = [r["finished"] for r in rows if r["finished"] is not None]
    return StoreSummary(
        identity=identity, planned=planned, done=len(done), failed=len(failed),
        retrying=sum(r["status"] == "failed" and r["attempts"] < 2 for r in rows),
        seconds=sum(r["seconds"] or 0.0 for r in rows), mean_seconds=(sum(r["seconds"] for r in done) / len(done)) if done else 0.0,
        hosts=dict(Counter(r["host"] for r in rows)), first=min(times) if times else None, last=max(times) if times else None,
        errors=Counter(r["error"] for r in rows if r["error"]).most_common(3), earlier=earlier,
    )


def plane_slice(store: str | Path):
    """The :class:`~losslab.landscape.PlaneSlice` of a finished plane sweep, its tiles assembled.

    The centre, directions and coordinates are rebuilt exactly as the sweep built them (the
    problem's file is imported and called again), so ``slice.point(i, j)`` is the evaluated point.

    Raises:
        LosslabError: not a plane sweep's store, or tiles missing (the sweep has not finished).
    """
    import torch

    from ..landscape.slices import PlaneSlice
    from .config import SweepConfig
    from .runner import plane_fingerprint, plane_parts
    from .tasks import make_tasks

    identity, rows = read_rows(store)
    if identity.get("kind") != "plane":
        raise LosslabError(f"expected the store of a plane sweep, got one of a {identity.get('kind')!r} sweep; "
                           "use losslab.sweep.to_frame for its rows")
    meta = read_meta(store)
    target = _json(store, "the files' paths", meta.get("paths"), {}).get("target", "")
    plane = {k: identity[k] for k in ("steps", "span", "tile_rows")}
    config = SweepConfig(kind="plane", target=target, store=Path(store), seeds=(identity["seed"],), plane=plane)
    if config.identity()["code"] != identity["code"]:
        raise LosslabError(f"expected {config.target.rpartition(':')[0]} as the plane sweep in {str(store)!r} ran it, got the file "
                           "changed since; the tiles are of the old file: restore it, or run the sweep again into a new store")
    done = {r["key"]: r["numbers"] for r in rows if r["status"] == "done"}
    missing = [t for t in make_tasks(config) if t.key not in done]
    if missing:
        raise LosslabError(f"expected every tile of the plane in {str(store)!r}, got {len(missing)} missing (rows {missing[0].rows} "
                           "first); run the sweep again to finish it")
    parts = plane_parts(config)[1]
    recorded = meta.get("plane")
    if recorded is not None and recorded != plane_fingerprint(parts):
        raise LosslabError(f"expected {config.target.rpartition(':')[0]} to give the plane's centre and directions as when the sweep in "
                           f"{str(store)!r} ran, got others (problem() is not deterministic); seed its initialisation or return "
                           "(problem, center), and rerun the sweep into a new store")
    losses = torch.empty(plane["steps"], plane["steps"], dtype=torch.float64)
    for numbers in done.values():
        a, b = numbers["rows"]
        losses[a:b] = torch.tensor([[float(v) for v in row] for row in numbers["losses"]], dtype=torch.float64)
    problem, alphas = parts["problem"], parts["coordinates"]
    d1, d2 = parts["directions"]
    return PlaneSlice(alphas=alphas, betas=alphas.clone(), losses=losses.to(problem.dtype), center=parts["center"], d1=d1, d2=d2,
                      seed=identity["seed"], method="grid", description=problem.describe())
