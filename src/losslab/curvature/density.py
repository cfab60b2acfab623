"""Spectral density by stochastic Lanczos quadrature (SLQ).

The spectral density of a symmetric p × p operator is φ(t) = (1/p) Σ_i δ(t − λ_i). For a unit
vector v, m steps of Lanczos from v give T_m = S diag(θ) Sᵀ, and the nodes θ_j with weights
τ_j = S_{1j}² are the m-point Gauss quadrature of the measure Σ_i (q_iᵀv)² δ(t − λ_i): exact for
polynomials of degree ≤ 2m − 1 (Golub & Meurant, *Matrices, Moments and Quadrature*, 2010).
For v = z/‖z‖ with z Rademacher, E Σ_i (q_iᵀv)² g(λ_i) = (1/p) tr g(A), so averaging over
probes estimates φ (Lin, Saad & Yang 2016, "Approximating spectral densities of large
matrices"; Ghorbani, Krishnan & Xiao 2019, "An investigation into neural net optimization via
Hessian eigenvalue density"). A Gaussian kernel of width σ turns the nodes into a smooth curve.

The probes advance together in blocks, one batched ``matmat`` per Lanczos step; each probe's
vectors are fully reorthogonalised (two Gram–Schmidt passes) against its own basis. A block holds
as many probes as their bases (steps × p float64 each) fit in the operator's ``memory_budget``
(:mod:`losslab.memory`); the probes are independent, so the result is the same to rounding
whatever the block size. When one probe's basis does not fit, it refuses before allocating it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import LosslabError, finite_float, positive_int, seed_int
from .._threads import with_analysis_threads
from ..memory import blocks, fits, require, slq_probe_bytes
from ..random_streams import generator
from .operator import as_operator
from .trace import _columns, _signs

__all__ = ["SpectralDensity", "spectral_density"]

F64 = torch.float64


@dataclass(frozen=True)
class SpectralDensity:
    """SLQ nodes and weights per probe, and the smoothed density on a grid.

    Attributes:
        nodes: Ritz values θ, shape (probes, steps); probe l uses its first ``lengths[l]``
            (later entries are 0 with weight 0: its Krylov space became invariant early).
        weights: τ = (first components of T's eigenvectors)², shape (probes, steps); each row
            sums to 1.
        lengths: Lanczos steps taken per probe, shape (probes,).
        grid: points t, shape (G,).
        density: (1/probes) Σ_l Σ_j τ_lj N(t; θ_lj, σ²) on ``grid``, shape (G,); integrates to
            ~1 when the grid covers the nodes ± a few σ (the default grid does).
        sigma: the Gaussian kernel width σ.
        matvecs: operator–vector products used.
        seed: the seed of the probes.
    """

    nodes: torch.Tensor
    weights: torch.Tensor
    lengths: torch.Tensor
    grid: torch.Tensor
    density: torch.Tensor
    sigma: float
    matvecs: int
    seed: int

    def moment(self, r: int) -> float:
        """∫ t^r φ(t) dt ≈ tr(A^r)/p, from the nodes (not the smoothed curve); exact per probe for r ≤ 2·steps − 1."""
        return float((self.weights * self.nodes**r).sum(1).mean())

    def cdf(self, t: object) -> torch.Tensor:
        """The fraction of eigenvalues ≤ t, from the nodes: (1/probes) Σ_l Σ_j τ_lj [θ_lj ≤ t]; t of any shape."""
        t = torch.as_tensor(t, dtype=F64)
        below = (self.nodes[..., None] <= t.reshape(-1)).to(F64)  # (probes, steps, T)
        return (self.weights[..., None] * below).sum(1).mean(0).reshape(t.shape)


def _lanczos_probes(op, Z: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Lanczos from each column of Z (p, b, on the operator's device) at once: (alpha (b, steps), beta (b, steps), lengths (b,)
    on the CPU, products)."""
    p, b = Z.shape
    dev = Z.device
    V = torch.zeros(b, steps, p, dtype=F64, device=dev)
    alpha, beta = torch.zeros(b, steps, dtype=F64, device=dev), torch.zeros(b, steps, dtype=F64, device=dev)
    lengths = torch.full((b,), steps, dtype=torch.int64, device=dev)
    active = torch.ones(b, dtype=torch.bool, device=dev)
    scale = torch.zeros(b, dtype=F64, device=dev)
    v = (Z / torch.linalg.vector_norm(Z, dim=0)).T.contiguous()  # (b, p)
    products = 0
    for j in range(steps):
        idx = active.nonzero()[:, 0]
        V[idx, j] = v[idx]
        w = torch.zeros(b, p, dtype=F64, device=dev)
        w[idx] = op.matmat(v[idx].T.to(op.dtype)).T.to(F64)
        products += len(idx)
        B = V[:, : j + 1]  # (b, j+1, p)
        h = torch.einsum("bjp,bp->bj", B, w)
        w = w - torch.einsum("bjp,bj->bp", B, h)
        h2 = torch.einsum("bjp,bp->bj", B, w)
        w = w - torch.einsum("bjp,bj->bp", B, h2)
        alpha[:, j] = (h + h2)[:, j]
        beta[:, j] = torch.linalg.vector_norm(w, dim=1)
        scale = torch.maximum(scale, torch.maximum(alpha[:, j].abs(), beta[:, j]))
        stop = active & (beta[:, j] <= 1e-10 * scale)  # invariant subspace: the quadrature is exact
        lengths[stop] = j + 1
        active &= ~stop
        if j == steps - 1 or not bool(active.any()):
            break
        v = torch.where(active[:, None], w / beta[:, j : j + 1].clamp_min(1e-300), torch.zeros_like(w))
    return alpha.cpu(), beta.cpu(), lengths.cpu(), products


@with_analysis_threads
def spectral_density(
    problem_or_operator: object,
    theta: object = None,
    *,
    probes: int = 10,
    steps: int = 40,
    sigma: float | None = None,
    grid: object = None,
    points: int = 512,
    seed: int = 0,
) -> SpectralDensity:
    """The spectral density of the Hessian (or any operator) by stochastic Lanczos quadrature.

    Args:
        problem_or_operator: a :class:`~losslab.Problem` (its Hessian at ``theta``) or an operator.
        theta: the point (p,) with a Problem.
        probes: Rademacher start vectors (≥ 1); the error of moments falls like 1/√(probes·p).
        steps: Lanczos steps per probe (capped at p); products = probes × steps at most.
        sigma: Gaussian kernel width; default 1 % of the node range, 1e-3·|λ| when all nodes are one value λ (ρ resolves features wider
            than σ; choose it larger than the gaps you do not want to see).
        grid: points t where the density is evaluated (1-D); default ``points`` points spanning
            the nodes ± 5σ.
        points: size of the default grid (≥ 2).
        seed: seeds the probes (its ``"probes"`` stream, :mod:`losslab.random_streams`).

    Returns:
        A :class:`SpectralDensity`.

    Raises:
        LosslabError: bad arguments, or one probe's Lanczos basis ((steps + 6)·p float64 values,
            :func:`losslab.memory.slq_probe_bytes`) over the operator's ``memory_budget``: lower ``steps``.

    Example:
        >>> from losslab.curvature import MatrixOperator
        >>> op = MatrixOperator(torch.diag(torch.arange(1.0, 51.0, dtype=torch.float64)))
        >>> sd = spectral_density(op, probes=4, steps=10)
        >>> round(sd.moment(1), 6), round(float(torch.trapezoid(sd.density, sd.grid)), 3)  # tr(A)/p = 25.5
        (25.5, 1.0)
    """
    op = as_operator(problem_or_operator, theta)
    p = op.shape[0]
    probes = positive_int("probes", probes)
    steps = min(positive_int("steps", steps), p)
    points = positive_int("points", points, minimum=2)
    seed = seed_int("seed", seed)
    per_probe = slq_probe_bytes(p, steps)
    require(p * probes + per_probe, op.memory_budget, f"one probe's Lanczos basis ({steps} steps of p = {p:,})", "steps")
    signs = _signs(p, probes, generator(seed, "probes"))  # on the CPU: the same probes on every device
    parts = [_lanczos_probes(op, _columns(signs, cols, op.device), steps)
             for cols in blocks(probes, fits(per_probe, op.memory_budget, p * probes))]
    alpha, beta, lengths = (torch.cat([part[i] for part in parts]) for i in range(3))
    products = sum(part[3] for part in parts)
    nodes = torch.zeros(probes, steps, dtype=F64)
    weights = torch.zeros(probes, steps, dtype=F64)
    for lth in range(probes):
        n = int(lengths[lth])
        T = torch.diag(alpha[lth, :n]) + torch.diag(beta[lth, : n - 1], 1) + torch.diag(beta[lth, : n - 1], -1)
        theta_l, S = torch.linalg.eigh(T)
        nodes[lth, :n], weights[lth, :n] = theta_l, S[0] ** 2
    mask = torch.arange(steps) < lengths[:, None]
    lo, hi = float(nodes[mask].min()), float(nodes[mask].max())
    if sigma is None:
        sigma = 0.01 * (hi - lo) if hi > lo else (1e-3 * abs(hi) if hi else 1.0)  # relative to the spectrum's scale
    sigma = finite_float("sigma", sigma, positive=True)
    if grid is None:
        grid = torch.linspace(lo - 5 * sigma, hi + 5 * sigma, points, dtype=F64)
    else:
        grid = torch.as_tensor(grid, dtype=F64)
        if grid.ndim != 1 or len(grid) < 2:
            raise LosslabError(f"expected grid of shape (G,) with G >= 2, got shape {tuple(grid.shape)}")
    kernel = torch.exp(-0.5 * ((grid - nodes[..., None]) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    density = (weights[..., None] * kernel).sum(1).mean(0)
    return SpectralDensity(nodes, weights, lengths, grid, density, sigma, products, seed)
