"""The measuring half of the spurious-minima experiment: one ensemble of GD runs per (k, n), its end points classified.

For each (k, n): ``starts`` Xavier starts of the Safran–Shamir objective (:func:`losslab.objectives.relu_teacher_problem`)
trained at once by full-batch GD until ‖∇F‖₂ ≤ ε (:func:`~losslab.fit.train_ensemble` with ``until_grad_norm``).
Each end point is then

* ``global``: converged with F < threshold;
* a spurious candidate: converged with F ≥ threshold. Gradient descent slows near saddles as well as minima, so
  ‖∇F‖ ≤ ε alone does not say which: each candidate is first polished by Newton's method on ∇F = 0
  (:func:`._minima.newton_polish`, dense p × p Hessians, p ≤ 156 here) onto the critical point it is near, to
  ‖∇F‖ ≈ 1e-12. The polished candidates are grouped by their loss (values within a
  relative 1e-4 of their sorted neighbour are one class: the points of a class are the same critical point up to
  the objective's symmetries, W ↦ P W Qᵀ for permutations P of the student's units and Q of the coordinates, which
  leave F unchanged since Q I Qᵀ = I; the class also records the spread of W's singular values, invariant under
  both), and one representative per class (its member with the smallest gradient) is classified by
  :func:`~losslab.curvature.classify`: a Lanczos estimate of the extreme Hessian eigenvalues with their residual
  bounds, and ‖∇F‖ ≤ ``POLISHED_GRAD`` as the criticality test. A class is a spurious minimum when classify says ``"minimum"``
  (every eigenvalue > 0 beyond its bound); otherwise its runs count as saddles or undecided;
* ``not converged``: ‖∇F‖ > ε after ``max_steps`` updates (or diverged).
"""

from __future__ import annotations

import torch

from ..curvature import classify, eigs
from ..fit import train_ensemble
from ..objectives import relu_teacher_problem
from ..random_streams import child_seed
from ._minima import cluster_values, damped_newton, newton_polish

__all__ = ["ensemble_of_k_n", "teacher_sharpness"]

CLASS_RTOL = 1e-4  # end points whose losses are within this relative distance are one class
POLISH_ITERATIONS = 10  # Newton iterations on ∇F = 0 from where a spurious candidate stopped
POLISH_STEP = 0.5  # the longest Newton step taken (‖Δθ‖; rows of W have norm about 1)
LM_ITERATIONS = 15  # Levenberg–Marquardt iterations where Newton's step is refused
POLISHED_GRAD = 1e-9  # classify's criticality test at a polished point (absolute ‖∇F‖₂)


def teacher_sharpness(k: int, seed: int) -> float:
    """λ_max(∇²F) at the global minimum W = V = I_k (n = k), by Lanczos."""
    problem = relu_teacher_problem(k, k)
    res = eigs(problem, torch.eye(k, dtype=torch.float64).reshape(-1), k=1, which="largest", seed=seed)
    return float(res.values[-1])


def _polish(problem, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(points moved onto the critical point each is near, their final ‖∇F‖₂): Newton, then LM + Newton where Newton stalls."""
    polished, norms = newton_polish(problem, theta, iterations=POLISH_ITERATIONS, max_step=POLISH_STEP)
    norms = norms[-1]
    stalled = torch.nonzero(norms > POLISHED_GRAD)[:, 0]
    if len(stalled):
        descended, _ = damped_newton(problem, polished[stalled], iterations=LM_ITERATIONS, tol=POLISHED_GRAD)
        again, more = newton_polish(problem, descended, iterations=POLISH_ITERATIONS, max_step=POLISH_STEP)
        polished[stalled], norms[stalled] = again, more[-1]
    return polished, norms


def ensemble_of_k_n(k: int, n: int, *, starts: int, lr: float, eps: float, max_steps: int, threshold: float, seed: int) -> dict:
    """Train ``starts`` runs of the (k, n) objective until ‖∇F‖ ≤ ``eps`` and classify their end points (module doc).

    Returns a JSON-able dict: k, n, starts, the counts (converged, global, spurious_minima, other_spurious,
    not_converged), the last step, the final losses, the steps at convergence, and the classes of spurious end
    points (loss, count, kind, λ_min ± bound, λ_max, the spread of the singular values within the class).
    """
    problem = relu_teacher_problem(k, n)
    seeds = [child_seed(seed, "restarts", n, j) for j in range(starts)]
    runs = train_ensemble(problem, seeds=seeds, lr=lr, steps=max_steps, until_grad_norm=eps, record_every=max_steps)
    final = runs.final_losses
    converged = runs.converged
    candidates = torch.nonzero(converged & (final >= threshold))[:, 0]
    classes = []
    if len(candidates):
        polished, norms = _polish(problem, runs.theta[candidates])
        values = problem.loss_batch(polished)
        labels, _ = cluster_values(values, CLASS_RTOL)
        for c in range(int(labels.max()) + 1):
            members = torch.nonzero(labels == c)[:, 0]
            best = members[torch.argmin(norms[members])]
            result = classify(problem, polished[best], grad_tol=POLISHED_GRAD, seed=seed)
            sv = torch.linalg.svdvals(polished[members].reshape(len(members), n, k))
            classes.append({
                "loss": float(values[members].mean()), "count": len(members), "kind": str(result.kind),
                "grad_norm": result.grad_norm, "min_eig": result.min_eig, "min_bound": result.min_bound,
                "max_eig": result.max_eig, "singular_values": sv[0].tolist(),
                "singular_spread": float((sv - sv[0]).abs().max()), "member": [float(v) for v in polished[best]],
            })
    minima = sum(c["count"] for c in classes if c["kind"] == "minimum")
    return {
        "k": k, "n": n, "starts": starts, "converged": int(converged.sum()), "global": int((converged & (final < threshold)).sum()),
        "spurious_minima": minima, "other_spurious": len(candidates) - minima, "not_converged": int((~converged).sum()),
        "last_step": int(runs.steps[-1]), "final_losses": final.tolist(), "converged_at": runs.converged_at.tolist(),
        "classes": sorted(classes, key=lambda c: c["loss"]),
    }
