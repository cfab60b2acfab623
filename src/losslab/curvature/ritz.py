"""Ritz pairs and their error bounds: the result of :func:`~losslab.curvature.eigs`.

A Ritz pair (θ, y) of a symmetric A from an orthonormal basis V has a residual r = ‖Ay − θy‖,
and some eigenvalue lies within r of θ (Parlett, *The Symmetric Eigenvalue Problem*, Thm 4.5.1).
With an estimated gap δ to the rest of the spectrum the error is at most r²/δ (Kato–Temple;
Saad, *Numerical Methods for Large Eigenvalue Problems*, Thm 3.8; the cluster form of Mathias
1998). :mod:`losslab.curvature.eigs`' module docstring says how the gaps are estimated and when
they are trusted; no bound is reported below the products' rounding floor c·ε·‖A‖₂
(:mod:`losslab.tolerances`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..tolerances import rounding_floor

__all__ = ["EigenResult"]


@dataclass(frozen=True)
class EigenResult:
    """k Ritz pairs of a symmetric operator with error bounds.

    Attributes:
        values: Ritz values (Rayleigh quotients), ascending, shape (k,), float64.
        vectors: unit Ritz vectors, shape (p, k), float64; column i goes with ``values[i]``.
        bounds: ‖A y_i − θ_i y_i‖, shape (k,): rigorous — some eigenvalue of A lies within
            ``bounds[i]`` of ``values[i]``. Never below the products' rounding floor c·ε·‖A‖₂
            (:mod:`losslab.tolerances`; ε of the operator's dtype, ‖A‖₂ by ``norm_estimate``), which
            covers the difference between the operator as evaluated and the exact one (Weyl).
        gap_bounds: shape (k,), ≤ ``bounds``: the Kato–Temple bound r_i²/δ_i with the gap δ_i
            *estimated* from the other Ritz values, for pairs whose residual is below the
            convergence test's cap, else ``bounds[i]`` (module docstring): the eigenvalue that
            ``values[i]`` approximates lies within ``gap_bounds[i]`` of it whenever no other
            eigenvalue of A lies within δ_i of ``values[i]`` — true unless Lanczos missed one. A
            small basis can miss interior ones: with ``max_basis=6`` on a 12-parameter two-layer net
            (k = 3, "both") a gap bound of 1.2e-11 stood against an error of 2.2e-11, the nearest other
            eigenvalue 0.17 away but the estimated gap 0.55. ``bounds`` hold regardless.
            Never below the rounding floor either.
        converged: shape (k,) bool: with ``criterion="gap"``, ``gap_bounds <= tol · norm_estimate``
            and ``bounds <= √tol · norm_estimate``; with ``"residual"``, ``bounds <= tol · norm_estimate``.
        matvecs: operator–vector products used.
        which: ``"largest"``, ``"smallest"`` or ``"both"`` (⌊k/2⌋ smallest and ⌈k/2⌉ largest).
        tol: the relative tolerance used.
        norm_estimate: max |Ritz value| seen, a lower bound on ‖A‖₂ (the scale of ``tol``).
        method: ``"lanczos"`` or ``"dense"`` (tiny p: the matrix from p products, then eigh).
        criterion: ``"gap"`` or ``"residual"``, the convergence test used.
    """

    values: torch.Tensor
    vectors: torch.Tensor
    bounds: torch.Tensor
    gap_bounds: torch.Tensor
    converged: torch.Tensor
    matvecs: int
    which: str
    tol: float
    norm_estimate: float
    method: str
    criterion: str = "gap"

    @property
    def all_converged(self) -> bool:
        """Whether every returned pair met the tolerance."""
        return bool(self.converged.all())


def _wanted(n: int, k: int, which: str) -> torch.Tensor:
    """Indices into n ascending Ritz values: the k wanted ones (ascending)."""
    if which == "largest":
        return torch.arange(n - k, n)
    if which == "smallest":
        return torch.arange(k)
    lo = k // 2
    return torch.cat([torch.arange(lo), torch.arange(n - (k - lo), n)])


def _ritz(
    V: torch.Tensor, AV: torch.Tensor, S: torch.Tensor, theta: torch.Tensor, estimate: torch.Tensor, idx: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ritz pairs y = Vᵀs, exact for the wanted columns ``idx`` of S, the recurrence's values for the rest.

    Returns (Rayleigh quotients (j,), the wanted unit vectors (p, k) on V's device, residual norms (j,)) — S, θ and the
    estimates on the CPU, V and AV on the operator's device. For the
    wanted pairs the true ‖Ay − θy‖ from the stored products AV; for the others the Ritz values
    ``theta`` and the Lanczos estimates ``estimate`` = β|s_j| (they only enter the estimated gaps).
    """
    Sw = S[:, idx].to(V.device)
    Y, AY = V.T @ Sw, AV.T @ Sw  # in place from here: 2·k vectors at most (losslab.memory.lanczos_bytes)
    norms = torch.linalg.vector_norm(Y, dim=0)
    Y.div_(norms)
    AY.div_(norms)
    rq_w = torch.linalg.vecdot(Y, AY, dim=0)
    rq, res = theta.clone(), estimate.clone()
    rq[idx], res[idx] = rq_w.cpu(), torch.linalg.vector_norm(AY.addcmul_(Y, rq_w, value=-1.0), dim=0).cpu()
    return rq, Y, res


def _gap_bounds(theta: torch.Tensor, res: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Quadratic (Kato–Temple type) bounds of the pairs ``idx`` among all Ritz pairs (theta, res), gaps estimated.

    Ritz values whose residual intervals [θ − r, θ + r] touch are grouped into clusters (a
    multiple or tight eigenvalue); a cluster C with ρ = (Σ_C r_i²)^½ (≥ the 2-norm of its residual
    block, the Ritz vectors being orthonormal) and estimated gap δ = min over i ∈ C, j ∉ C of
    |θ_i − θ_j| − r_j bounds each of its errors by ρ²/δ when δ > ρ (Mathias, SIAM J. Matrix
    Anal. Appl. 19 (1998), the subspace form of Kato–Temple; a one-value cluster is Kato–Temple
    itself), else by r_i. Never more than r_i; r_i when there is no other Ritz value at all.
    """
    r = res[idx]
    n = len(theta)
    if n < 2:
        return r.clone()
    order = torch.argsort(theta)
    t, q = theta[order].tolist(), res[order].tolist()
    label, c = [0] * n, 0
    for i in range(1, n):
        c += t[i] - t[i - 1] > q[i] + q[i - 1]
        label[i] = c
    out = torch.empty_like(r)
    position = {int(o): i for i, o in enumerate(order)}
    for w, i in enumerate(idx.tolist()):
        i = position[i]
        members = [a for a in range(n) if label[a] == label[i]]
        rho2 = sum(q[a] ** 2 for a in members)
        others = [b for b in range(n) if label[b] != label[i]]
        delta = min((abs(t[a] - t[b]) - q[b] for a in members for b in others), default=0.0)
        out[w] = min(q[i], rho2 / delta) if delta > math.sqrt(rho2) else q[i]
    return out


def _residual_cap(tol: float, criterion: str) -> float:
    """Either test needs every residual ≤ this·‖A‖: tol for "residual", √tol for "gap" (which also bounds the gap bounds)."""
    return tol if criterion == "residual" else math.sqrt(tol)


def _converged(bounds: torch.Tensor, gap_bounds: torch.Tensor, tol: float, scale: float, criterion: str) -> torch.Tensor:
    small = bounds <= _residual_cap(tol, criterion) * scale
    return small if criterion == "residual" else small & (gap_bounds <= tol * scale)


def _result(values, vectors, bounds, gap_bounds, tol, scale, matvecs, which, method, criterion, dtype) -> EigenResult:
    values, vectors, bounds, gap_bounds = (t.cpu() for t in (values, vectors, bounds, gap_bounds))  # results live on the CPU
    order = torch.argsort(values)
    bounds, gap_bounds = bounds[order], gap_bounds[order]
    # the estimated gap is trusted only below the residual cap (module docstring): an unconverged pair keeps r
    gap_bounds = torch.where(bounds <= _residual_cap(tol, criterion) * scale, gap_bounds, bounds)
    floor = rounding_floor(dtype, scale)  # the products' own rounding: no bound below it (losslab.tolerances)
    bounds, gap_bounds = bounds.clamp_min(floor), gap_bounds.clamp_min(floor)
    return EigenResult(
        values=values[order],
        vectors=vectors[:, order].contiguous(),
        bounds=bounds,
        gap_bounds=gap_bounds,
        converged=_converged(bounds, gap_bounds, tol, scale, criterion),
        matvecs=matvecs,
        which=which,
        tol=tol,
        norm_estimate=scale,
        method=method,
        criterion=criterion,
    )
