"""``losslab landscape``: a 1-D or 2-D slice of the loss, as data (.npz), PNG and interactive HTML."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .. import __version__
from .._checks import LosslabError, choice, positive_int
from ..landscape import discrete_convexity, eigenvector_directions, filter_normalized, line, pca_directions, plane, random_direction
from ..problem import Problem
from ..random_streams import child_seed
from ..report import check_out_folder, line_png, plane_contour_png, plane_surface_html, writing_folder
from ._app import app
from .common import POINTS, AtOpt, TrainStepsOpt, analysis_point, confirm_large, err_console, module_mode, out, problem_command, resolve_at
from .estimate import landscape_cost

DIRECTIONS = ("filter", "random", "eigen", "pca")


@app.command()
@problem_command(activation="tanh", writes=("landscape", "landscape.npz, .png and .html"))
def landscape(
    problem: Problem, groups: list[str] | None, seed: int,
    dims: int = typer.Option(2, help="1: the line from the initial (or given) point to the trained point; 2: a plane around --at"),
    directions: str = typer.Option(
        "filter", help="plane directions: filter (Li et al. 2018), random, eigen (top-2 Hessian), pca (of training)"
    ),
    at: AtOpt = None,
    train_steps: TrainStepsOpt = 300,
    steps: int = typer.Option(41, help="grid points per axis"),
    span: float = typer.Option(1.0, help="half-width of the plane in units of the directions"),
    *, out_dir: Path, as_json: bool, yes: bool,  # --out, --json, --yes: problem_command(writes=...)
) -> None:
    """A slice of the loss landscape: the line init → trained, or a plane; with its discrete convexity."""
    dims = positive_int("dims", dims)
    if dims not in (1, 2):
        raise LosslabError(f"expected --dims 1 or 2, got --dims {dims}")
    choice("--directions", directions, DIRECTIONS)
    check_out_folder(out_dir, "landscape")
    if dims == 1 and at is not None:
        raise LosslabError(
            f"expected no --at with --dims 1 (the line always runs from the starting point to the trained point), got --at {at}"
        )
    if directions == "pca" and dims == 2 and at not in (None, "trained"):
        raise LosslabError(
            f"expected --at trained with --directions pca (PCA directions come from a training run and the plane is centred at its "
            f"end), got --at {at}; use --directions filter, random or eigen for a plane around another point"
        )
    if directions == "pca" and dims == 2 and train_steps < 2:
        raise LosslabError(f"expected --train-steps >= 2 with --directions pca (two directions need a trajectory that moves in two), "
                           f"got --train-steps {train_steps}")
    at = "trained" if directions == "pca" and dims == 2 else resolve_at(problem, at)
    needs_training = dims == 1 or at == "trained"
    points = positive_int("steps", steps) ** dims
    cost = landscape_cost(problem, problem.default_theta(seed), points=points, train_steps=train_steps if needs_training else 0)
    confirm_large("the slice", size=points, unit="points", cost=cost, budget=problem.memory_budget, yes=yes)
    center, run = analysis_point(problem, "trained" if needs_training else at, train_steps=train_steps, seed=seed)
    with err_console.status("evaluating the slice…"):
        if dims == 1:
            result = line(problem, run.thetas[0], run.theta, steps=steps, extend=(0.25, 0.25))
            start = POINTS["weights" if module_mode(problem) else "init"]
            title = f"loss along the line from the {start} to the trained point"
        else:
            if at != "trained":
                center = problem.default_theta(seed)
            if directions == "pca":
                pca = pca_directions(run.thetas, k=2)
                d1, d2 = pca.directions[0], pca.directions[1]
                center = run.theta
            elif directions == "eigen":
                d1, d2 = eigenvector_directions(problem, center, k=2, which="largest", seed=seed).directions
            elif directions == "random":
                d1, d2 = (random_direction(problem, seed=child_seed(seed, "directions", k)) for k in (1, 2))
            else:
                d1, d2 = (filter_normalized(problem, center, random_direction(problem, seed=child_seed(seed, "directions", k)))
                          for k in (1, 2))
            result = plane(problem, center, d1, d2, steps=steps, span=span, seed=seed)
            title = f"loss on a plane ({directions} directions) around the {POINTS[at]}"
        convexity = discrete_convexity(result, problem=problem)
    names = {"data": "landscape.npz", "png": "landscape.png", **({"html": "landscape.html"} if dims == 2 else {})}
    with writing_folder(out_dir, "landscape", version=__version__) as tmp:
        result.save(tmp / names["data"])
        (line_png if dims == 1 else plane_contour_png)(result, tmp / names["png"], title=title)
        if dims == 2:
            plane_surface_html(result, tmp / names["html"], title=title)
    files = {key: str(out_dir / name) for key, name in names.items()}
    summary = {
        "problem": problem.describe(),
        "mode": module_mode(problem),
        "at": at,
        "dims": dims,
        "method": getattr(result, "method", "grid"),
        "directions": directions if dims == 2 else f"{'weights' if module_mode(problem) else 'init'} → trained",
        "loss_min": float(result.losses.min()),
        "loss_max": float(result.losses.max()),
        "discrete_convexity": {
            "second_differences_checked": convexity.checked,
            "negative_beyond_rounding": convexity.violations,
            "nonfinite_points": convexity.nonfinite,
            "clean": convexity.clean,
            "most_negative": convexity.most_negative,
            "at": list(convexity.most_negative_at) if convexity.most_negative_at else None,
            "confirmed_in_float64": convexity.confirmed_in_float64,
        },
        "files": files,
        "seed": seed,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    out.print(f"[bold]{summary['problem']}[/bold]")
    out.print(f"{title}: {result.losses.numel()} points ({summary['method']}), "
              f"loss from {summary['loss_min']:.6g} to {summary['loss_max']:.6g}", highlight=False)
    dc = summary["discrete_convexity"]
    count = dc["negative_beyond_rounding"]
    verdict = "none" if count == 0 else f"{count} (most negative {dc['most_negative']:.3g})"
    out.print(f"negative second differences beyond rounding: {verdict} of {dc['second_differences_checked']}", highlight=False)
    if dc["nonfinite_points"]:
        out.print(f"[red]{dc['nonfinite_points']} points have a non-finite loss (overflow): the slice is not clean[/red]")
    out.print("wrote " + ", ".join(files.values()), highlight=False)
