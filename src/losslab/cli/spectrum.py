"""``losslab spectrum``: extreme Hessian eigenvalues with bounds, trace, density, and the H − GGN term."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from .. import __version__
from .._checks import positive_int
from ..curvature import GGNOperator, HessianOperator, classify, eigs, frobenius_norm, nonlinearity_curvature, spectral_density, xtrace
from ..memory import require
from ..problem import Problem
from ..report import check_out_folder, spectrum_png, writing_folder
from ._app import app
from .common import POINTS, AtOpt, TrainStepsOpt, analysis_point, confirm_large, err_console, module_mode, out, problem_command, resolve_at
from .estimate import spectrum_cost


def _eig_rows(result) -> list[dict]:
    """Each eigenvalue (ascending) with its rigorous residual bound and its (gap-estimate) Kato–Temple bound."""
    return [
        {"value": float(v), "bound": float(b), "gap_bound": float(gb), "converged": bool(c)}
        for v, b, gb, c in zip(result.values, result.bounds, result.gap_bounds, result.converged)
    ]


def extreme_eigenvalues(H: HessianOperator, k: int, *, seed: int) -> tuple[list[dict], list[dict], int, str | None]:
    """The k largest (descending) and k smallest (ascending) eigenvalues of ``H``, each listed once.

    When 2k exceeds p (the operator's size) the two ends would overlap and list eigenvalues twice:
    then all p are computed once (Lanczos ``which="both"``), ⌈p/2⌉ listed as largest and ⌊p/2⌋ as
    smallest, and the note (the last item) says so. Returns (largest, smallest, products, note).
    """
    p = H.shape[0]
    if 2 * k <= p:
        top = eigs(H, k=k, which="largest", seed=seed)
        bottom = eigs(H, k=k, which="smallest", seed=seed)
        return _eig_rows(top)[::-1], _eig_rows(bottom), top.matvecs + bottom.matvecs, None
    every = eigs(H, k=p, which="both" if p > 1 else "largest", seed=seed)
    rows = _eig_rows(every)
    n_small = p // 2
    note = (f"--k {k} at each end would list eigenvalues twice: the Hessian has {p} (one per parameter); each is listed once, "
            f"the {p - n_small} largest and the {n_small} smallest")
    return rows[n_small:][::-1], rows[:n_small], every.matvecs, note


@app.command()
@problem_command(activation="tanh", writes=("spectrum", "spectrum.png and spectrum.json"))
def spectrum(
    problem: Problem, groups: list[str] | None, seed: int,
    at: AtOpt = None,
    train_steps: TrainStepsOpt = 300,
    k: int = typer.Option(3, help="how many eigenvalues at each end (largest first, then smallest); when 2k exceeds the number of "
                          "parameters p, all p are listed once: the ceil(p/2) largest and the floor(p/2) smallest"),
    probes: int = typer.Option(10, help="random probes for the trace and the density"),
    *, out_dir: Path, as_json: bool, yes: bool,  # --out, --json, --yes: problem_command(writes=...)
) -> None:
    """The Hessian's spectrum at a point, and how much of it comes from the model being nonlinear in its parameters."""
    k = positive_int("k", k)
    probes = positive_int("probes", probes)
    check_out_folder(out_dir, "spectrum")
    at = resolve_at(problem, at)
    steps = train_steps if at == "trained" else 0
    cost = spectrum_cost(problem, problem.default_theta(seed), probes=probes, k=min(k, problem.n_params), train_steps=steps)
    require(cost.needed, problem.memory_budget, "the Lanczos bases and probes of the spectrum", "--probes or --k")  # before training
    confirm_large("the spectrum", size=probes, unit="probes", cost=cost, budget=problem.memory_budget, yes=yes)
    theta, _ = analysis_point(problem, at, train_steps=train_steps, seed=seed)
    with err_console.status("Lanczos for the extreme eigenvalues…") as status:
        H = HessianOperator(problem, theta)
        largest, smallest, eig_products, k_note = extreme_eigenvalues(H, k, seed=seed)
        status.update("trace (XTrace) and density (stochastic Lanczos quadrature)…")
        trace = xtrace(H, samples=max(16, 3 * probes), seed=seed)
        density = spectral_density(H, probes=probes, steps=min(40, problem.n_params), seed=seed)
        status.update("the nonlinearity term H − GGN…")
        D = nonlinearity_curvature(problem, theta)
        d_norm = frobenius_norm(D, samples=max(2, probes), seed=seed)
        h_norm = frobenius_norm(H, samples=max(2, probes), seed=seed)
        g_norm = frobenius_norm(GGNOperator(problem, theta), samples=max(2, probes), seed=seed)
        d_extreme = eigs(D, k=1, which="both", seed=seed) if problem.n_params > 1 else eigs(D, k=1, seed=seed)
        point = classify(problem, theta, seed=seed)
    summary = {
        "problem": problem.describe(),
        "mode": module_mode(problem),
        "at": at,
        "gradient_norm": point.grad_norm,
        "critical_point": {"kind": point.kind, "reason": point.reason},
        "largest": largest,
        "smallest": smallest,
        "k_note": k_note,
        "trace": {"estimate": trace.estimate, "stderr": trace.stderr, "method": trace.method},
        "hessian_frobenius_norm": h_norm.estimate,
        "hessian_frobenius_norm_stderr": h_norm.stderr,
        "ggn_frobenius_norm": g_norm.estimate,
        "ggn_frobenius_norm_stderr": g_norm.stderr,
        "nonlinearity_term": {
            "frobenius_norm": d_norm.estimate,
            "frobenius_norm_stderr": d_norm.stderr,
            "relative_to_hessian": d_norm.estimate / h_norm.estimate if h_norm.estimate else None,
            "extreme_eigenvalues": _eig_rows(d_extreme),
        },
        "hessian_vector_products": eig_products + trace.matvecs + density.matvecs,
        "files": {"png": str(out_dir / "spectrum.png"), "json": str(out_dir / "spectrum.json")},
        "seed": seed,
    }
    with writing_folder(out_dir, "spectrum", version=__version__) as tmp:
        spectrum_png(density.grid, density.density, tmp / "spectrum.png", eigenvalues=[r["value"] for r in smallest + largest],
                     title=f"Hessian spectral density at the {POINTS[at]}")
        (tmp / "spectrum.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    out.print(f"[bold]{summary['problem']}[/bold] at the {POINTS[at]}: ‖∇L‖ = {point.grad_norm:.3g}, {point.kind} ({point.reason})",
              highlight=False)
    table = Table("end", "eigenvalue", "± residual bound", "± gap bound", "converged",
                  caption="residual bounds are rigorous; gap bounds (Kato–Temple) assume no eigenvalue was missed nearby")
    for end, rows in (("largest", largest), ("smallest", smallest)):
        for r in rows:
            table.add_row(end, f"{r['value']:.6g}", f"{r['bound']:.2g}", f"{r['gap_bound']:.2g}", "yes" if r["converged"] else "no")
    out.print(table)
    if k_note:
        out.print(f"note: {k_note}", highlight=False)
    out.print(f"trace ≈ {trace.estimate:.6g} ± {trace.stderr:.2g} (XTrace)", highlight=False)
    nl = summary["nonlinearity_term"]
    rel = f" = {nl['relative_to_hessian']:.3g} of ‖H‖_F" if nl["relative_to_hessian"] is not None else ""
    out.print(f"‖H‖_F ≈ {h_norm.estimate:.4g} ± {h_norm.stderr:.2g}, ‖GGN‖_F ≈ {g_norm.estimate:.4g} ± {g_norm.stderr:.2g} "
              f"({d_norm.probes} probes each; more with --probes)", highlight=False)
    out.print(f"H − GGN (curvature from the model being nonlinear in its parameters): ‖·‖_F ≈ {nl['frobenius_norm']:.4g} "
              f"± {d_norm.stderr:.2g}{rel}", highlight=False)
    out.print("wrote " + ", ".join(summary["files"].values()), highlight=False)
