"""Section 17, mode connectivity: the loss along the naive and aligned segments and the trained curve, and the barriers against width."""

from __future__ import annotations

import math
import statistics

from matplotlib.lines import Line2D

from ...experiments.mode_connectivity import CURVE, ModeConnectivityMeasured, shrink_ratios
from ..drawn import Figure, Table, png_figure
from ..plots.curves import two_panels

__all__ = ["FIGURES", "TABLES", "barrier_table", "paths_and_barriers"]

_FLOOR = 1e-6  # nats: the lowest value drawn on the log axes (a barrier can be ≤ 0)


def paths_and_barriers(m: ModeConnectivityMeasured) -> Figure:
    """Left: L along the naive segment, the aligned segment and the trained curve of the first pair at each width (log y);
    right: the naive and aligned barriers against width (log-log), one marker per pair, and the curve's (first pair)."""
    fig, left, right = two_panels("training loss along the paths (first pair)", "barrier above the endpoints' mean")
    handles = []
    for i, w in enumerate(m.widths):
        color = f"C{i}"
        handles += left.plot(m.t, [max(v, _FLOOR) for v in m.naive[i][0]], color=color, lw=1.4, label=f"h = {w}")
        left.plot(m.t, [max(v, _FLOOR) for v in m.aligned[i][0]], color=color, lw=1.4, ls="--")
        left.plot(m.t, [max(v, _FLOOR) for v in m.curve[i]], color=color, lw=1.4, ls=":")
    styles = [Line2D([], [], color="0.3", lw=1.4, ls=ls, label=label)
              for ls, label in (("-", "straight segment"), ("--", "after weight matching"), (":", "trained curve"))]
    drawn = [max(v, _FLOOR) for rows in (m.naive, m.aligned) for row in rows for v in row[0]] + [max(v, _FLOOR) for r in m.curve for v in r]
    left.set(yscale="log", xlabel="t (0: network a, 1: network b)", ylabel="training cross-entropy (nats)",
             ylim=(min(drawn) / 2, max(drawn) * 2))
    left.legend(handles=handles + styles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3,
                frameon=False)  # below the axes: the axis spans the data, not room for a legend
    means = {name: [statistics.fmean(row) for row in rows] for name, rows in
             (("naive", m.naive_barrier), ("aligned", m.aligned_barrier))}
    for name, color, marker in (("naive", "C3", "o"), ("aligned", "C0", "s")):
        rows = m.naive_barrier if name == "naive" else m.aligned_barrier
        right.plot(m.widths, [max(v, _FLOOR) for v in means[name]], color=color, lw=1.4,
                   label="straight segment" if name == "naive" else "segment after weight matching")
        for w, row in zip(m.widths, rows, strict=True):
            right.scatter([w] * len(row), [max(v, _FLOOR) for v in row], color=color, marker=marker, s=14)
    right.plot(m.widths, [max(v, _FLOOR) for v in m.curve_barrier], color="C2", lw=1.4, ls=":", marker="^",
               label="trained Bézier curve (first pair)")
    right.set(xscale="log", yscale="log", xlabel="hidden width h", ylabel="barrier (nats)")
    right.set_xticks(m.widths, [str(w) for w in m.widths])
    right.minorticks_off()
    right.legend(fontsize=7, loc="lower left")
    ratios = shrink_ratios(m)
    worst_curve = max(c / n[0] if n[0] > 0 else math.inf for c, n in zip(m.curve_barrier, m.naive_barrier, strict=True))
    caption = (
        f"Left: the training loss on the straight segment between two networks trained from different starts (solid), on "
        f"the segment after the second network's hidden units are permuted to match the first's (dashed), and on a "
        f"quadratic Bézier curve with a trained bend (dotted), for the first pair at each width. Right: the barrier — the highest loss on "
        f"the path minus the endpoints' mean — against width (lines: the mean over {len(m.naive_barrier[0])} pairs, "
        f"markers: each pair; the trained curve, triangles, for the first pair only; values below {_FLOOR:g} drawn at "
        f"{_FLOOR:g}). Alignment leaves "
        + ", ".join(f"{r:.0%} (h = {w})" for w, r in zip(m.widths, ratios, strict=True))
        + f" of the straight-line barrier; the curve's barrier is at most {worst_curve:.1%} "
        f"of it (the claim allows {CURVE:.0%})."
    )
    return png_figure(fig, "paths-and-barriers", caption)


def barrier_table(m: ModeConnectivityMeasured) -> Table:
    """Per width and pair: the endpoints' training losses and held-out errors, the barriers (above the mean and the chord)."""
    rows = []
    for i, w in enumerate(m.widths):
        for k in range(len(m.naive_barrier[i])):
            rows.append((w, k, m.losses_a[i][k], m.losses_b[i][k], m.test_errors[i][k][0], m.test_errors[i][k][1],
                         m.naive_barrier[i][k], m.naive_chord_barrier[i][k], m.aligned_barrier[i][k],
                         m.aligned_chord_barrier[i][k], m.curve_barrier[i] if k == 0 else None))
    return Table(f"Barriers (nats) between pairs of networks trained on {m.n_train} digits; held-out error on the other {m.n_test}",
                 ("width", "pair", "L(a)", "L(b)", "error a", "error b", "B naive", "B naive (chord)", "B aligned",
                  "B aligned (chord)", "B curve"), tuple(rows))


FIGURES = (paths_and_barriers,)
TABLES = (barrier_table,)
