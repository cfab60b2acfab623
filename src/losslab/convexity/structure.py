"""Proofs of convexity from composition rules — never from numerical evidence alone.

Rules (Boyd & Vandenberghe 2004, §3.2):

1. *affine ∘ convex*: if the model output f(θ) is affine in the analysed parameters θ (declared
   by the model, by construction) and ℓ(f, y) is convex in f (declared by the loss), then
   θ ↦ ℓ(f(θ), y) is convex; an average of convex functions is convex.
2. *logistic regression*: for a sigmoid-output model whose logit z(θ) is affine in θ, the
   cross-entropy −y log σ(z) − (1−y) log(1−σ(z)) = softplus(z) − y·z is convex in z, hence
   in θ — although σ(z) itself is not affine.
3. l2·‖θ‖² with l2 ≥ 0 is convex, and a sum of convex functions is convex.

The model's affine declaration is a statement about its formula. As a guard against a wrong
declaration (a bug, not evidence), :func:`prove_convex` also checks in float64 that the logit's
second directional derivatives vanish and that it is affine along random chords, and refuses to
prove anything if it is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import LosslabError
from ..problem import Problem
from ..random_streams import generator
from ..tolerances import AFFINE_DEFECT

__all__ = ["Proof", "prove_convex"]


@dataclass(frozen=True)
class Proof:
    """Why the loss is convex in ``groups``: the ``rule`` and the full ``statement``.

    ``declaration_check`` is :func:`affine_defect` of the model: zero to rounding for an
    affine model, recorded for the reader.
    """

    rule: str
    statement: str
    groups: tuple[str, ...]
    declaration_check: float

    def to_dict(self) -> dict:
        return {"rule": self.rule, "statement": self.statement, "groups": list(self.groups), "declaration_check": self.declaration_check}


def affine_defect(problem: Problem, *, seed: int = 0, points: int = 3) -> float:
    """How far the logit is from affine in the free groups, relative to its size; 0 for an affine model.

    The largest, over random θ, directions d (unit RMS), pairs at scales 1, 10, 1e3 and 1e5 and the data, of

    * |d²/dt² logit(θ + t·d)| at t = 0 (two nested ``jvp``; catches smooth nonlinearity), and
    * |logit(λa + (1−λ)b) − λ·logit(a) − (1−λ)·logit(b)| for λ = 0.3 (catches kinks, such as
      relu's, where the second derivative is zero almost everywhere),

    each divided by 1 + the largest |logit| involved. Computed in float64; θ, d and the chords
    are drawn from the ``"affine_check"`` stream of ``seed`` (:mod:`losslab.random_streams`).
    """
    p64 = problem.to(torch.float64)
    g = generator(seed, "affine_check")
    worst = 0.0
    batches = list(p64.batches()) if p64.data.cached is not None else None

    def logit(t: torch.Tensor) -> torch.Tensor:  # on every data point, batch by batch
        params = p64.unflatten(t)
        return torch.cat([p64.model.logit(params, b.inputs).reshape(-1) for b in (batches or p64.batches())])

    def draw() -> torch.Tensor:  # on the CPU generator, then moved: the same numbers on every device
        return torch.randn(p64.n_params, generator=g, dtype=torch.float64).to(p64.device)

    for _ in range(points):
        theta, d = draw(), draw()

        def first(t: torch.Tensor, d: torch.Tensor = d) -> torch.Tensor:
            return torch.func.jvp(logit, (t,), (d,))[1]

        second = torch.func.jvp(first, (theta,), (d,))[1]
        worst = max(worst, float(second.abs().max()) / (1 + float(logit(theta).abs().max())))
        for scale in (1.0, 10.0, 1e3, 1e5):  # far-out chords too: a clamp or saturation beyond the data's scale
            a = theta + scale * draw()
            b = theta + scale * draw()
            fa, fb, fm = logit(a), logit(b), logit(0.3 * a + 0.7 * b)
            size = 1 + max(float(fa.abs().max()), float(fb.abs().max()), float(fm.abs().max()))
            worst = max(worst, float((fm - 0.3 * fa - 0.7 * fb).abs().max()) / size)
    return worst


def prove_convex(problem: Problem) -> Proof | None:
    """A proof that ``problem.loss`` is convex in its free groups, or None if no rule applies."""
    model, loss, groups = problem.model, problem.loss_fn, problem.groups
    if not model.is_affine_in(groups):
        return None
    names = "{" + ", ".join(groups) + "}"
    fixed = " with {" + ", ".join(problem.fixed) + "} fixed" if problem.fixed else ""
    reason = model.affine_reason(groups) if _takes_groups(model.affine_reason) else model.affine_reason()
    how = " by construction" if not hasattr(model, "declared_affine_sets") else ""
    affine = f"{model.describe()} is affine in {names}{fixed}{how} ({reason})"
    if model.link is None and loss.convex_in_output:
        rule = "affine model ∘ loss convex in the output"
        statement = (
            f"{affine}; {loss.name} is convex in the model output ({loss.why}); "
            "an affine map composed with a convex function is convex"
        )
    elif model.link == "sigmoid" and loss.name == "bce":
        rule = "logistic regression: cross-entropy of a sigmoid of an affine logit"
        statement = (
            f"{affine}; the cross-entropy of σ(z), −y·log σ(z) − (1−y)·log(1−σ(z)) = softplus(z) − y·z, "
            "is convex in the logit z; composed with the affine logit it is convex"
        )
    else:
        return None
    if problem.l2:
        statement += f"; the penalty {problem.l2:g}·‖θ‖² is convex and sums of convex functions are convex"
    check = affine_defect(problem)
    # only a Module declares sets, and a Module always has proven_affine_sets (possibly empty)
    declared = [d for d in getattr(model, "declared_affine_sets", ()) if frozenset(groups) <= d]
    if declared and not check <= AFFINE_DEFECT and not any(frozenset(groups) <= s for s in model.proven_affine_sets):
        raise LosslabError(
            f"expected the declared affine_sets to hold, got the output nonlinear in {names} (relative defect {check:.3g} on "
            f"the data); remove {sorted(declared[0])} from Module(..., affine_sets=...): the output is not affine in it"
        )
    if not check <= AFFINE_DEFECT and hasattr(model, "proven_affine_sets"):
        return None  # the traced graph missed something (a custom autograd op, a hook): no proof, the search decides
    if not check <= AFFINE_DEFECT:  # also refuses NaN
        raise RuntimeError(
            f"{model.describe()} declares its logit affine in {names}, but it is not (relative defect {check:.3g} "
            "on the data): the model's affine_sets declaration is wrong — please report this bug"
        )
    return Proof(rule=rule, statement=statement, groups=tuple(groups), declaration_check=check)


def _takes_groups(method) -> bool:
    import inspect

    return "groups" in inspect.signature(method).parameters
