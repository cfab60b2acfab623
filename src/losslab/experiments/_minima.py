"""Shared pieces of the training experiments (sigmoid-mlp, gd-vs-sgd): locating and counting critical points.

* :func:`newton_polish` — Newton's method on ∇L(θ) = 0 for K points at once, from where training
  stopped, so that a run that is close to a critical point (minimum *or* saddle) ends on it to
  rounding accuracy; dense p × p Hessians, for the tiny nets of these experiments only.
* :func:`damped_newton` — Levenberg–Marquardt descent for K points at once: the minimum at the bottom
  of the basin each run ended in (a deterministic finish applied alike to every run).
* :func:`cluster_values` — distinct values up to a relative tolerance (sort and split at gaps).
* :func:`canonical_two_layer` — a representative of a TwoLayer network's symmetry class: hidden
  units sign-normalised (odd σ) and sorted, so that permuted and sign-flipped copies of one
  network map to the same vector (Chen, Lu & Hecht-Nielsen 1993, "On the geometry of feedforward
  neural network error surfaces").
* :func:`cluster_points` — greedy leader clustering of points within a distance.
"""

from __future__ import annotations

import math

import torch

from ..models import TwoLayer
from ..models.activations import ODD
from ..problem import Problem

__all__ = ["canonical_two_layer", "cluster_points", "cluster_values", "damped_newton", "newton_polish"]


def newton_polish(problem: Problem, theta: torch.Tensor, *, iterations: int, max_step: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Newton steps θ ← θ − H⁺∇L(θ) for each row of θ (K, p), kept only where short and improving.

    H⁺ is the pseudo-inverse of the Hessian from its eigendecomposition (eigenvalues below 1e-12 of
    the largest are dropped), so the step solves H·Δ = ∇L at saddles and degenerate points too.
    A row takes the step only when ‖Δ‖ ≤ ``max_step`` (it is already near a critical point, inside
    Newton's region of quadratic convergence) and the gradient norm decreases; other rows stay.
    Newton's method converges to saddles as readily as to minima: what it found is decided
    afterwards by the curvature (:func:`~losslab.curvature.classify`), not assumed.

    Returns:
        (θ after polishing (K, p), ‖∇L‖₂ before and after each iteration (iterations + 1, K)).
    """
    grad = torch.func.vmap(torch.func.grad(problem.loss))
    hessian = torch.func.vmap(torch.func.jacrev(torch.func.jacrev(problem.loss)))
    theta = theta.clone()
    g = grad(theta)
    norms = [torch.linalg.vector_norm(g, dim=1)]
    for _ in range(iterations):
        values, vectors = torch.linalg.eigh(hessian(theta))
        keep = values.abs() > 1e-12 * values.abs().amax(dim=1, keepdim=True)
        inverse = torch.where(keep, 1 / torch.where(keep, values, torch.ones_like(values)), torch.zeros_like(values))
        step = torch.einsum("kij,kj,klj,kl->ki", vectors, inverse, vectors, g)
        candidate = theta - step
        g_new = grad(candidate)
        better = (torch.linalg.vector_norm(step, dim=1) <= max_step) & (
            torch.linalg.vector_norm(g_new, dim=1) < torch.linalg.vector_norm(g, dim=1)
        )
        theta = torch.where(better[:, None], candidate, theta)
        g = torch.where(better[:, None], g_new, g)
        norms.append(torch.linalg.vector_norm(g, dim=1))
    return theta, torch.stack(norms)


def cluster_values(values: torch.Tensor, rtol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Group numbers that are within ``rtol`` (relative) of their sorted neighbour.

    Returns:
        (labels (K,) int64 — cluster index per value, clusters numbered from the smallest value up;
        the smallest value of each cluster (C,)).

    Example:
        >>> labels, lows = cluster_values(torch.tensor([1.0, 2.0, 1.0 + 1e-9]), 1e-6)
        >>> labels.tolist(), lows.tolist()
        ([0, 1, 0], [1.0, 2.0])
    """
    order = torch.argsort(values)
    v = values[order]
    new = torch.ones(len(v), dtype=torch.bool)
    new[1:] = (v[1:] - v[:-1]) > rtol * v[:-1].abs().clamp_min(torch.finfo(v.dtype).tiny)
    ids = torch.cumsum(new.to(torch.int64), 0) - 1
    labels = torch.empty_like(ids)
    labels[order] = ids
    return labels, v[new]


def canonical_two_layer(model: TwoLayer, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """One representative per symmetry class of batched TwoLayer parameters, shape (K, p).

    ``params`` holds the groups with a leading batch axis: W (K, h, d), b (K, h), v (K, h) (, c (K,)).
    For odd σ (tanh, identity) each hidden unit (w_j, b_j, v_j) is first replaced by its sign
    flip (−w_j, −b_j, −v_j) when v_j < 0 (the output is unchanged, σ being odd); then the units are
    sorted by b_j, then by w_j (lexicographic key (b_j, w_j1, …), ascending). Permuted and
    sign-flipped copies of one network therefore map to the same vector, laid out as
    [W (h·d), b (h), v (h) (, c)]. Units with (nearly) equal keys may be ordered either way; they
    are (nearly) the same unit, so the vector moves by about as much.
    """
    W, b, v = params["W"], params["b"], params["v"]
    if model.activation in ODD:
        sign = torch.where(v < 0, -1.0, 1.0).to(v.dtype)
        W, b, v = W * sign[..., None], b * sign, v * sign
    keys = torch.cat([b[..., None], W], dim=-1)  # (K, h, 1 + d)
    order = torch.arange(keys.shape[1]).expand(keys.shape[:2]).clone()
    for col in reversed(range(keys.shape[-1])):  # stable sorts from the least significant key up
        idx = torch.argsort(torch.gather(keys[..., col], 1, order), dim=1, stable=True)
        order = torch.gather(order, 1, idx)
    W = torch.gather(W, 1, order[..., None].expand_as(W))
    b, v = torch.gather(b, 1, order), torch.gather(v, 1, order)
    parts = [W.reshape(len(W), -1), b, v]
    if "c" in params:
        parts.append(params["c"].reshape(len(W), 1))
    return torch.cat(parts, dim=1)


def cluster_points(points: torch.Tensor, tol: float) -> torch.Tensor:
    """Greedy leader clustering: each row joins the first leader within ``tol`` (Euclidean), else leads a new cluster.

    Returns labels (K,) int64, clusters numbered in order of their leaders' rows.
    """
    leaders: list[torch.Tensor] = []
    labels = torch.empty(len(points), dtype=torch.int64)
    for k, x in enumerate(points):
        if leaders:
            dist = torch.linalg.vector_norm(torch.stack(leaders) - x, dim=1)
            j = int(torch.argmin(dist))
            if float(dist[j]) <= tol:
                labels[k] = j
                continue
        leaders.append(x)
        labels[k] = len(leaders) - 1
    return labels


def damped_newton(problem: Problem, theta: torch.Tensor, *, iterations: int, tol: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Levenberg–Marquardt descent θ ← θ − (H + μI)⁻¹∇L for each row of θ (K, p), to the bottom of its basin.

    The shift is max(0, −λ_min(H)) + μ with μ starting at 1e-3·‖H‖ per row, so H + shift·I is positive definite
    and the step a descent direction; a step is kept only if the loss decreases (then μ ← μ/3), else μ ← 10μ (Nocedal &
    Wright, *Numerical Optimization*, §10.3). Being a descent method, it ends in the minimum of the basin a
    run was in — the deterministic "polish" applied alike to every run. Rows with ‖∇L‖ ≤ ``tol`` (or whose μ
    has grown past 1e12·‖H‖: no decrease left to find in float64) stop early; the others go on.

    Returns:
        (θ after the iterations (K, p), ‖∇L‖₂ before and after each iteration (iterations + 1, K)).
    """
    grad = torch.func.vmap(torch.func.grad_and_value(problem.loss))
    hessian = torch.func.vmap(torch.func.jacrev(torch.func.jacrev(problem.loss)))
    theta = theta.clone()
    g, loss = grad(theta)
    norm = torch.linalg.vector_norm(g, dim=1)
    norms = [norm.clone()]
    mu = torch.full_like(loss, math.nan)
    scale = torch.ones_like(loss)
    eye = torch.eye(theta.shape[1], dtype=theta.dtype)
    for _ in range(iterations):
        active = (norm > tol) & ~(mu > 1e12 * scale)
        if not bool(active.any()):
            norms.append(norm.clone())
            continue
        idx = torch.nonzero(active)[:, 0]
        th, gi = theta[idx], g[idx]
        H = hessian(th)
        values = torch.linalg.eigvalsh(H)
        scale[idx] = values.abs().amax(1)
        mu[idx] = torch.where(torch.isnan(mu[idx]), 1e-3 * scale[idx], mu[idx])
        shift = (-values[:, 0]).clamp_min(0) + mu[idx]
        candidate = th - torch.linalg.solve(H + shift[:, None, None] * eye, gi[..., None])[..., 0]
        g_new, loss_new = grad(candidate)
        better = torch.isfinite(loss_new) & (loss_new < loss[idx])
        theta[idx] = torch.where(better[:, None], candidate, th)
        g[idx] = torch.where(better[:, None], g_new, gi)
        loss[idx] = torch.where(better, loss_new, loss[idx])
        mu[idx] = torch.where(better, mu[idx] / 3, mu[idx] * 10)
        norm = torch.linalg.vector_norm(g, dim=1)
        norms.append(norm.clone())
    return theta, torch.stack(norms)
