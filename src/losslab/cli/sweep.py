"""``losslab sweep CONFIG``, ``losslab sweep status|export|report STORE``: sweeps on a local pool or Ray, and their stores."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._checks import LosslabError
from ._app import app
from .common import JsonOpt, friendly_errors, out

_HELP = """Run a sweep (settings × seeds of an experiment, your own analysis, or the tiles of a landscape plane), resumable.

\b
  losslab sweep CONFIG.toml [--backend local|ray] [--address HOST:PORT] [--workers N] [--store FILE]
  losslab sweep status STORE.sqlite
  losslab sweep export STORE.sqlite --parquet rows.parquet [--csv rows.csv]
  losslab sweep report STORE.sqlite [STORE2.sqlite ...] [--out DIR]   (experiment sweeps: figures and claim rates)

\b
CONFIG (TOML), e.g.
  \\[sweep]
  experiment = "spurious-minima"
  quick = true
  seeds = 10
  \\[grid]
  starts = [50, 100]

Each finished task is one row of the SQLite store (default: CONFIG with .sqlite); run the same command again after a
crash or kill and only the missing tasks run. A task that raises is recorded with its error and retried once.
"""


def _run(config: str, *, backend, address, workers, store, retry_failed, as_json, quiet) -> None:
    from ..sweep import load_config, run

    cfg = load_config(config)
    try:
        result = run(cfg, backend=backend, address=address, workers=workers, store=store, retry_failed=retry_failed,
                     progress=not (as_json or quiet) and sys.stderr.isatty())
    except KeyboardInterrupt:
        print(f"interrupted: the finished tasks are in {cfg.store if store is None else store}; run the same command again to "
              "resume", file=sys.stderr)
        raise typer.Exit(130) from None
    files = {}
    if cfg.kind == "plane" and result.done + result.skipped == result.total:
        files = _write_plane(result.store)
    if as_json:
        typer.echo(json.dumps({**{k: str(v) if isinstance(v, Path) else v for k, v in vars(result).items()}, "files": files}))
    else:
        where = f"{result.workers} {result.backend} worker{'s' * (result.workers != 1)}" if result.workers else "nothing to run"
        out.print(f"sweep: {result.total} tasks; {result.skipped} already in the store, {result.done} done, {result.failed} failed "
                  f"twice, in {result.seconds:.1f} s ({where}); store: {result.store}", highlight=False, soft_wrap=True)
        for name, path in files.items():
            out.print(f"wrote the plane's {name}: {path}", highlight=False, soft_wrap=True)
    if result.failed or result.failed_before:
        now = f"{result.failed} task(s) failed twice" if result.failed else ""
        before = f"{result.failed_before} task(s) had failed twice before (not run again)" if result.failed_before else ""
        print(f"error: {'; '.join(x for x in (now, before) if x)}; `losslab sweep status {result.store}` shows their errors, "
              f"and `losslab sweep {config} --retry-failed` runs them again", file=sys.stderr)
        raise typer.Exit(1)


def _write_plane(store: Path) -> dict[str, str]:
    from ..report.figures import plane_contour_png
    from ..sweep import plane_slice

    plane = plane_slice(store)
    data, png = store.with_suffix(".npz"), store.with_suffix(".png")
    plane.save(data)
    plane_contour_png(plane, png, title=f"loss on a plane, filter-normalised directions (seed {plane.seed})")
    return {"data": str(data), "figure": str(png)}


def _when(t: float | None) -> str:
    return "—" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _status(store: str, as_json: bool) -> None:
    from ..sweep import summary

    s = summary(store)
    if as_json:
        typer.echo(json.dumps(vars(s)))
        return
    ident = s.identity
    remaining = max(s.planned - s.done - s.failed, 0)
    table = Table(show_header=False, title=f"sweep store {escape(store)}")
    rows = [("sweep", f"{ident.get('kind')} {ident.get('target')}" + (" (quick)" if ident.get("quick") else "")),
            ("tasks", f"{s.planned} planned: {s.done} done, {s.failed} failed twice, {s.retrying} failed once, {remaining} to run"),
            ("time", f"{s.seconds:.3g} s of task time, {s.mean_seconds:.3g} s per done task"),
            ("hosts", ", ".join(f"{h} ({n})" for h, n in s.hosts.items()) or "—"),
            ("finished", f"first {_when(s.first)}, last {_when(s.last)}")]
    if s.earlier:
        rows.append(("earlier", f"{s.earlier} rows of tasks not in the last run's config (kept; to_frame's planned column)"))
    rows += [(f"error ×{n}", e) for e, n in s.errors]
    for k, v in rows:
        table.add_row(k, escape(str(v)))
    Console().print(table)


def _report(stores: list[str], out_dir: Path, as_json: bool) -> None:
    from .. import __version__
    from ..report.from_store import write_store_report

    index = write_store_report(stores, out_dir, version=__version__)
    if as_json:
        typer.echo(json.dumps({"report": str(index)}))
    else:
        out.print(f"wrote {index}", highlight=False, soft_wrap=True)


def _export(store: str, parquet: Path | None, csv: Path | None) -> None:
    from ..sweep import to_frame, to_parquet
    from ..sweep.export import json_columns

    if parquet is None and csv is None:
        raise LosslabError("expected --parquet FILE or --csv FILE for `losslab sweep export STORE`, got neither; "
                           "e.g. losslab sweep export runs.sqlite --parquet runs.parquet")
    if parquet is not None:
        out.print(f"wrote {to_parquet(store, parquet)}", highlight=False, soft_wrap=True)
    if csv is not None:
        frame = json_columns(to_frame(store))  # lists and dicts as JSON text, as in the Parquet file
        try:
            frame.to_csv(csv, index=False)
        except OSError as err:
            raise LosslabError(f"expected a writable CSV path, got {str(csv)!r} ({err.strerror}); choose another path") from None
        out.print(f"wrote {csv}", highlight=False, soft_wrap=True)


@app.command(help=_HELP)
@friendly_errors
def sweep(
    what: str = typer.Argument(..., metavar="CONFIG | status STORE | export STORE | report STORE...",
                               help="a TOML config, or status/export/report and store(s)"),
    stores: list[str] | None = typer.Argument(None, metavar="[STORE...]", help="the store(s), after status, export or report"),
    backend: str | None = typer.Option(None, "--backend", help="local (a process pool, default) or ray"),
    address: str | None = typer.Option(None, "--address", help="a Ray cluster, HOST:PORT or ray://HOST:PORT (with --backend ray)"),
    workers: int | None = typer.Option(None, "--workers", help="worker processes (default: every CPU or the cluster's)"),
    store: Path | None = typer.Option(None, "--store", help="the SQLite store (default: the config's)"),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="run tasks that failed twice once more"),
    parquet: Path | None = typer.Option(None, "--parquet", help="export: write the rows to this Parquet file"),
    csv: Path | None = typer.Option(None, "--csv", help="export: write the rows to this CSV file"),
    out_dir: Path | None = typer.Option(None, "--out", help="report: the folder for index.html (default losslab-sweep-report)"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
    as_json: JsonOpt = False,
) -> None:
    stores = stores or []
    if what in ("status", "export", "report"):
        if not stores:
            raise LosslabError(f"expected a store after `losslab sweep {what}`, got none; e.g. losslab sweep {what} runs.sqlite")
        if len(stores) > 1 and what != "report":
            raise LosslabError(f"expected one store after `losslab sweep {what}`, got {len(stores)}; give one at a time")
        run_only = [n for n, v in (("--backend", backend), ("--address", address), ("--workers", workers), ("--store", store),
                                   ("--retry-failed", retry_failed or None)) if v is not None]
        if run_only:
            raise LosslabError(f"expected {run_only[0]} only when running a sweep, got it with `losslab sweep {what}`; drop it")
        wrong = [(n, ok) for n, v, ok in (("--parquet", parquet, "export"), ("--csv", csv, "export"), ("--out", out_dir, "report"))
                 if v is not None and ok != what]
        if wrong:
            raise LosslabError(f"expected {wrong[0][0]} only with `losslab sweep {wrong[0][1]}`, got it with `losslab sweep {what}`; "
                               "drop it")
        if what == "status":
            _status(stores[0], as_json)
        elif what == "export":
            _export(stores[0], parquet, csv)
        else:
            _report(stores, out_dir or Path("losslab-sweep-report"), as_json)
        return
    if stores:
        raise LosslabError(f"expected one CONFIG (or status/export/report STORE), got {what!r} and {stores[0]!r}; "
                           "give the store with --store")
    if parquet is not None or csv is not None or out_dir is not None:
        raise LosslabError("expected --parquet/--csv/--out only with `losslab sweep export/report STORE`, got them with a config; "
                           f"run `losslab sweep export {store or 'STORE'} --parquet FILE` afterwards")
    _run(what, backend=backend, address=address, workers=workers, store=store, retry_failed=retry_failed, as_json=as_json,
         quiet=quiet)
