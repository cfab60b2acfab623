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

from ..problem import Problem

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

    The largest, over random θ, directions d (unit RMS), pairs at scales 1 and 10 and the data, of

    * |d²/dt² logit(θ + t·d)| at t = 0 (two nested ``jvp``; catches smooth nonlinearity), and
    * |logit(λa + (1−λ)b) − λ·logit(a) − (1−λ)·logit(b)| for λ = 0.3 (catches kinks, such as
      relu's, where the second derivative is zero almost everywhere),

    each divided by 1 + the largest |logit| involved. Computed in float64.
    """
    p64 = problem.to(torch.float64)
    g = torch.Generator().manual_seed(seed)
    worst = 0.0

    def logit(t: torch.Tensor) -> torch.Tensor:
        return p64.model.logit(p64.unflatten(t), p64.X)

    for _ in range(points):
        theta = torch.randn(p64.n_params, generator=g, dtype=torch.float64)
        d = torch.randn(p64.n_params, generator=g, dtype=torch.float64)

        def first(t: torch.Tensor, d: torch.Tensor = d) -> torch.Tensor:
            return torch.func.jvp(logit, (t,), (d,))[1]

        second = torch.func.jvp(first, (theta,), (d,))[1]
        worst = max(worst, float(second.abs().max()) / (1 + float(logit(theta).abs().max())))
        for scale in (1.0, 10.0):
            a = theta + scale * torch.randn(p64.n_params, generator=g, dtype=torch.float64)
            b = theta + scale * torch.randn(p64.n_params, generator=g, dtype=torch.float64)
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
    affine = f"{model.describe()} is affine in {names}{fixed} by construction ({model.affine_reason()})"
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
    if not check <= 1e-9:  # also refuses NaN
        raise RuntimeError(
            f"{model.describe()} declares its logit affine in {names}, but it is not (relative defect {check:.3g} "
            "on the data): the model's affine_sets declaration is wrong — please report this bug"
        )
    return Proof(rule=rule, statement=statement, groups=tuple(groups), declaration_check=check)
