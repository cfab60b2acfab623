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


def _meta(con) -> dict:
    return dict(con.execute("SELECT key, value FROM meta"))


def read_rows(store: str | Path) -> tuple[dict, list[dict]]:
    """``(identity, rows)``: the store's sweep identity and its rows in task order, settings and numbers decoded from JSON."""
    con = open_read_only(store)
    try:
        meta = _meta(con)
        raw = con.execute("SELECT key, idx, seed, status, error, attempts, seconds, host, finished, settings, numbers "
                          "FROM tasks ORDER BY idx, key").fetchall()
    finally:
        con.close()
    rows = []
    for r in raw:
        row = dict(zip(COLUMNS, r[:9]))
        row["settings"] = json.loads(r[9]) if r[9] else {}
        row["numbers"] = json.loads(r[10]) if r[10] else None
        rows.append(row)
    return json.loads(meta.get("identity", "{}")), rows


def _scalar(v: object) -> bool:
    return isinstance(v, (bool, int, float, str)) or v is None


def to_frame(store: str | Path):
    """The store as a :class:`pandas.DataFrame`, one row per task, in task order.

    Columns: ``key, index, seed, status, error, attempts, seconds, host, finished`` (a UTC timestamp),
    one column per setting (the grid point's values; lists stay lists), ``numbers`` (the decoded
    JSON), and flattened from it: for an experiment sweep ``passed`` and ``claim.<key>`` (bool per
    claim); for a function sweep each top-level scalar the analysis returned (as ``out.<name>`` when
    a setting has the same name). NaN and ±inf numbers are the strings "nan", "inf", "-inf" in ``numbers``.
    """
    import pandas as pd

    identity, rows = read_rows(store)
    records = []
    for row in rows:
        rec = {k: row[k] for k in COLUMNS}
        rec.update({k: v for k, v in row["settings"].items() if k not in COLUMNS and k != "rows"})
        numbers = row["numbers"]
        if identity.get("kind") == "experiment" and isinstance(numbers, dict):
            rec["passed"] = numbers.get("passed")
            rec.update({f"claim.{c['key']}": c["holds"] for c in numbers.get("claims", [])})
        elif identity.get("kind") == "function" and isinstance(numbers, dict):
            rec.update({(f"out.{k}" if k in rec else k): v for k, v in numbers.items() if _scalar(v)})
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
        done, failed: rows finished / failed twice; retrying: rows failed once, to be retried.
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


def summary(store: str | Path) -> StoreSummary:
    """A :class:`StoreSummary` of ``store``."""
    identity, rows = read_rows(store)
    con = open_read_only(store)
    try:
        planned = int(_meta(con).get("planned", "0") or 0)
    finally:
        con.close()
    done = [r for r in rows if r["status"] == "done"]
    failed = [r for r in rows if r["status"] == "failed" and r["attempts"] >= 2]
    times = [r["finished"] for r in rows if r["finished"] is not None]
    return StoreSummary(
        identity=identity, planned=planned, done=len(done), failed=len(failed),
        retrying=sum(r["status"] == "failed" and r["attempts"] < 2 for r in rows),
        seconds=sum(r["seconds"] or 0.0 for r in rows), mean_seconds=(sum(r["seconds"] for r in done) / len(done)) if done else 0.0,
        hosts=dict(Counter(r["host"] for r in rows)), first=min(times) if times else None, last=max(times) if times else None,
        errors=Counter(r["error"] for r in rows if r["error"]).most_common(3),
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
    from .runner import plane_parts
    from .tasks import make_tasks

    identity, rows = read_rows(store)
    if identity.get("kind") != "plane":
        raise LosslabError(f"expected the store of a plane sweep, got one of a {identity.get('kind')!r} sweep; "
                           "use losslab.sweep.to_frame for its rows")
    plane = {k: identity[k] for k in ("steps", "span", "tile_rows")}
    config = SweepConfig(kind="plane", target=identity["target"], store=Path(store), seeds=(identity["seed"],), plane=plane)
    done = {r["key"]: r["numbers"] for r in rows if r["status"] == "done"}
    missing = [t for t in make_tasks(config) if t.key not in done]
    if missing:
        raise LosslabError(f"expected every tile of the plane in {str(store)!r}, got {len(missing)} missing (rows {missing[0].rows} "
                           "first); run the sweep again to finish it")
    parts = plane_parts(config)[1]
    losses = torch.empty(plane["steps"], plane["steps"], dtype=torch.float64)
    for numbers in done.values():
        a, b = numbers["rows"]
        losses[a:b] = torch.tensor([[float(v) for v in row] for row in numbers["losses"]], dtype=torch.float64)
    problem, alphas = parts["problem"], parts["coordinates"]
    d1, d2 = parts["directions"]
    return PlaneSlice(alphas=alphas, betas=alphas.clone(), losses=losses.to(problem.dtype), center=parts["center"], d1=d1, d2=d2,
                      seed=identity["seed"], method="grid", description=problem.describe())
