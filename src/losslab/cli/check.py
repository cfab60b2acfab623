"""``losslab check`` and ``losslab examples``: the convexity verdict, with its evidence."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from ..convexity import ConvexityReport, check_convexity, prove_convex
from ..examples import EXAMPLES
from ..problem import Problem
from ._app import app
from .common import COLORS, JsonOpt, YesOpt, confirm_large, err_console, module_mode, out, problem_command
from .estimate import check_cost


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
@problem_command()
def check(
    problem: Problem, groups: list[str] | None, seed: int,
    budget: int = typer.Option(4000, help="most chords the witness search evaluates"),
    as_json: JsonOpt = False,
    yes: YesOpt = False,
) -> None:
    """Is the loss convex in the parameters (a built-in model, or yours: --model-file)? A proof, a certified witness, or what was tried."""
    if not prove_convex(problem):  # a proof is immediate; the witness search is what takes long
        cost = check_cost(problem, problem.default_theta(seed), budget=budget, train_steps=300)
        confirm_large("the convexity check", size=budget, unit="chords", cost=cost, budget=problem.memory_budget, yes=yes)
    with err_console.status("looking for a proof, then for a witness…") as status:
        report = check_convexity(problem, seed=seed, budget=budget, progress=status.update)
    if as_json:
        result = report.to_dict()
        result["witness_verified"] = report.witness.verify(problem).holds if report.witness else None
        result["mode"] = module_mode(problem)
        typer.echo(json.dumps(result, indent=2))
    else:
        print_report(report, problem)


@app.command()
def examples(as_json: JsonOpt = False) -> None:
    """List the built-in examples and the verdict theory predicts for each."""
    if as_json:
        rows = [{"name": e.name, "problem": e.title, "expected": e.expected, "why": e.why} for e in EXAMPLES.values()]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("name", "problem", "expected", "why")
    for e in EXAMPLES.values():
        table.add_row(e.name, e.title, e.expected, e.why)
    out.print(table)
