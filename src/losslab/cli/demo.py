"""``losslab demo``: verdicts on every built-in example, checked against theory, written to a folder."""

from __future__ import annotations

import html
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from .. import __version__
from ..convexity import check_convexity
from ..examples import EXAMPLES
from .app import app
from .common import COLORS, check_writable, friendly_errors, out, write_atomic


@app.command()
@friendly_errors
def demo(
    out_dir: Path = typer.Option(Path("losslab-report"), "--out", help="folder for results.json and index.html"),
    quick: bool = typer.Option(False, help="smaller search budgets"),
    seed: int = typer.Option(0, help="seed for everything"),
) -> None:
    """Verdicts on every built-in example, checked against theory; writes results.json and index.html."""
    check_writable(out_dir)
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
    write_atomic(out_dir / "results.json", json.dumps(payload, indent=2))
    write_atomic(out_dir / "index.html", _html(payload))
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
