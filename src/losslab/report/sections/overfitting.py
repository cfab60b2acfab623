"""Section 3, overfitting: training and test error against the degree, and the best and the interpolating fit."""

from __future__ import annotations

import torch

from ...experiments._polyfit import polyval
from ...experiments.overfitting import OverfittingMeasured
from ..drawn import Figure, Table, png_figure
from ..plots.curves import two_panels

__all__ = ["FIGURES", "TABLES", "caption", "errors_table", "train_test_vs_degree"]


def caption(m: OverfittingMeasured) -> str:
    """The figure's caption, each statement chosen by the measured numbers (so it never says what the run did not show)."""
    n, top, best, s2 = len(m.y), m.degrees[-1], m.best_degree, m.noise_variance
    interp, train, test = n - 1, m.train_mse, m.test_mse
    reaches = (f"reaches ~0 ({train[interp]:.0e}) at degree {interp}, where the basis interpolates the {n} noisy points"
               if train[interp] <= 0.01 * s2 else f"is still {train[interp]:.1e} at degree {interp} (no interpolation)")
    ratio = test[-1] / test[best]
    rises = f"then explodes, {ratio:.2g} times higher at degree {top}" if ratio >= 10 else f"is {ratio:.2g} times higher at degree {top}"
    close = m.best_excess <= s2
    follows = (f"follows the truth: its mean squared distance from it, E[(f̂ − g)²] = {m.best_excess:.1e}, is {m.best_excess / s2:.2f}·σ²"
               if close else f"stays E[(f̂ − g)²] = {m.best_excess:.1e} = {m.best_excess / s2:.2f}·σ² from the truth, more than σ²")
    return (
        f"Left: training error (blue) falls with the degree and {reaches}; the exact test error on [−1, 1] (red, log scale) is "
        f"lowest at degree {best} and {rises}. Right: the training inputs, one drawn uniformly in each of {n} equal cells of "
        f"[−1, 1]; the degree-{best} fit {follows}; the degree-{top} fit passes through every point and swings between them (clipped)."
    )


def train_test_vs_degree(m: OverfittingMeasured) -> Figure:
    """Left: training and exact test MSE against the degree (log scale); right: the best-degree and the largest fit on the data."""
    degrees, best = m.degrees, m.best_degree
    fig, left, right = two_panels("training and test error against the degree", "fits on the training data")
    left.plot(degrees, m.train_mse, "o-", color="C0", label="training MSE")
    left.plot(degrees, m.test_mse, "s-", color="C3", label="test MSE (exact)")
    left.axhline(m.noise_variance, color="0.4", ls=":", lw=1, label="noise σ²")
    left.set(yscale="log", xlabel="polynomial degree", ylabel="mean squared error")
    left.legend(fontsize=8)
    grid = torch.linspace(-1, 1, 801, dtype=torch.float64)
    y = m.y
    right.scatter(m.x, y, s=18, color="k", zorder=4, label=f"data (n = {len(y)})")
    right.plot(grid, polyval(m.truth, grid), "k--", lw=1, label="truth")
    right.plot(grid, polyval(m.theta_best, grid), color="C2", lw=2, label=f"degree {best} (best test error)")
    right.plot(grid, polyval(m.theta_max, grid), color="C3", lw=1.5, label=f"degree {degrees[-1]}")
    spread = float(y.max() - y.min())
    right.set(xlabel="x", ylim=(float(y.min()) - spread, float(y.max()) + spread))
    right.legend(fontsize=8, loc="upper center")
    return png_figure(fig, "train-test-vs-degree", caption(m))


def errors_table(m: OverfittingMeasured) -> Table:
    """Training and exact test MSE per degree, with cond(Φ) of the monomial features on the training inputs."""
    return Table("Training and exact test error per degree, with the condition number of the monomial features",
                 ("degree", "training MSE", "test MSE", "cond(Φ)"),
                 tuple(zip(m.degrees, m.train_mse, m.test_mse, m.condition, strict=True)))


FIGURES = (train_test_vs_degree,)
TABLES = (errors_table,)
