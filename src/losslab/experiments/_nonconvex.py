"""Shared pieces of the experiments where non-convexity appears (two-layer, depth, sigmoid-loss, relu-surface).

* :func:`proof_claim` and :func:`witness_claim` turn a :class:`~losslab.ConvexityReport` into a
  claim whose evidence is the proof's rule or the witness's float64 re-check (gap and rounding bound);
* :func:`contour` draws a plane slice as filled contours (log10 of the loss when it spans decades),
  with the slice's negative second differences marked;
* :func:`surface` is the same slice as an interactive plotly 3-D surface.
"""

from __future__ import annotations

import numpy as np
import torch

from ..convexity import ConvexityReport
from ..landscape import DiscreteConvexity, PlaneSlice
from ..problem import Problem
from ._legacy import Claim, claim

__all__ = ["contour", "proof_claim", "surface", "witness_claim", "witness_numbers"]

PROOF_CHECK = 1e-9  # the affine-declaration defect above which prove_convex refuses (structure.py)


def proof_claim(statement: str, report: ConvexityReport) -> Claim:
    """Holds iff the verdict is "convex" with a proof; the evidence names the rule and the affine check, and says
    that it restates the verdict engine (prove_convex refuses a defect above 1e-9 itself)."""
    proof = report.proof
    if report.verdict != "convex" or proof is None:
        return claim(statement, False, "verdict {verdict}: {why}", verdict=report.verdict, why=report.explanation())
    return claim(
        statement, proof.declaration_check <= PROOF_CHECK,
        "restates the verdict engine's proof (no independent number): verdict convex, proven by “{rule}”; "
        "its affine-declaration check {check:.1e} ≤ 1e-9",
        verdict=report.verdict, rule=proof.rule, check=proof.declaration_check,
    )


def witness_numbers(report: ConvexityReport, problem: Problem) -> dict:
    """The witness of a non-convex verdict re-checked by ``witness.verify(problem)`` in float64, as plain numbers.

    Keys: verdict, holds, gap, bound, lam, losses (L(a), L(b), L(middle)), a and b (every parameter, in the
    order of ``problem.full().groups``), source, chords (tried). ``holds`` is False (and the numbers NaN)
    when there is no witness.
    """
    nan = float("nan")
    out = {"verdict": report.verdict, "chords": report.search.chords if report.search else 0}
    w = report.witness
    if w is None:
        return out | {"holds": False, "gap": nan, "bound": nan, "lam": nan, "losses": [nan] * 3, "a": [], "b": [], "source": "none"}
    check = w.verify(problem)
    return out | {"holds": bool(check.holds), "gap": check.gap, "bound": check.bound, "lam": w.lam,
                  "losses": list(check.losses), "a": w.a.tolist(), "b": w.b.tolist(), "source": w.source}


def witness_claim(statement: str, report: ConvexityReport, problem: Problem) -> tuple[Claim, dict]:
    """(claim, numbers): holds iff the verdict is "non-convex" and its witness re-verifies with gap > bound.

    The evidence says that it restates the engine's certificate: ``verify`` is the computation that issued it.
    The experiments' tests re-check the chord by hand (tests/test_experiments_nonconvex.py).
    """
    nums = witness_numbers(report, problem)
    if report.witness is None:
        return claim(statement, False, "verdict {verdict}: {why}", verdict=report.verdict, why=report.explanation()), nums
    holds = report.verdict == "non-convex" and nums["holds"] and nums["gap"] > nums["bound"]
    c = claim(
        statement, holds,
        "restates the verdict engine's certificate (witness.verify repeats the float64 re-check that issued it): "
        "verdict {verdict}; L(λa+(1−λ)b) − [λL(a)+(1−λ)L(b)] = {gap:.3e} > rounding bound "
        "{bound:.1e} (λ = {lam:g}, found by {source} after {chords} chords)",
        verdict=report.verdict, gap=nums["gap"], bound=nums["bound"], lam=nums["lam"], source=nums["source"], chords=nums["chords"],
    )
    return c, nums


def _grid(slice_: PlaneSlice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = slice_.alphas.detach().to(torch.float64).numpy()
    b = slice_.betas.detach().to(torch.float64).numpy()
    return a, b, slice_.losses.detach().to(torch.float64).numpy()


def _log_scale(losses: np.ndarray) -> bool:
    return bool(losses.min() > 0 and losses.max() / losses.min() > 100)


def contour(ax, slice_: PlaneSlice, *, title: str, discrete: DiscreteConvexity | None = None, labels=("α", "β"),
            origin=(0.0, 0.0), log: bool | None = None, cap: float | None = None) -> None:
    """Filled contours of ``slice_`` on ``ax``; violations of ``discrete`` as red dots.

    The axes show α + origin[0], β + origin[1]; ``log`` (default: when the losses are positive and span
    more than two decades) contours log10 of the loss; losses above ``cap`` (if given) share the top colour.
    """
    a, b, L = _grid(slice_)
    a, b = a + origin[0], b + origin[1]
    log = _log_scale(L) if log is None else log and bool(L.min() > 0)
    z = np.log10(L) if log else L
    if cap is not None:
        z = np.minimum(z, cap)
    filled = ax.contourf(a, b, z.T, levels=20, cmap="viridis")  # losses[i, j] at (alphas[i], betas[j])
    ax.contour(a, b, z.T, levels=10, colors="k", linewidths=0.3, alpha=0.5)
    label = "log10 loss" if log else "loss"
    ax.figure.colorbar(filled, ax=ax, label=label if cap is None else f"{label} (≥ {cap:g} in the top colour)")
    if discrete is not None and discrete.violations:
        where = discrete.locations().numpy() + np.asarray(origin)
        ax.plot(where[:, 0], where[:, 1], ".", color="red", ms=2.5, label=f"{discrete.violations} negative 2nd differences")
    ax.plot([origin[0]], [origin[1]], "w*", ms=10, mec="k", label="centre")
    ax.set(xlabel=labels[0], ylabel=labels[1], title=title)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.8)


def surface(slice_: PlaneSlice, *, title: str, labels=("α", "β"), extra=(), origin=(0.0, 0.0), cap: float | None = None):
    """An interactive plotly 3-D surface of ``slice_`` (plus plotly traces ``extra``): a ``go.Figure``.

    The axes show α + origin[0], β + origin[1]; losses above ``cap`` (if given) are drawn at ``cap``.
    """
    import plotly.graph_objects as go

    a, b, L = _grid(slice_)
    a, b = a + origin[0], b + origin[1]
    if cap is not None:
        L = np.minimum(L, cap)
    fig = go.Figure([go.Surface(x=a, y=b, z=L.T, colorscale="Viridis", colorbar={"title": "loss"}), *extra])
    fig.update_layout(
        title=title, scene={"xaxis_title": labels[0], "yaxis_title": labels[1], "zaxis_title": "loss"},
        margin={"l": 0, "r": 0, "t": 40, "b": 0}, height=520,
    )
    return fig

