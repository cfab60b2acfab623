"""The ``losslab`` command line: ``check`` (a verdict), ``examples``, ``demo``.

Bad input becomes one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
import html
import json
import os
import sys
import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from . import __version__, data
from ._checks import LosslabError, choice
from .convexity import ConvexityReport, check_convexity
from .examples import EXAMPLES, get_example
from .models import MLP, Linear, Model, Polynomial, RandomFeatures, TwoLayer
from .problem import Problem


def friendly_errors(command):
    """Turn a LosslabError raised by ``command`` into one line on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except LosslabError as err:
            print(f"error: {err}", file=sys.stderr)
            raise typer.Exit(2) from None
        except (MemoryError, RuntimeError) as err:
            if not isinstance(err, MemoryError) and "allocate" not in str(err):
                raise
            print(f"error: out of memory ({str(err).splitlines()[0]}); choose smaller sizes", file=sys.stderr)
            raise typer.Exit(2) from None

    return wrapper


app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Is this loss convex in the parameters, and why (not)?")
out = Console()
MODELS = ("polynomial", "random-features", "linear", "logistic", "two-layer", "mlp", "deep-linear")
COLORS = {"convex": "green", "non-convex": "red", "no violation found": "yellow"}


def build_model(
    name: str, d_in: int, *, width: int, activation: str, degree: int, hidden: str, out_bias: bool, seed: int, d_out: int = 1
) -> Model:
    """The model a CLI name and options describe, for inputs of width ``d_in`` (and ``d_out`` logits: mlp only)."""
    name = choice("model", name, MODELS)
    if d_out != 1 and name not in ("mlp", "deep-linear"):
        raise LosslabError(f"expected --model mlp or deep-linear for {d_out} class logits (cross_entropy), got --model {name}")
    if name == "polynomial":
        return Polynomial(d_in, degree)
    if name == "random-features":
        return RandomFeatures(d_in, width, activation, seed=seed)
    if name in ("linear", "logistic"):
        return Linear(d_in, output="sigmoid" if name == "logistic" else None)
    if name == "two-layer":
        return TwoLayer(d_in, width, activation, out_bias=out_bias)
    try:
        sizes = [int(w) for w in hidden.split(",") if w.strip()]
    except ValueError:
        raise LosslabError(f"expected --hidden as comma-separated widths like 8,8, got {hidden!r}") from None
    return MLP([d_in, *sizes, d_out], "identity" if name == "deep-linear" else activation)


def print_report(report: ConvexityReport, problem: Problem) -> None:
    """The verdict, its evidence, and what was tried, for a person."""
    color = COLORS[report.verdict]
    out.print(f"[bold]{report.problem}[/bold]")
    out.print(f"verdict: [bold {color}]{report.verdict}[/bold {color}]")
    out.print(report.explanation(), highlight=False)
    if report.witness is not None:
        check = report.witness.verify(problem)
        la, lb, lm = check.losses
        out.print(f"  re-checked in float64: L(a) = {la:.10g}, L(b) = {lb:.10g}, L(middle) = {lm:.10g}, "
                  f"gap = {check.gap:.6g} > bound = {check.bound:.3g}: {'holds' if check.holds else 'FAILS'}", highlight=False)
    if report.search is not None:
        s = report.search
        out.print(f"  tried: {s.chords} chords — " + ", ".join(f"{k} {v}" for k, v in s.by_strategy.items()), highlight=False)
        out.print("  around: " + "; ".join(s.centers), highlight=False)
        for where, value in s.curvature:
            out.print(f"  smallest Hessian eigenvalue {value:.4g} at {where}", highlight=False)
    if report.by_group:
        table = Table("group", "verdict", "evidence", title="each group alone, the others fixed")
        for g, r in report.by_group.items():
            evidence = r.proof.rule if r.proof else r.witness.source if r.witness else f"{r.search.chords} chords"
            table.add_row(g, f"[{COLORS[r.verdict]}]{r.verdict}[/]", evidence)
        out.print(table)


@app.command()
@friendly_errors
def check(
    model: str = typer.Option("two-layer", help=f"one of: {', '.join(MODELS)}"),
    data_name: str = typer.Option("cubic", "--data", help=f"one of: {', '.join(data.DATASETS)}"),
    n: int = typer.Option(200, help="number of examples"),
    loss: str = typer.Option("mse", help="mse, bce or cross_entropy"),
    width: int = typer.Option(8, help="hidden width (two-layer, random-features, mlp)"),
    activation: str = typer.Option("relu", help="relu, tanh, sigmoid or identity"),
    degree: int = typer.Option(3, help="polynomial degree"),
    hidden: str = typer.Option("8,8", help="mlp hidden widths, comma-separated"),
    out_bias: bool = typer.Option(False, help="two-layer: add an output bias c"),
    group: list[str] = typer.Option(None, help="analyse these groups only (repeatable), the others fixed at init"),
    l2: float = typer.Option(0.0, help="weight of l2·‖θ‖²"),
    example: str = typer.Option(None, help=f"a built-in example instead of --model/--data: {', '.join(EXAMPLES)}"),
    seed: int = typer.Option(0, help="seed for data, init and the witness search"),
    budget: int = typer.Option(4000, help="most chords the witness search evaluates"),
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
) -> None:
    """Is the loss convex in the parameters? A proof, a certified witness, or what was tried."""
    if example:
        if group:
            raise LosslabError(f"expected either --example or --group, got both (--example {example} fixes its own groups)")
        problem, groups = get_example(example).build(seed)
    else:
        X, y = data.make(data_name, n, seed=seed)
        classes = int(y.max()) + 1 if loss == "cross_entropy" and not y.dtype.is_floating_point else 1
        net = build_model(model, X.shape[1], width=width, activation=activation, degree=degree, hidden=hidden,
                          out_bias=out_bias, seed=seed, d_out=classes)
        problem = Problem(net, X, y, loss=loss, l2=l2)
        groups = list(group) if group else None
    with Console(stderr=True).status("looking for a proof, then for a witness…") as status:
        report = check_convexity(problem, groups=groups, seed=seed, budget=budget, progress=status.update)
    if as_json:
        result = report.to_dict()
        result["witness_verified"] = report.witness.verify(problem).holds if report.witness else None
        typer.echo(json.dumps(result, indent=2))
    else:
        print_report(report, problem)


@app.command()
def examples() -> None:
    """List the built-in examples and the verdict theory predicts for each."""
    table = Table("name", "problem", "expected", "why")
    for e in EXAMPLES.values():
        table.add_row(e.name, e.title, e.expected, e.why)
    out.print(table)


@app.command()
@friendly_errors
def demo(
    out_dir: Path = typer.Option(Path("losslab-report"), "--out", help="folder for results.json and index.html"),
    quick: bool = typer.Option(False, help="smaller search budgets"),
    seed: int = typer.Option(0, help="seed for everything"),
) -> None:
    """Verdicts on every built-in example, checked against theory; writes results.json and index.html."""
    _check_writable(out_dir)
    rows = []
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("checking examples", total=len(EXAMPLES))
        for e in EXAMPLES.values():
            progress.update(task, description=f"checking {e.name}")
            problem, groups = e.build(seed)
            report = check_convexity(problem, groups=groups, seed=seed, budget=1000 if quick else 4000, by_group=False)
            verified = report.witness.verify(problem).holds if report.witness else None
            rows.append({"name": e.name, "title": e.title, "expected": e.expected, "why": e.why,
                         "agrees": report.verdict == e.expected, "witness_verified": verified, "report": report.to_dict()})
            progress.advance(task)
    table = Table("example", "theory", "verdict", "agrees", title="losslab verdicts")
    for r in rows:
        v = r["report"]["verdict"]
        table.add_row(r["name"], r["expected"], f"[{COLORS[v]}]{v}[/]", "yes" if r["agrees"] else "[red]NO[/red]")
    out.print(table)
    payload = {"version": __version__, "seed": seed, "quick": quick, "examples": rows}
    _write_atomic(out_dir / "results.json", json.dumps(payload, indent=2))
    _write_atomic(out_dir / "index.html", _html(payload))
    out.print(f"wrote {out_dir / 'index.html'} and {out_dir / 'results.json'}", highlight=False)


def _html(payload: dict) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(r['name'])}</td><td>{html.escape(r['title'])}</td><td>{html.escape(r['expected'])}</td>"
        f"<td class='{html.escape(r['report']['verdict']).replace(' ', '-')}'>{html.escape(r['report']['verdict'])}</td>"
        f"<td>{'yes' if r['agrees'] else 'NO'}</td><td>{html.escape(r['report']['explanation'])}</td></tr>"
        for r in payload["examples"]
    )
    return (
        "<!doctype html><meta charset='utf-8'><title>losslab verdicts</title>"
        "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}"
        "td,th{border-bottom:1px solid #ddd;padding:.4em;vertical-align:top}.convex{color:green}.non-convex{color:#b00}"
        ".no-violation-found{color:#a60}</style><h1>losslab verdicts</h1>"
        f"<p>losslab {html.escape(payload['version'])}, seed {payload['seed']}. A verdict is <b>convex</b> only with a proof, "
        "<b>non-convex</b> only with a chord witness re-checked in float64; otherwise <b>no violation found</b>.</p>"
        f"<table><tr><th>example</th><th>problem</th><th>theory</th><th>verdict</th><th>agrees</th><th>evidence</th></tr>{rows}</table>"
    )


def _check_writable(folder: Path) -> None:
    """Fail before any work if ``folder`` cannot be created and written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise LosslabError(f"expected --out to be a folder losslab can write, got {str(folder)!r}: {err.strerror or err}") from None


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"losslab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version")) -> None:
    """Is this loss convex in the parameters, and why (not)?"""


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run()
