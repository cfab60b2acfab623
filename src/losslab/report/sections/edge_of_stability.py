"""Section 18, edge of stability: the loss and the sharpness against the step, with the limit 2/η."""

from __future__ import annotations

import math

from ...experiments.edge_of_stability import BAND, EDGE, EdgeOfStabilityMeasured, tail_median
from ..drawn import Figure, Table, png_figure
from ..plots.curves import two_panels

__all__ = ["FIGURES", "TABLES", "sharpness_and_loss", "sharpness_table"]

LOSS_CEILING = 1e30  # the loss panel's highest y limit (log ticks overflow near 1e308): a diverged run's last losses run off its top


def sharpness_and_loss(m: EdgeOfStabilityMeasured) -> Figure:
    """Left: the training loss against the step (log y); right: λ_max ± its Lanczos bound against the step, and 2/η dashed."""
    fig, left, right = two_panels("training loss", "sharpness λ_max(∇²L)")
    # explicit limits, set before plotting, and values clipped to them: log-scale autoscaling pads in log space and
    # overflows near float64's largest value (a diverged run's last losses)
    shown = [min(v, LOSS_CEILING) for v in m.losses if math.isfinite(v) and v > 0]
    left.set(yscale="log", xlabel="step", ylabel="loss",
             ylim=(min(shown) / 3, min(max(shown) * 3, LOSS_CEILING)) if shown else (1e-3, 1.0))
    left.autoscale(enable=False, axis="y")
    left.plot(range(len(m.losses)), [min(v, LOSS_CEILING) for v in m.losses], color="C0", lw=1)
    if m.diverged_at is not None:
        left.axvline(m.diverged_at, color="k", ls=":", lw=1, label=f"diverged (step {m.diverged_at})")
        left.legend(fontsize=8, loc="upper left")
    steps, lam, bound = m.sharpness_steps, m.sharpness, m.sharpness_bounds
    right.fill_between(steps, [a - b for a, b in zip(lam, bound, strict=True)], [a + b for a, b in zip(lam, bound, strict=True)],
                       color="C3", alpha=0.3, lw=0)
    right.plot(steps, lam, color="C3", lw=1.2, label="λ_max (Lanczos)")
    right.axhline(m.threshold, color="k", ls="--", lw=1, label=f"2/η = {m.threshold:.3g}")
    right.set(xlabel="step", ylabel="λ_max", ylim=(0, 1.15 * max(max(lam), m.threshold)))
    right.legend(fontsize=8, loc="lower right")
    peak, med, thr = max(lam), tail_median(m), m.threshold
    every = f"every {steps[1] - steps[0]} steps" if len(steps) > 1 else f"at step {steps[0]} only"
    said = [f"Right: the largest Hessian eigenvalue by Lanczos {every} (shaded: its error bound, "
            f"at most {max(bound):.1e}), against the stability limit 2/η of a quadratic (dashed)."]
    if lam[0] < 0.5 * thr and peak >= EDGE * thr:
        said.append(f"It starts at {lam[0] / thr:.3g} of 2/η and rises to {peak / thr:.3g} of it")
    else:
        said.append(f"It starts at {lam[0] / thr:.3g} of 2/η; its largest value is {peak / thr:.3g} of it")
    said[-1] += (f"; over the last third its median is {med / thr:.3g} of 2/η"
                 + (" — it hovers at the edge." if BAND[0] * thr <= med <= BAND[1] * thr else "."))
    rises = sum(b > a for a, b in zip(m.losses, m.losses[1:]))
    moves = "falls" if m.losses[-1] < m.losses[0] else "rises"
    left_text = (f"Left: the training loss (log scale) {moves} from {m.losses[0]:.3g} to {m.losses[-1]:.3g}; "
                 f"{rises} of {len(m.losses) - 1} steps raised it." if rises else
                 f"Left: the training loss (log scale) falls from {m.losses[0]:.3g} to {m.losses[-1]:.3g}, at every step.")
    if m.diverged_at is not None:
        left_text = (f"Training diverged at step {m.diverged_at}: the loss became NaN or inf there, and the curves stop at "
                     f"the last finite step (losses above {LOSS_CEILING:.0e} run off the top of the left panel). {left_text}")
    return png_figure(fig, "sharpness-and-loss", " ".join([left_text, *said]))


def sharpness_table(m: EdgeOfStabilityMeasured) -> Table:
    """λ_max at a few recorded steps (start, peak, a few later), with its bound, its ratio to 2/η and the loss."""
    n = len(m.sharpness_steps)
    picks = sorted({0, max(range(n), key=m.sharpness.__getitem__), n // 4, n // 2, (3 * n) // 4, n - 1})
    return Table(f"Sharpness against 2/η = {m.threshold:.4g} (η = {m.lr:g}) at some recorded steps",
                 ("step", "λ_max", "Lanczos bound", "λ_max · η/2", "loss"),
                 tuple((m.sharpness_steps[i], m.sharpness[i], m.sharpness_bounds[i], m.sharpness[i] / m.threshold,
                        m.losses[m.sharpness_steps[i]]) for i in picks))


FIGURES = (sharpness_and_loss,)
TABLES = (sharpness_table,)
