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
declaration (a bug, not evidence), :func:`prove_convex` also checks that the second directional
derivative of the logit vanishes along random directions in float64 and refuses to prove
anything if it does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..problem import Problem

__all__ = ["Proof", "prove_convex"]


@dataclass(frozen=True)
class Proof:
    """Why the loss is convex in ``groups``: the ``rule`` and the full ``statement``.

    ``declaration_check`` is the largest |d²/dt² f(θ + t·d)| seen on the data (float64,
    random θ and unit-RMS d): zero for an affine model, recorded for the reader.
    """

    rule: str
    statement: str
    groups: tuple[str, ...]
    declaration_check: float

    def to_dict(self) -> dict:
        return {"rule": self.rule, "statement": self.statement, "groups": list(self.groups), "declaration_check": self.declaration_check}


def max_second_derivative(problem: Problem, *, seed: int = 0, points: int = 3) -> float:
    """max over random θ, d (unit RMS) and data of |d²/dt² logit(θ + t·d)| at t = 0, in float64."""
    p64 = problem.to(torch.float64)
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for _ in range(points):
        theta = torch.randn(p64.n_params, generator=g, dtype=torch.float64)
        d = torch.randn(p64.n_params, generator=g, dtype=torch.float64)

        def logit(t: torch.Tensor) -> torch.Tensor:
            return p64.model.logit(p64.unflatten(t), p64.X)

        def first(t: torch.Tensor, d: torch.Tensor = d) -> torch.Tensor:
            return torch.func.jvp(logit, (t,), (d,))[1]

        second = torch.func.jvp(first, (theta,), (d,))[1]
        worst = max(worst, float(second.abs().max()))
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
    check = max_second_derivative(problem)
    p64 = problem.to(torch.float64)
    scale = float(p64.output(p64.default_theta()).abs().max()) + 1.0
    if check > 1e-9 * scale:
        raise RuntimeError(
            f"{model.describe()} declares its logit affine in {names}, but its second directional derivative is {check:.3g} "
            "on the data: the model's affine_sets declaration is wrong — please report this bug"
        )
    return Proof(rule=rule, statement=statement, groups=tuple(groups), declaration_check=check)
