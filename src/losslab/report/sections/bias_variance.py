"""Section 5, bias–variance: the decomposition against the degree, and the mean fit ± its spread for a few degrees."""

from __future__ import annotations

from matplotlib.ticker import MaxNLocator

from ...experiments._polyfit import polyval
from ...experiments.bias_variance import BiasVarianceMeasured
from ..drawn import Figure, Table, png_figure
from ..plots.curves import two_panels

__all__ = ["FIGURES", "TABLES", "bias_variance", "decomposition_table"]


def bias_variance(m: BiasVarianceMeasured) -> Figure:
    """Left: bias², variance, noise and their sum against the degree; right: mean fit ± one sd over the draws."""
    degrees, dmax = m.degrees, m.degrees[-1]
    fig, left, right = two_panels(f"decomposition over {m.draws} noise draws", "mean fit ± one standard deviation over the draws")
    left.plot(degrees, m.total, "o-", color="k", lw=2, label="test error (total)")
    left.plot(degrees, m.bias2, "s-", color="C0", label="bias²")
    left.plot(degrees, m.variance, "^-", color="C3", label="variance")
    left.plot(degrees, m.variance_theory, color="C3", ls=":", lw=1, label="σ²·p/n (theory)")
    left.axhline(m.noise, color="0.5", ls="--", lw=1, label="noise σ²")
    left.set(xlabel="polynomial degree", ylabel="error at the training inputs")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.legend(fontsize=8)
    grid = m.band_x
    for degree, mean, spread, color in zip(m.band_degrees, m.band_mean, m.band_sd, ("C0", "C2", "C3"), strict=False):
        right.fill_between(grid, mean - spread, mean + spread, color=color, alpha=0.25, lw=0)
        right.plot(grid, mean, color=color, lw=1.8, label=f"degree {degree}: mean fit ± 1 sd")
    right.plot(grid, polyval(m.truth, grid), "k--", lw=1.5, label="truth", zorder=5)
    right.plot(m.x, m.g, "k|", ms=10, label="training inputs")
    right.set(xlabel="x", ylim=(-1.2, 1.2))
    right.legend(fontsize=8, loc="lower left")
    return png_figure(
        fig, "bias-variance",
        "Left: bias² (blue) falls as features are added and vanishes once the basis contains the cubic; the variance (red) "
        "grows by σ²/n per feature (dotted: theory); their sum plus the noise σ² (dashed) is the U-shaped test error (black), "
        f"lowest at degree {m.best_degree}. Right: the average fit (line) and its spread over the draws (band): degree 1 is stable "
        f"but wrong (bias), degree {dmax} contains the cubic, so its expected fit is the truth (no bias), but each fit moves "
        f"with the noise (variance), most of all between and beyond the training inputs. Where its band is wide, the mean of "
        f"{m.draws} draws still wanders off the truth: that is the variance left in an average of {m.draws} fits, not bias.",
    )


def decomposition_table(m: BiasVarianceMeasured) -> Table:
    """Per degree: bias², variance (and its theory), noise, their total and the directly averaged error."""
    return Table(f"Decomposition at the training inputs ({m.draws} noise draws, σ = {m.sigma})",
                 ("degree", "bias²", "variance", "σ²p(R−1)/(nR)", "noise", "total", "direct average"),
                 tuple((k, m.bias2[k], m.variance[k], m.variance_theory[k], m.noise, m.total[k], m.direct[k]) for k in m.degrees))


FIGURES = (bias_variance,)
TABLES = (decomposition_table,)
