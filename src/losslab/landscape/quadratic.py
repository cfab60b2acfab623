"""Exact quadratic slices: a plane of a squared loss of a model affine in the sliced parameters.

If the model output is affine in θ, f(θ + αd₁ + βd₂) = f(θ) + αJd₁ + βJd₂ exactly, so the
squared loss (and its L2 term) restricted to the plane is a quadratic polynomial,

    q(α, β) = L₀ + α g₁ + β g₂ + ½ (α² H₁₁ + 2αβ H₁₂ + β² H₂₂),

    L₀ = L(θ),  g_i = ∇L(θ)·d_i,  H_ij = d_iᵀ ∇²L(θ) d_j,

with no remainder: one gradient and two Hessian-vector products give the whole slice, at any
resolution. The condition is checked from the model's *declared* structure (the same
declarations the convexity proofs use): ``model.is_affine_in(problem.groups)``, no output link,
and the mse loss.
"""

from __future__ import annotations

import torch

from ..losses import LOSSES
from ..problem import Problem

__all__ = ["exact_quadratic_reason", "quadratic_coefficients", "quadratic_values"]


def exact_quadratic_reason(problem: Problem) -> str | None:
    """None if every plane of ``problem`` is exactly quadratic, else why not (one sentence)."""
    if problem.loss_fn != LOSSES["mse"]:
        return f"the loss is {problem.loss_fn.name}, not mse"
    if problem.model.link is not None:
        return f"the model output goes through a {problem.model.link} link"
    if not problem.model.is_affine_in(problem.groups):
        return f"{problem.model.describe()} is not affine in {list(problem.groups)}"
    return None


def quadratic_coefficients(problem: Problem, center: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor) -> torch.Tensor:
    """(L₀, g₁, g₂, H₁₁, H₁₂, H₂₂) at ``center`` along d1, d2, as a float64 tensor of shape (6,).

    Computed on ``problem.to(float64)`` (one loss, one gradient, two HVPs); H₁₂ is the average
    of d₂ᵀ(∇²L d₁) and d₁ᵀ(∇²L d₂). Valid as an exact slice only where
    :func:`exact_quadratic_reason` is None.
    """
    p64 = problem.to(torch.float64)
    c, u, v = (t.to(torch.float64) for t in (center, d1, d2))
    loss0 = p64.loss(c).detach()
    grad = p64.grad(c).detach()
    hu, hv = p64.hvp(c, u).detach(), p64.hvp(c, v).detach()
    h12 = 0.5 * (v @ hu + u @ hv)
    return torch.stack([loss0, grad @ u, grad @ v, u @ hu, h12, v @ hv])


def quadratic_values(coefficients: torch.Tensor, alphas: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """q(α_i, β_j) on the grid, shape (len(alphas), len(betas)), in float64."""
    L0, g1, g2, h11, h12, h22 = coefficients.to(torch.float64)
    a = alphas.to(torch.float64)[:, None]
    b = betas.to(torch.float64)[None, :]
    return L0 + a * g1 + b * g2 + 0.5 * (a * a * h11 + 2 * a * b * h12 + b * b * h22)
