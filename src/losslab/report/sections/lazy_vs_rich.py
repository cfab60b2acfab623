"""Section 16, lazy against rich: the τ sweep along the trajectory and at its end, and the width exponents."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ...experiments.lazy_vs_rich import LEE_EXPONENT, LazyVsRichMeasured, width_exponent
from ..drawn import Figure, Table, png_figure
from ..plots.curves import panels, two_panels

__all__ = ["FIGURES", "TABLES", "tau_sweep", "tau_table", "width_scaling", "width_table"]


def tau_sweep(m: LazyVsRichMeasured) -> Figure:
    """Left: the distance to the Linearized twin along training, one curve per τ; right: the end of training against τ."""
    fig, left, right = two_panels("distance to the linearisation during training", "at the end of training, against τ")
    for i, (tau, dist) in enumerate(zip(m.taus, m.tau_linear_distance, strict=True)):
        left.plot(m.checkpoints, dist, marker="o", ms=3, lw=1.2, color=f"C{i}", label=f"τ = {tau:g}")
    left.set(yscale="log", xlabel="step", ylabel="‖f − f_lin‖ / ‖f_lin‖")
    left.legend(fontsize=8, loc="lower right")
    travel = [row[-1] for row in m.tau_weight_travel]
    series = (("weight travel", travel, "C0", "o"), ("NTK change", m.tau_ntk_change, "C1", "s"),
              ("‖H − GGN‖/‖H‖", m.tau_nonlinear_share, "C2", "^"), ("test error", m.tau_test_error, "C3", "D"),
              ("test error, linearised", m.tau_linear_test_error, "C3", "x"))
    for label, values, color, marker in series:
        right.plot(m.taus, values, marker=marker, ms=4, lw=1, color=color, ls=":" if marker == "x" else "-", label=label)
    right.set(xscale="log", yscale="log", xlabel="output scale τ", ylabel="relative size")
    right.legend(fontsize=7, loc="lower left")
    caption = (f"Left: how far the network's test outputs are from those of its linearisation at the start, trained with "
               f"the same steps, at {len(m.checkpoints)} points of training; one curve per output scale τ (larger τ: closer). "
               f"Right, at the end: the relative weight travel falls from {travel[0]:.3g} to {travel[-1]:.3g} and the NTK's "
               f"relative change from {m.tau_ntk_change[0]:.3g} to {m.tau_ntk_change[-1]:.3g} as τ grows from {m.taus[0]:g} "
               f"to {m.taus[-1]:g}; the share of H − GGN in the Hessian from {m.tau_nonlinear_share[0]:.3g} to "
               f"{m.tau_nonlinear_share[-1]:.3g}; the test error (share of the target's variance) is "
               f"{m.tau_test_error[0]:.3g} for the rich network and {m.tau_test_error[-1]:.3g} for the lazy one.")
    return png_figure(fig, "tau", caption)  # the report names the file after the experiment: lazy-vs-rich-tau.png


def width_scaling(m: LazyVsRichMeasured) -> Figure:
    """Weight travel and NTK change against the width, NTK and mean-field parameterisations, with the fitted power laws."""
    fig, axes = panels(("NTK parameterisation", "mean-field parameterisation"), wspace=0.3)
    widths = np.array(m.widths, dtype=float)
    said = []
    for ax, (kind, travel, change) in zip(axes, (("NTK", m.ntk_weight_travel, m.ntk_ntk_change),
                                                  ("mean field", m.mf_weight_travel, m.mf_ntk_change)), strict=True):
        for label, values, color in (("weight travel", travel, "C0"), ("NTK change", change, "C1")):
            fit = width_exponent(m.widths, values)
            for row in values:
                ax.plot(widths, row, ls="none", marker="o", ms=3, color=color, alpha=0.6)
            ax.plot(widths, fit.prefactor * widths**fit.slope, color=color, lw=1.2, label=f"{label}: m^{fit.slope:.2f}")
            said.append(f"{label} ({kind} parameterisation) ∝ m^{fit.slope:.2f} (95% CI [{fit.low:.2f}, {fit.high:.2f}])")
        ax.set(xscale="log", yscale="log", xlabel="width m", ylabel="relative change at the end")
        ax.minorticks_off()
        ax.set_xticks(m.widths, [str(w) for w in m.widths])
        _readable_log_ticks(ax.yaxis)
        ax.legend(fontsize=8, loc="best")
    ref = width_exponent(m.widths, m.ntk_weight_travel)
    axes[0].plot(widths, ref.prefactor * widths[0] ** (ref.slope - LEE_EXPONENT) * widths**LEE_EXPONENT, color="k", ls="--",
                 lw=0.8, label="m^(−1/2)")
    axes[0].legend(fontsize=8, loc="best")
    caption = ("Relative weight travel and NTK change at the end of training at τ = 1, against the width, each dot one "
               "initialisation; lines: least-squares power laws (dashed: m^(−1/2) through the first fitted point). "
               + "; ".join(said) + ".")
    return png_figure(fig, "width", caption)


def _readable_log_ticks(axis) -> None:
    """Labels at 1, 2 and 5 times each power of ten on a log axis (a span under a decade otherwise shows one label)."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def tau_table(m: LazyVsRichMeasured) -> Table:
    """Per τ: weight travel, NTK change, largest distance to the linearisation, H − GGN share, test errors, train loss."""
    rows = tuple((tau, row[-1], ntk, max(dist), share, err, lin, loss) for tau, row, ntk, dist, share, err, lin, loss in zip(
        m.taus, m.tau_weight_travel, m.tau_ntk_change, m.tau_linear_distance, m.tau_nonlinear_share, m.tau_test_error,
        m.tau_linear_test_error, m.tau_train_loss, strict=True))
    return Table("The τ sweep at the end of training (NTK parameterisation)",
                 ("τ", "weight travel", "NTK change", "max distance to f_lin", "‖H − GGN‖/‖H‖", "test error",
                  "test error (linearised)", "train loss"), rows)


def width_table(m: LazyVsRichMeasured) -> Table:
    """The fitted width exponents with their 95% confidence intervals."""
    rows = []
    for kind, values in (("NTK, weight travel", m.ntk_weight_travel), ("NTK, NTK change", m.ntk_ntk_change),
                         ("mean field, weight travel", m.mf_weight_travel), ("mean field, NTK change", m.mf_ntk_change)):
        fit = width_exponent(m.widths, values)
        rows.append((kind, fit.slope, fit.low, fit.high))
    return Table("Width exponents b (value ∝ m^b) at τ = 1, least squares on log–log with a 95% t interval",
                 ("quantity", "b", "CI low", "CI high"), tuple(rows))


FIGURES = (tau_sweep, width_scaling)
TABLES = (tau_table, width_table)
