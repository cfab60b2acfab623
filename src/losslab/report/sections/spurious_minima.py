"""Section 16, spurious minima: the rate of spurious minima against k at n = k and n = k + 1, and the end-point losses."""

from __future__ import annotations

from ...experiments.spurious_minima import CONFIDENCE, SpuriousMinimaMeasured, rate
from ..drawn import Figure, Table, png_figure
from ..plots.curves import two_panels

__all__ = ["FIGURES", "TABLES", "minima_table", "rates_and_losses"]


def rates_and_losses(m: SpuriousMinimaMeasured) -> Figure:
    """Left: the rate of spurious minima with its 95% Wilson interval against k, student widths n = k and k + 1; right: the
    final losses, log y."""
    fig, left, right = two_panels("runs ending at a spurious minimum", "loss F at the end of each run")
    for offset, label, color in ((0, "student width n = k", "C3"), (1, "student width n = k + 1", "C0")):
        cs = [c for c in m.configs if c["n"] == c["k"] + offset]
        rs = [rate(c) for c in cs]
        yerr = [[100 * (r - lo) for r, lo, _ in rs], [100 * (hi - r) for r, _, hi in rs]]
        left.errorbar([c["k"] for c in cs], [100 * r for r, _, _ in rs], yerr=yerr,
                      fmt="o-", ms=4, capsize=3, color=color, label=label)
        for c in cs:
            xs = [c["k"] + 0.3 * (offset - 0.5) + 0.1 * ((j % 7) / 7 - 0.5) for j in range(len(c["final_losses"]))]
            right.scatter(xs, [max(v, 1e-16) for v in c["final_losses"]], s=4, color=color, alpha=0.5,
                          label=label if c is cs[0] else None)
    left.set(xlabel="teacher width k", ylabel="% of runs", xticks=m.ks)
    left.legend(fontsize=8, loc="upper left")
    right.axhline(m.threshold, color="k", ls="--", lw=1, label=f"threshold {m.threshold:g}")
    right.set(yscale="log", xlabel="teacher width k", ylabel="F at the end", xticks=m.ks)
    right.legend(fontsize=8, loc="center left")
    at_k = [c for c in m.configs if c["n"] == c["k"]]
    first, last = rate(at_k[0])[0], rate(at_k[-1])[0]
    caption = (f"Left: the share of {m.configs[0]['starts']} gradient-descent runs per (k, n) — teacher width k, student "
               f"width n — that end at a spurious minimum (bars: {CONFIDENCE:.0%} Wilson score intervals, never empty at 0 "
               f"runs); at n = k it goes from {first:.1%} at k = {m.ks[0]} to "
               f"{last:.1%} at k = {m.ks[-1]}. Right: the population loss F at each run's end point (log scale; points "
               f"spread sideways to be seen): global minima end near zero, spurious minima above the dashed threshold "
               f"in a few distinct levels, one per class of minima.")
    return png_figure(fig, "rates-and-losses", caption)


def minima_table(m: SpuriousMinimaMeasured) -> Table:
    """Per (k, n): the counts, and per class of spurious end points its loss, count, kind and extreme Hessian eigenvalues."""
    rows = []
    for c in m.configs:
        r, lo, hi = rate(c)
        head = (c["k"], c["n"], c["global"], c["spurious_minima"], c["other_spurious"], c["not_converged"],
                f"{r:.1%} [{lo:.1%}, {hi:.1%}]")
        if not c["classes"]:
            rows.append((*head, "–", "–", "–", "–"))
        for j, cl in enumerate(c["classes"]):
            rows.append((*(head if j == 0 else ("",) * len(head)), cl["loss"], cl["count"], cl["kind"],
                         f"{cl['min_eig']:.3g} ± {cl['min_bound']:.1g} … {cl['max_eig']:.3g}"))
    return Table("End points per teacher width k and student width n, and the classes of spurious ones (by loss, up to "
                 "symmetry) with the Hessian "
                 "eigenvalue range of a representative (Lanczos, ± its bound)",
                 ("k", "n", "global", "spurious minima", "other", "not converged", f"rate [{CONFIDENCE:.0%} Wilson]",
                  "class loss F", "runs",
                  "kind", "λ_min … λ_max"), tuple(rows))


FIGURES = (rates_and_losses,)
TABLES = (minima_table,)
