"""``losslab demo`` and ``losslab experiment``: the seed's argument as experiments, written to one HTML report."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import __version__
from .._checks import LosslabError
from ..experiments import NAMES, Claim, Result, get_experiment, run_experiment
from ..report.html import check_report_target, write_report
from ..report.sections import draw
from ._app import app
from .common import JsonOpt, SeedOpt, friendly_errors, out


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True)


def run_all(experiments: Sequence, *, seed: int, quick: bool, overrides: dict | None = None) -> tuple[list, list[str]]:
    """Run ``experiments`` in order with a progress bar on stderr; a line per finished experiment.

    Returns (results, names of the experiments that raised): an exception other than a LosslabError
    is a bug, reported as the experiment's one failed claim so the rest of the report still appears.
    """
    results, crashed = [], []
    with _progress() as progress:
        task = progress.add_task("starting", total=len(experiments))
        for exp in experiments:
            def say(msg: str, exp=exp) -> None:
                progress.update(task, description=f"{exp.number}. {exp.name}: {msg}")

            say("running")
            try:
                r = run_experiment(exp, seed=seed, quick=quick, overrides=overrides, say=say)
                say("drawing")
                r = draw(r)
            except LosslabError:
                raise
            except Exception as err:  # a bug: report it in its section and go on with the others
                if overrides and _too_large(err):  # not a bug: the user's settings asked for more memory than there is
                    raise LosslabError(f"experiment {exp.name!r} ran out of memory with these settings "
                                       f"({str(err).splitlines()[0][:120]}); lower its sizes (--show-settings lists them)") from None
                r = crashed_result(exp, err, seed=seed, quick=quick, overrides=overrides)
                crashed.append(exp.name)
            held = sum(c.holds for c in r.claims)
            mark = "[green]✓[/]" if r.passed else "[red]✗[/]"
            line = f"{mark} {r.number:2d}. {r.title} — {held}/{len(r.claims)} claims hold ({r.seconds:.1f} s)"
            progress.console.print(line, soft_wrap=True, highlight=False)
            results.append(r)
            progress.advance(task)
    return results, crashed


def _too_large(err: BaseException) -> bool:
    """Whether ``err`` is an allocation failure (torch's CPU/CUDA allocator or Python's MemoryError)."""
    text = str(err).lower()
    return isinstance(err, MemoryError) or "out of memory" in text or ("alloc" in text and "bytes" in text)


def crashed_result(exp, err: Exception, *, seed: int, quick: bool, overrides: dict | None) -> Result:
    """A Result for an experiment that raised: one failed claim carrying the error, so the report shows it."""
    import dataclasses
    import traceback

    where = traceback.extract_tb(err.__traceback__)[-1]
    evidence = f"{type(err).__name__}: {err} (at {Path(where.filename).name}:{where.lineno})"
    return Result(name=exp.name, number=exp.number, title=exp.title, intro=exp.intro, seed=seed, quick=quick,
                  settings=dataclasses.asdict(exp.make_settings(quick=quick, overrides=overrides)), seconds=0.0,
                  measured=None, claims=(Claim("runs", "the experiment runs to completion", False, evidence),), error=evidence)


def claims_table(results: Sequence) -> Table:
    """A rich table of every claim: experiment, claim, evidence, verdict."""
    table = Table("experiment", "claim", "evidence", "", title="losslab claims", show_lines=False)
    for r in results:
        for c in r.claims:
            table.add_row(f"{r.number}. {r.name}", c.statement, c.evidence, "[green]holds[/]" if c.holds else "[red]FAILS[/]")
    return table


def _finish(results: Sequence, crashed: Sequence[str], out_dir: Path | None, *, seed: int, quick: bool, as_json: bool,
            strict: bool) -> None:
    index = write_report(results, out_dir, seed=seed, quick=quick, version=__version__) if out_dir is not None else None
    if as_json:
        typer.echo(json.dumps({"report": str(index) if index else None, "experiments": [r.to_dict() for r in results]}, indent=1))
    else:
        out.print(claims_table(results))
        held = sum(c.holds for r in results for c in r.claims)
        total = sum(len(r.claims) for r in results)
        out.print(f"{held} of {total} claims hold" + (f"; wrote {index}" if index else ""), highlight=False)
    if crashed:
        print(f"error: experiment(s) {', '.join(crashed)} raised an exception (shown in the report); please report it", file=sys.stderr)
        raise typer.Exit(1)
    if strict and not all(r.passed for r in results):
        raise typer.Exit(1)


@app.command()
@friendly_errors
def demo(
    out_dir: Path = typer.Option(Path("losslab-report"), "--out", help="folder for index.html, results.json and figures"),
    quick: bool = typer.Option(False, "--quick", help="small settings: the whole report in under a minute"),
    seed: SeedOpt = 0,
    only: list[str] | None = typer.Option(None, "--only", help=f"run only this experiment (repeatable): {', '.join(NAMES)}"),
    strict: bool = typer.Option(False, "--strict", help="exit with code 1 if any claim fails"),
    as_json: JsonOpt = False,
) -> None:
    """Run the experiments that reproduce the argument and write the HTML report (losslab-report/index.html)."""
    check_report_target(out_dir)
    names = list(dict.fromkeys(only)) if only else list(NAMES)
    experiments = [get_experiment(n) for n in names]
    results, crashed = run_all(experiments, seed=seed, quick=quick)
    _finish(results, crashed, out_dir, seed=seed, quick=quick, as_json=as_json, strict=strict)


def _overrides(pairs: Sequence[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise LosslabError(f"expected --set key=value, got {pair!r}")
        if key.strip() in result:
            raise LosslabError(f"expected each setting once, got --set {key.strip()} twice ({result[key.strip()]!r}, {value.strip()!r}); "
                               "give it once")
        result[key.strip()] = value.strip()
    return result


def _show_settings(settings, *, as_json: bool) -> None:
    """The settings as a table (name, value, what it may be, help), or as JSON {name: value} with --json."""
    import dataclasses

    from ..experiments.settings import describe_settings

    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(settings), indent=1))
        return
    table = Table("setting", "value", "allowed", "meaning", title=f"settings ({type(settings).__module__.rsplit('.', 1)[-1]})")
    for row in describe_settings(settings):
        table.add_row(*(escape(str(row[k])) for k in ("name", "value", "allowed", "help")))  # '[' in a help is text, not markup
    Console().print(table)


@app.command()
@friendly_errors
def experiment(
    name: str = typer.Argument(..., help=f"one of: {', '.join(NAMES)}"),
    set_: list[str] | None = typer.Option(None, "--set", help="change a setting: --set key=value (repeatable)"),
    quick: bool = typer.Option(False, "--quick", help="start from the quick settings"),
    seed: SeedOpt = 0,
    out_dir: Path | None = typer.Option(None, "--out", help="also write a one-experiment report to this folder"),
    show_settings: bool = typer.Option(False, "--show-settings", help="print the settings and exit"),
    strict: bool = typer.Option(False, "--strict", help="exit with code 1 if any claim fails"),
    as_json: JsonOpt = False,
) -> None:
    """Run one experiment of the report, optionally with changed settings (--set key=value)."""
    exp = get_experiment(name)
    overrides = _overrides(set_ or [])
    settings = exp.make_settings(quick=quick, overrides=overrides)
    if show_settings:
        _show_settings(settings, as_json=as_json)
        return
    if out_dir is not None:
        check_report_target(out_dir)
    results, crashed = run_all([exp], seed=seed, quick=quick, overrides=overrides)
    _finish(results, crashed, out_dir, seed=seed, quick=quick, as_json=as_json, strict=strict)
