"""How close to critical θ is, in units that do not depend on the scale of y, the loss or the parameters.

For a group G of parameters, the gradient of the data loss is ∇_G L = Σ_b J_{b,G}ᵀ R_b, with
J_{b,G} the Jacobian of batch b's model outputs f (what the loss reads: logits or outputs) with
respect to G, and R_b = ∂L/∂f the loss's gradient in its output on that batch (the batch's
weight n_b/n included). By Cauchy–Schwarz,

    ‖∇_G L‖ ≤ ‖J_G‖_F · ‖R‖_F,   ‖J_G‖_F² = Σ_b ‖J_{b,G}‖_F²,  ‖R‖_F² = Σ_b ‖R_b‖_F²,

so the ratio ρ_G = ‖∇_G L‖ / s_G with the *scale* s_G = ‖J_G‖_F · R_ref (+ 2·l2·‖θ_G‖ with L2)
is between 0 and about 1. R_ref = max(‖R(f)‖_F, ‖R(0)‖_F): the loss's output gradient at the
current outputs and at the zero output (for mse, the residual of predicting 0, ‖2y/n‖; for
cross-entropy, 1/k − onehot), so that an interpolating point (R(f) ≈ 0) is still measured
against the scale of the targets. ρ_G is invariant when the loss is multiplied by a constant,
when y and the output layer are scaled together, and when a group is rescaled and the model
compensates (each of J_G, R and ∇_G L scales the same way), which an absolute ‖∇L‖ ≤ tol is
not. ‖J_G‖_F² = Σ_j ‖J e_j‖² exactly for a group of at most 8 parameters; for a larger group it is
E‖J_G z‖² for Rademacher z supported on G (Hutchinson 1989), estimated from 8 forward-mode
products (``torch.func.jvp``) per batch: within a factor of a few, which is all a tolerance needs.

An analytic objective (``Problem.from_objective``) has no outputs or targets to take a scale from: there
s_G = 1 and ρ_G = ‖∇_G L‖ in the objective's own units (grad_tol is then an absolute tolerance).
"""

from __future__ import annotations

import math

import torch

from ..problem import Problem

__all__ = ["gradient_ratios", "worst_ratio"]

PROBES = 8  # per group and batch: the unit vectors of a group of ≤ 8 parameters (exact), else 8 Rademacher probes


def gradient_ratios(problem: Problem, theta: torch.Tensor, grad: torch.Tensor, gen: torch.Generator) -> dict[str, tuple[float, float]]:
    """For each free group G: (‖∇_G L‖, s_G), the gradient's norm and its Cauchy–Schwarz scale (module docstring).

    Args:
        problem: the problem (restricted problems: their free groups only).
        theta: the point (p,), in the problem's dtype and on its device.
        grad: ∇L(θ) (p,), already computed.
        gen: a CPU generator for the Rademacher probes (groups of more than 8 parameters).

    Returns:
        ``{group: (norm, scale)}`` in float64 Python floats; ρ_G = norm / scale (0/0 = 0: a group
        that does not reach the output and has no L2 term has a zero gradient).
    """
    where = problem.slices()
    if getattr(problem.model, "unit_gradient_scale", False):  # an analytic objective: no outputs or targets to scale by,
        return {g: (float(grad[sl].to(torch.float64).norm()), 1.0) for g, sl in where.items()}  # so ρ_G = ‖∇_G L‖
    p = problem.n_params

    def probes(sl: slice):  # one at a time: p numbers in memory, whatever the number of groups
        size = sl.stop - sl.start
        for k in range(min(size, PROBES)):
            z = torch.zeros(p, dtype=theta.dtype)
            if size <= PROBES:
                z[sl.start + k] = 1.0  # ‖J_G‖_F² = Σ_j ‖J e_j‖², exactly
            else:
                z[sl] = (2 * torch.randint(0, 2, (size,), generator=gen) - 1).to(theta.dtype) / math.sqrt(PROBES)
            yield z.to(theta.device)

    jac = dict.fromkeys(where, 0.0)
    at_f = at_zero = 0.0
    with torch.no_grad():
        for batch, weight in problem._weights():
            w = 1.0 if weight is None else weight

            def outputs(t, batch=batch):
                return problem.loss_input(problem.unflatten(t), batch.inputs)

            for g, sl in where.items():  # fresh probes per batch: Σ_b E‖J_b z‖² is still ‖J_G‖_F²
                for z in probes(sl):
                    _, tangent = torch.func.jvp(outputs, (theta,), (z,))
                    jac[g] += float(tangent.to(torch.float64).square().sum())
            f = outputs(theta).detach()

            def loss(out, batch=batch, w=w):
                return w * problem.loss_fn(out, batch.y)

            with torch.enable_grad():
                at_f += float(torch.func.grad(loss)(f).to(torch.float64).square().sum())
                at_zero += float(torch.func.grad(loss)(torch.zeros_like(f)).to(torch.float64).square().sum())
    r_ref = math.sqrt(max(at_f, at_zero))
    out = {}
    for g, sl in where.items():
        norm = float(grad[sl].to(torch.float64).norm())
        scale = math.sqrt(jac[g]) * r_ref
        if problem.l2:
            scale += 2 * problem.l2 * float(theta[sl].to(torch.float64).norm())
        out[g] = (norm, scale)
    return out


def worst_ratio(ratios: dict[str, tuple[float, float]]) -> tuple[float, str]:
    """(max_G ρ_G, the group attaining it); ρ = norm/scale, 0 when both are 0, inf when only the scale is."""
    worst, name = 0.0, next(iter(ratios), "")
    for g, (norm, scale) in ratios.items():
        rho = norm / scale if scale > 0 else (0.0 if norm == 0 else math.inf)
        if rho > worst:
            worst, name = rho, g
    return worst, name
