"""Section 11, sigmoid-mlp: where each run ended, the gradient norms along the runs, the network at each critical point."""

from __future__ import annotations

import torch

from ...experiments.sigmoid_mlp import SigmoidMlpMeasured
from ..drawn import Figure, Table, png_figure
from ..figures import subplots

__all__ = ["COLORS", "FIGURES", "TABLES", "critical_values_table", "final_losses", "fits", "grad_norms"]

COLORS = {"minimum": "C0", "saddle": "C3", "degenerate": "C2", "maximum": "C4", "inconclusive": "C1", "not a critical point": "0.6"}


def final_losses(m: SigmoidMlpMeasured) -> Figure:
    """The final loss of every run, sorted, coloured by the kind of end point (triangles: tied starts)."""
    losses, kinds, tied = m.final_losses, m.run_kinds, m.run_tied
    order = torch.argsort(losses).tolist()
    fig, ax = subplots(figsize=(6, 4))
    for kind in COLORS:
        for is_tied, marker in ((False, "o"), (True, "^")):
            idx = [r for r, i in enumerate(order) if kinds[i] == kind and tied[i] == is_tied]
            if idx:
                ax.scatter(idx, [float(losses[order[r]]) for r in idx], color=COLORS[kind], marker=marker, s=22,
                           label=f"{kind}{' (tied start)' if is_tied else ''}")
    ax.set(xlabel="run (sorted by final loss)", ylabel="final loss L(θ)", yscale="log", title="where each run ended")
    ax.legend(fontsize=7)
    return png_figure(fig, "final-losses",
                      "Final loss of every run, sorted, coloured by what the curvature says the end point is. Several "
                      "plateaus of minima at different heights: local minima that are not global. Triangles: tied starts.")


def grad_norms(m: SigmoidMlpMeasured) -> Figure:
    """‖∇L‖ along every run: the GD steps, then the Newton and damped-Newton iterations."""
    steps = m.gd_steps.to(torch.float64)
    unit = float(steps[-1]) / 40  # width of one Newton / damped-Newton iteration on the x axis
    newton_x = steps[-1] + unit * torch.arange(1, len(m.newton_norms), dtype=torch.float64)
    descent_x = newton_x[-1] + unit * torch.arange(1, len(m.descent_norms), dtype=torch.float64)
    fig, ax = subplots(figsize=(6, 4))
    for k in range(len(m.run_kinds)):
        xs, trace = torch.cat([steps, newton_x]), torch.cat([m.gd_grad_norms[:, k], m.newton_norms[1:, k]])
        if bool(m.pending[k]):
            xs, trace = torch.cat([xs, descent_x]), torch.cat([trace, m.descent_norms[1:, k]])
        ax.plot(xs, trace.clamp_min(1e-18), color=COLORS[m.run_kinds[k]], lw=0.8, alpha=0.7)
    for x, label in ((float(steps[-1]), " Newton"), (float(newton_x[-1]), " damped")):
        ax.axvline(x, color="k", lw=0.8, ls="--")
        ax.text(x, 0.98, label, fontsize=7, va="top", transform=ax.get_xaxis_transform())  # at the top, above the curves
    for kind in sorted(set(m.run_kinds)):
        ax.plot([], [], color=COLORS[kind], label=kind)
    ax.set(xlabel="GD step, then Newton and damped-Newton iterations", ylabel="‖∇L(θ)‖₂", yscale="log",
           title="gradient norm of every run")
    ax.legend(fontsize=7, title="end point", title_fontsize=7, loc="lower left")
    return png_figure(fig, "grad-norms",
                      "Gradient norm along each run, coloured by the kind of end point. GD slows down on plateaus; Newton's "
                      "method lands runs already near a critical point (minimum or saddle) on it to rounding accuracy, and a "
                      "damped Newton descent takes the rest to the minimum below them.")


def fits(m: SigmoidMlpMeasured) -> Figure:
    """The fitted function at one run per distinct critical value, over the data."""
    fig, ax = subplots(figsize=(6, 4))
    ax.scatter(m.data_x, m.data_y, color="k", s=12, label="data", zorder=3)
    for c, (point, curve) in enumerate(zip(m.critical_points, m.fit_curves, strict=True)):
        style = {"minimum": "-", "saddle": "--"}.get(point.kind, ":")
        ax.plot(m.fit_grid, curve, style, color=f"C{c % 10}", lw=1.3, label=f"{point.kind}, L = {point.loss:.4g}")
    ax.set(xlabel="x", ylabel="ŷ", title="the network at each distinct critical point")
    ax.legend(fontsize=7)
    return png_figure(fig, "fits",
                      "The fitted function at one run per distinct critical value (solid: minima, dashed: saddles). Minima "
                      "whose curves coincide are reflections of one another (σ(z) = 1 − σ(−z)) that weight decay prices "
                      "differently; a flat line is the constant fit. A tied start whose units stay equal acts as a single sigmoid step.")


def critical_values_table(m: SigmoidMlpMeasured) -> Table:
    """One row per distinct critical value: the kinds of the runs there, how many, and the Hessian's extreme eigenvalues."""
    return Table(
        "Distinct critical values reached (clustered at relative tolerance 1e-6), with the Hessian's extreme eigenvalues",
        ("loss", "kinds", "runs", "λ_min", "λ_max"),
        tuple((p.loss, ", ".join(f"{k} ×{c}" for k, c in p.kind_counts.items()), p.runs, p.min_eig, p.max_eig)
              for p in m.critical_points),
    )


FIGURES = (final_losses, grad_norms, fits)
TABLES = (critical_values_table,)
