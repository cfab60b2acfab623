"""Negative-curvature witnesses: the smallest Hessian eigenvalue by Lanczos, confirmed by chords.

At θ, the smallest eigenvalue λ_min of ∇²L(θ) is found by thick-restart Lanczos
(:func:`losslab.curvature.eigs`; Lanczos 1950, Wu & Simon 2000) on Hessian-vector products —
the Hessian is never formed. If λ_min < 0 with eigenvector d, the second difference
L(θ + h·d) − 2L(θ) + L(θ − h·d) ≈ λ_min·h² is negative for small h: the chord from θ − h·d
to θ + h·d at λ = 1/2 is a witness, certified in float64 like any other chord.

``eigs`` is used rather than SciPy's ARPACK because (1) it is reproducible: its start and
restart vectors come from the seed, while ARPACK draws restart vectors (after an invariant
subspace, common for the piecewise-linear Hessians of relu networks) from a Fortran seed that
persists between calls, so the same call gave different witnesses in one process; (2) it runs
on θ's device in torch, with no SciPy/BLAS thread pool beside torch's (see
:mod:`losslab._threads`).
"""

from __future__ import annotations

import torch

from .._checks import NonFiniteError
from ..curvature.eigs import eigs
from ..curvature.operator import HessianOperator
from ..problem import Problem

__all__ = ["smallest_eigenpair"]


def smallest_eigenpair(
    problem: Problem, theta: torch.Tensor, *, seed: int = 0, tol: float | None = None, max_products: int | None = None
) -> tuple[float, torch.Tensor, int]:
    """(λ_min, unit eigenvector (p,) in float64 on θ's device, number of HVPs) of ∇²L(θ).

    HVPs (:class:`~losslab.curvature.HessianOperator`: double backward through one cached graph)
    run in ``problem.dtype``; the Lanczos vectors are float64. Stops when the Ritz pair's residual
    ‖Hy − λy‖ ≤ ``tol``·‖H‖ (``criterion="residual"``: some eigenvalue lies within it; default
    :data:`~losslab.tolerances.TOLERANCES`' ``eig_residual`` of the problem's dtype), or after
    ``max_products`` HVPs (default ``eigs``'s) with the best pair so far. For p ≤ 30 the matrix
    is assembled from p HVPs and diagonalised densely. NaN (and a zero vector) if the products are not finite
    (:class:`~losslab._checks.NonFiniteError`); every other error, a memory refusal included, is raised.
    """
    hessian = HessianOperator(problem, theta.to(problem.dtype))
    try:
        res = eigs(hessian, k=1, which="smallest", tol=tol, criterion="residual", max_iter=max_products, seed=seed)
    except NonFiniteError:  # the model overflows at θ: no eigenvalue, no witness (other errors are the caller's)
        p = problem.n_params
        return float("nan"), torch.zeros(p, dtype=torch.float64, device=theta.device), hessian.products
    return float(res.values[0]), res.vectors[:, 0].to(theta.device), res.matvecs
