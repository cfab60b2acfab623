"""Section 9, sigmoid-loss: both losses over the (w₁, c) plane, both along the witness's line, and the losses at the fits."""

from __future__ import annotations

from ...experiments.sigmoid_loss import SigmoidLossMeasured
from ..drawn import Figure, Table, png_figure
from ..figures import subplots
from ..plots.surfaces import contour

__all__ = ["FIGURES", "TABLES", "chord", "fits_table", "planes"]


def planes(m: SigmoidLossMeasured) -> Figure:
    """Filled contours of both losses on the (w₁, c) plane, the fits (white dots) and the certified chord (orange)."""
    fig, axes = subplots(1, 2, figsize=(9.6, 3.6))
    labels = ("w₁", "c")  # the claims' names (w₁ is the only weight when d_in = 1)
    panels = ((axes[0], "bce", "cross-entropy: convex", m.fit_bce), (axes[1], "mse", "squared loss: not convex", m.fit_mse))
    for ax, name, title, fit in panels:
        grid = m.planes[name]
        contour(ax, grid.alphas, grid.betas, grid.losses, title=title, violations=grid.locations, labels=labels)
        if m.d_in == 1:
            ax.plot([float(fit[0])], [float(fit[-1])], "o", color="white", mec="k", ms=6)
    if m.witness["source"] != "none" and m.d_in == 1:
        a, b = m.witness["a"], m.witness["b"]
        axes[1].plot([a[0], b[0]], [a[-1], b[-1]], "-", color="orange", lw=2, label="witness chord")
        axes[1].legend(loc="upper right", fontsize=7, framealpha=0.8)
    fig.subplots_adjust(wspace=0.42)  # room for the left colourbar's label before the right panel's c
    return png_figure(
        fig, "planes",
        "The two losses of σ(w·x + c) over " + ("the whole (w, c) plane" if m.d_in == 1 else "the (w₁, c) plane through 0")
        + " (white dot: the fit). The cross-entropy (left) is a single smooth valley with no negative second difference. The "
        "squared loss (right) flattens into plateaus where the sigmoid saturates and bends down on the shoulders between "
        "(red dots: negative second differences, confirmed in float64); the orange segment is the certified chord.",
    )


def chord(m: SigmoidLossMeasured) -> Figure:
    """Both losses along the witness's line, with the chord between its ends and the certified gap (a note without a witness)."""
    w = m.witness
    if not len(m.chord_t):
        fig, ax = subplots(figsize=(6, 1.2))
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"no witness: the search of {w['chords']} chords found none to draw", ha="center", va="center")
        return png_figure(fig, "chord", "The witness search found no chord below the squared loss, so there is no line to show.")
    fig, axes = subplots(1, 2, figsize=(9, 3.4))
    lam = w["lam"]
    t = m.chord_t.numpy()
    for ax, name, title in ((axes[0], "mse", "squared loss"), (axes[1], "bce", "cross-entropy")):
        L = m.chord_losses[name].numpy()
        ends = [float(L[(t == 0).nonzero()[0][0]]), float(L[(t == 1).nonzero()[0][0]])]
        ax.plot(t, L, color="C0", lw=2, label=f"L((1−t)a + t·b), {title}")
        ax.plot([0, 1], ends, "--", color="C3", lw=1.5, label="chord between a and b")
        ax.axvline(1 - lam, color="0.6", lw=1, ls=":")
        if name == "mse":  # the certificate: the loss at the middle point against the chord there
            ax.plot([1 - lam] * 2, [w["losses"][2], lam * w["losses"][0] + (1 - lam) * w["losses"][1]], "o-",
                    color="k", ms=4, lw=1, label=f"gap {w['gap']:.2g} at t = {1 - lam:g}")
        ax.set(xlabel="t  (a at t = 0, b at t = 1)", ylabel="loss", title=title)
        ax.legend(fontsize=7)
    fig.subplots_adjust(wspace=0.3)
    return png_figure(
        fig, "chord",
        f"Both losses on the line through the witness points a (t = 0) and b (t = 1), extended by half its length on each "
        f"side. The squared loss (left) rises above its chord (dashed) at the dotted line, t = {1 - lam:g} (the point "
        f"λa + (1 − λ)b with the evidence's λ = {lam:g}): the certificate of non-convexity; it is flat where σ saturates. "
        "The cross-entropy (right) stays below every chord.",
    )


def fits_table(m: SigmoidLossMeasured) -> Table:
    """Both losses at the two fits and at the far point."""
    points = (("cross-entropy fit", "fit_bce", m.fit_bce), ("squared-loss fit", "fit_mse", m.fit_mse),
              ("far point", "far_point", m.far_point))
    return Table(
        "The two losses at their fits (gradient descent from the same start) and far from them",
        ("point", "w", "c", "cross-entropy", "squared loss"),
        tuple((name, [round(float(v), 4) for v in t[:-1]], float(t[-1]), m.point_losses[key]["bce"], m.point_losses[key]["mse"])
              for name, key, t in points),
    )


FIGURES = (planes, chord)
TABLES = (fits_table,)
