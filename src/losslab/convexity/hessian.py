"""Negative-curvature witnesses: the smallest Hessian eigenvalue by Lanczos, confirmed by chords.

At θ, the smallest eigenvalue λ_min of ∇²L(θ) is found with SciPy's ``eigsh`` (implicitly
restarted Lanczos; Lehoucq, Sorensen & Yang 1998) on Hessian-vector products — the Hessian
is never formed. If λ_min < 0 with eigenvector d, the second difference
L(θ + h·d) − 2L(θ) + L(θ − h·d) ≈ λ_min·h² is negative for small h: the chord from θ − h·d
to θ + h·d at λ = 1/2 is a witness, certified in float64 like any other chord.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, eigsh

from ..curvature.operator import HessianOperator
from ..problem import Problem

__all__ = ["smallest_eigenpair"]


def smallest_eigenpair(
    problem: Problem, theta: torch.Tensor, *, seed: int = 0, tol: float = 1e-8, max_restarts: int | None = None
) -> tuple[float, torch.Tensor, int]:
    """(λ_min, unit eigenvector (p,) in float64, number of HVPs) of ∇²L(θ).

    HVPs (:class:`~losslab.curvature.HessianOperator`: double backward through one cached graph)
    run in ``problem.dtype``; Lanczos in float64. For p ≤ 3 the p×p matrix is assembled
    from p HVPs; otherwise ``eigsh`` runs on the HVP operator to relative tolerance ``tol``
    with at most ``max_restarts`` restarts (default 10·p). NaN if Lanczos found nothing.
    """
    p = problem.n_params
    hessian = HessianOperator(problem, theta.to(problem.dtype))
    if p <= 3:
        H = hessian.to_dense().to(torch.float64).numpy()
        vals, vecs = np.linalg.eigh((H + H.T) / 2)
        return float(vals[0]), torch.from_numpy(vecs[:, 0].copy()), hessian.products
    v0 = np.random.default_rng(seed).standard_normal(p)
    try:
        vals, vecs = eigsh(hessian.to_scipy(), k=1, which="SA", v0=v0, tol=tol, maxiter=max_restarts or max(200, 10 * p))
    except ArpackNoConvergence as err:
        if len(err.eigenvalues) == 0:
            return float("nan"), torch.zeros(p, dtype=torch.float64), hessian.products
        vals, vecs = err.eigenvalues, err.eigenvectors
    except ArpackError:  # e.g. a Hessian that maps the start vector to zero (a flat loss)
        return float("nan"), torch.zeros(p, dtype=torch.float64), hessian.products
    return float(vals[0]), torch.from_numpy(np.ascontiguousarray(vecs[:, 0])), hessian.products
