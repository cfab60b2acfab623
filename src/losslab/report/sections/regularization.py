"""Section 12, regularization: λ_min against λ, a chord below the loss for every λ, dropout's Monte Carlo mean."""

from __future__ import annotations

import math

import torch

from ...experiments.regularization import RegularizationMeasured
from ..drawn import Figure, Table, png_figure
from ..figures import subplots

__all__ = ["FIGURES", "TABLES", "dropout", "lambda_min", "sweep_table", "witness"]


def _linthresh(lams: list[float]) -> float:
    """The smallest positive λ (the linear range of the symlog axis), 1 when there is none."""
    positive = [x for x in lams if x > 0]
    return min(positive) if positive else 1.0


def lambda_min(m: RegularizationMeasured) -> Figure:
    """The smallest Hessian eigenvalue at both points against λ, beside the line λ_min(H₀) + 2λ."""
    lams = m.lambdas
    linthresh = _linthresh(lams)
    i0 = lams.index(min(lams))
    dense = [min(lams), *torch.logspace(math.log10(linthresh), math.log10(max(max(lams), linthresh)), 100).tolist()]
    fig, ax = subplots(figsize=(6, 4))
    for name, lo, color in (("init", m.lambda_min_init, "C0"), ("trained", m.lambda_min_trained, "C1")):
        ax.plot(lams, lo, "o", color=color, label=f"λ_min(H) at the {name} point")
        ax.plot(dense, [lo[i0] + 2 * (x - lams[i0]) for x in dense], "--", color=color, lw=0.8, alpha=0.7)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xscale("symlog", linthresh=linthresh)
    ax.set_xlim(left=min(lams))
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.set(xlabel="L2 weight λ", ylabel="smallest Hessian eigenvalue", title="L2 lifts the spectrum by 2λ")
    ax.legend(fontsize=8)
    return png_figure(fig, "lambda-min",
                      "Smallest Hessian eigenvalue against λ (dots: measured; dashed: λ_min(H₀) + 2λ). It crosses zero at "
                      "λ = −λ_min(H₀)/2: beyond it the loss is convex near that point — only near it.")


def witness(m: RegularizationMeasured) -> Figure:
    """The constructed chord's gap, rounding bound and radius against λ, and the generic search's witness radius."""
    witnesses = m.witnesses
    fig, ax = subplots(figsize=(6, 4))
    x = [max(v, _linthresh(m.lambdas) / 10) for v in m.lambdas]
    ax.plot(x, [w["gap"] for w in witnesses], "o-", color="C3", label="constructed chord: gap")
    ax.plot(x, [w["bound"] for w in witnesses], "--", color="0.5", label="its rounding bound")
    ax.plot(x, [w["radius"] for w in witnesses], "s-", color="C2", label="its radius ‖c‖")
    found = [(xi, w["search_radius"]) for xi, w in zip(x, witnesses) if w["search_verified"]]
    if found:
        ax.plot(*zip(*found), "x", color="C0", ms=8, label="generic search: radius of its witness")
    ax.set(xscale="log", yscale="log", xlabel="L2 weight λ (λ = 0 drawn at the left edge)", title="a chord below the loss for every λ")
    ax.legend(fontsize=8)
    return png_figure(fig, "witness",
                      "For every λ the constructed chord's gap exceeds its float64 rounding bound: the loss is not convex. "
                      "The witness moves out like √λ — L2 pushes non-convexity away from the origin, it does not remove it.")


def dropout(m: RegularizationMeasured) -> Figure:
    """The running Monte Carlo mean of the dropout loss (± 2 standard errors) against the closed form and the plain loss."""
    samples, d = m.dropout_samples, m.dropout
    n = torch.arange(1, len(samples) + 1, dtype=torch.float64)
    mean = torch.cumsum(samples, 0) / n
    sq = torch.cumsum(samples**2, 0) / n
    se = ((sq - mean**2).clamp_min(0) / n).sqrt()
    fig, ax = subplots(figsize=(6, 4))
    ax.plot(n, mean, color="C0", lw=1, label="Monte Carlo mean of the dropout loss")
    ax.fill_between(n.numpy(), (mean - 2 * se).numpy(), (mean + 2 * se).numpy(), color="C0", alpha=0.2, label="± 2 standard errors")
    ax.axhline(d.closed_form, color="C3", lw=1.2, label="closed form: plain loss + L2 penalty")
    ax.axhline(d.plain, color="k", lw=1, ls="--", label="plain (deterministic) loss")
    ax.set(xscale="log", xlabel="masks", ylabel="loss", title=f"dropout (keep p = {d.keep_prob:g}) as an L2 penalty")
    ax.legend(fontsize=8)
    return png_figure(fig, "dropout",
                      "The average dropout loss over more and more random masks settles on the closed form, above the plain "
                      "loss by ((1−p)/p)(1/n)Σ_j v_j²‖φ_j‖²: in expectation dropout is a data-dependent L2 penalty.")


def sweep_table(m: RegularizationMeasured) -> Table:
    """Per λ: λ_min at both points, the generic search's verdict, the constructed chord's gap, bound and radius."""
    return Table(
        "The L2 sweep: smallest Hessian eigenvalue at the initial and trained points, the generic search's verdict, and the "
        "constructed chord (gap, rounding bound, radius ‖c‖ of its centre)",
        ("λ", "λ_min at θ_0", "λ_min trained", "check_convexity", "chord gap", "bound", "radius"),
        tuple((lam, lo, lt, w["search"], w["gap"], w["bound"], w["radius"])
              for lam, lo, lt, w in zip(m.lambdas, m.lambda_min_init, m.lambda_min_trained, m.witnesses, strict=True)),
    )


FIGURES = (lambda_min, witness, dropout)
TABLES = (sweep_table,)
