"""Shared pieces of the experiments where non-convexity appears (two-layer, depth, sigmoid-loss, relu-surface).

* :func:`proof_numbers` and :func:`witness_numbers` keep what a :class:`~losslab.ConvexityReport` says
  as plain numbers (in ``measure``): the proof's rule and affine-declaration check, or the witness's
  float64 re-check (gap and rounding bound);
* :func:`proof_claim` and :func:`witness_claim` turn those numbers into a keyed claim (in ``claims``);
* :class:`SliceGrid` is a plane slice as the report draws it: the grid, the losses and where the
  negative second differences are (:func:`slice_grid`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..convexity import ConvexityReport
from ..landscape import DiscreteConvexity, PlaneSlice
from ..problem import Problem
from ..tolerances import AFFINE_DEFECT
from .base import Claim, claim

__all__ = ["SliceGrid", "proof_claim", "proof_numbers", "slice_grid", "witness_claim", "witness_numbers"]


WITNESS_PLAIN = (
    "Between two parameter points a and b, the loss at an in-between point is higher than the straight line joining the "
    "losses at a and b — by far more than rounding errors could explain — which a convex function never allows."
)


@dataclass(frozen=True)
class SliceGrid:
    """A plane slice as drawn: ``losses[i, j]`` at (alphas[i], betas[j]) and the violations' (α, β), shape (k, 2)."""

    alphas: torch.Tensor
    betas: torch.Tensor
    losses: torch.Tensor
    locations: torch.Tensor


def slice_grid(slice_: PlaneSlice, discrete: DiscreteConvexity | None = None) -> SliceGrid:
    """The grid of ``slice_`` in float64, with the locations of ``discrete``'s negative second differences (none if None)."""
    where = discrete.locations().to(torch.float64) if discrete is not None else torch.zeros(0, 2, dtype=torch.float64)
    return SliceGrid(slice_.alphas.detach().to(torch.float64), slice_.betas.detach().to(torch.float64),
                     slice_.losses.detach().to(torch.float64), where)


def proof_numbers(report: ConvexityReport) -> dict:
    """What a convexity verdict's proof says, as plain values: verdict, rule, check (the affine-declaration defect), explanation.

    ``rule`` is None and ``check`` NaN when there is no proof.
    """
    proof = report.proof
    return {"verdict": report.verdict, "rule": proof.rule if proof else None,
            "check": proof.declaration_check if proof else float("nan"), "explanation": report.explanation()}


def proof_claim(key: str, statement: str, proof: dict) -> Claim:
    """Holds iff the verdict is "convex" with a proof (``proof``: :func:`proof_numbers`); the evidence names the rule and
    the affine check, and says that it restates the verdict engine (prove_convex refuses a defect above tolerances.AFFINE_DEFECT itself)."""
    if proof["verdict"] != "convex" or proof["rule"] is None:
        return claim(key, statement, False, "verdict {verdict}: {why}", verdict=proof["verdict"], why=proof["explanation"])
    return claim(
        key, statement, proof["check"] <= AFFINE_DEFECT,
        "restates the verdict engine's proof (no independent number): verdict convex, proven by “{rule}”; "
        "its affine-declaration check {check:.1e} ≤ {tol:g}",
        plain="The loss is assembled from pieces known to be convex, by a rule that keeps convexity, so it is convex "
              "everywhere — a proof, not a search.",
        verdict=proof["verdict"], rule=proof["rule"], check=proof["check"], tol=AFFINE_DEFECT,
    )


def witness_numbers(report: ConvexityReport, problem: Problem) -> dict:
    """The witness of a non-convex verdict re-checked by ``witness.verify(problem)`` in float64, as plain numbers.

    Keys: verdict, holds, gap, bound, lam, losses (L(a), L(b), L(middle)), a and b (every parameter, in the
    order of ``problem.full().groups``), source, chords (tried), explanation. ``holds`` is False (and the
    numbers NaN) when there is no witness.
    """
    nan = float("nan")
    out = {"verdict": report.verdict, "chords": report.search.chords if report.search else 0, "explanation": report.explanation()}
    w = report.witness
    if w is None:
        return out | {"holds": False, "gap": nan, "bound": nan, "lam": nan, "losses": [nan] * 3, "a": [], "b": [], "source": "none"}
    check = w.verify(problem)
    return out | {"holds": bool(check.holds), "gap": check.gap, "bound": check.bound, "lam": w.lam,
                  "losses": list(check.losses), "a": w.a.tolist(), "b": w.b.tolist(), "source": w.source}


def witness_claim(key: str, statement: str, witness: dict) -> Claim:
    """Holds iff the verdict is "non-convex" and its witness (``witness``: :func:`witness_numbers`) re-verifies with gap > bound.

    The evidence says that it restates the engine's certificate: ``verify`` is the computation that issued it.
    The experiments' tests re-check the chord by hand (tests/test_experiments_nonconvex.py).
    """
    if witness["source"] == "none":
        return claim(key, statement, False, "verdict {verdict}: {why}", verdict=witness["verdict"], why=witness["explanation"])
    holds = witness["verdict"] == "non-convex" and witness["holds"] and witness["gap"] > witness["bound"]
    return claim(
        key, statement, holds,
        "restates the verdict engine's certificate (witness.verify repeats the float64 re-check that issued it): "
        "verdict {verdict}; L(λa+(1−λ)b) − [λL(a)+(1−λ)L(b)] = {gap:.3e} > rounding bound "
        "{bound:.1e} (λ = {lam:g}, found by {source} after {chords} chords)",
        plain=WITNESS_PLAIN, verdict=witness["verdict"], gap=witness["gap"], bound=witness["bound"], lam=witness["lam"],
        source=witness["source"], chords=witness["chords"],
    )
