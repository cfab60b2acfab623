"""Stochastic trace estimates from operator products: Hutchinson and Hutch++.

Hutchinson (1989): for Rademacher z (entries ±1, E zzᵀ = I), E[zᵀAz] = tr(A), and the mean of s
samples has variance 2(‖A‖_F² − Σ_i A_ii²)/s. Hutch++ (Meyer, Musco, Musco & Woodruff 2021,
"Hutch++: Optimal Stochastic Trace Estimation") spends a third of its products on a sketch
Q = orth(A S) of the dominant range, takes tr(QᵀAQ) exactly and Hutchinson only on the
deflated rest (I − QQᵀ)A(I − QQᵀ): error O(1/s) instead of O(1/√s) when the spectrum decays
(as Hessian spectra do: a few outliers and a bulk near zero). XTrace (Epperly, Tropp & Webber
2024, "XTrace: making the most of every sample in stochastic trace estimation", SIMAX 45(1))
uses every probe twice: each of its m probes is left out of the sketch in turn and used as the
Hutchinson probe of the rest, and the m exchangeable estimates are averaged. On the digits CNN's
Hessian (benchmarks/curvature_dataloader.py) it reaches a 1 % RMS error with about 44 products,
Hutch++ with about 60.

All probes of an estimate go through one batched ``matmat``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import LosslabError, positive_int, seed_int
from .._threads import with_analysis_threads
from ..random_streams import generator
from .operator import CurvatureOperator, as_operator

__all__ = ["TraceEstimate", "frobenius_norm", "hutchinson", "hutchpp", "xtrace"]

F64 = torch.float64


@dataclass(frozen=True)
class TraceEstimate:
    """A stochastic estimate with its standard error.

    Attributes:
        estimate: the estimate (tr A for the trace estimators, ‖A‖_F for :func:`frobenius_norm`).
        stderr: its standard error, from the spread of the Hutchinson samples (sample std /
            √probes; for Hutch++ conditional on the sketch Q; for XTrace the spread of its m
            leave-one-out estimates / √m, the paper's error estimate; by the delta method for a norm).
        probes: random vectors averaged in the Hutchinson part.
        matvecs: operator–vector products used.
        method: ``"hutchinson"``, ``"hutch++"``, ``"xtrace"`` or ``"frobenius"``.
        seed: the seed of the probes (drawn from its ``"probes"`` stream, :mod:`losslab.random_streams`).
    """

    estimate: float
    stderr: float
    probes: int
    matvecs: int
    method: str
    seed: int


def _rademacher(p: int, s: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """(p, s) ±1 entries in float64, drawn on the CPU generator ``gen`` (the same probes on every device), moved to ``device``."""
    return (2 * torch.randint(0, 2, (p, s), generator=gen) - 1).to(F64).to(device)


def _mm(op: CurvatureOperator, V: torch.Tensor) -> torch.Tensor:
    return op.matmat(V.to(op.dtype)).to(F64)


def _deflated_hutchinson(op: CurvatureOperator, Q: torch.Tensor, g: int, gen: torch.Generator) -> tuple[float, float]:
    """Hutchinson on (I − QQᵀ)A(I − QQᵀ) with g fresh Rademacher probes: (mean, stderr). Hutch++'s second part."""
    G = _rademacher(op.shape[0], g, gen, op.device)
    G = G - Q @ (Q.T @ G)
    return _mean_stderr((G * _mm(op, G)).sum(0))


def _mean_stderr(x: torch.Tensor) -> tuple[float, float]:
    mean = float(x.mean())
    return mean, float(x.std(correction=1)) / math.sqrt(len(x)) if len(x) > 1 else math.inf


@with_analysis_threads
def hutchinson(problem_or_operator: object, theta: object = None, *, samples: int = 100, seed: int = 0) -> TraceEstimate:
    """tr(A) ≈ (1/s) Σ_i z_iᵀ A z_i with s Rademacher probes z_i (p,).

    Args:
        problem_or_operator: a :class:`~losslab.Problem` (its Hessian at ``theta``) or an operator.
        theta: the point (p,) with a Problem.
        samples: s ≥ 2, the number of probes (= operator products).
        seed: seeds the probes (its ``"probes"`` stream, :mod:`losslab.random_streams`).

    Returns:
        A :class:`TraceEstimate`; exact (stderr 0) for a diagonal A.

    Example:
        >>> from losslab.curvature import MatrixOperator
        >>> hutchinson(MatrixOperator(torch.eye(4, dtype=torch.float64)), samples=3).estimate
        4.0
    """
    op = as_operator(problem_or_operator, theta)
    s = positive_int("samples", samples, minimum=2)
    seed = seed_int("seed", seed)
    Z = _rademacher(op.shape[0], s, generator(seed, "probes"), op.device)
    est, se = _mean_stderr((Z * _mm(op, Z)).sum(0))
    return TraceEstimate(est, se, s, s, "hutchinson", seed)


@with_analysis_threads
def hutchpp(problem_or_operator: object, theta: object = None, *, samples: int = 99, seed: int = 0) -> TraceEstimate:
    """Hutch++: tr(A) ≈ tr(QᵀAQ) + Hutchinson on (I − QQᵀ)A(I − QQᵀ), Q = orth(A S).

    With a budget of s products: S has ⌊s/3⌋ Rademacher columns (⌊s/3⌋ products for A S, as many
    for A Q), and the remaining s − 2⌊s/3⌋ probes G go to the deflated part. When ⌊s/3⌋ ≥ p the
    sketch spans everything and the estimate is exact.

    Args:
        problem_or_operator: a :class:`~losslab.Problem` (its Hessian at ``theta``) or an operator.
        theta: the point (p,) with a Problem.
        samples: s ≥ 6, the total number of operator products.
        seed: seeds S and G (its ``"probes"`` stream, :mod:`losslab.random_streams`).

    Returns:
        A :class:`TraceEstimate` whose ``stderr`` is that of the deflated Hutchinson part,
        conditional on the sketch (the sketch's own randomness is not in it).
    """
    op = as_operator(problem_or_operator, theta)
    total = positive_int("samples", samples, minimum=6)
    seed = seed_int("seed", seed)
    p = op.shape[0]
    gen = generator(seed, "probes")
    m = min(total // 3, p)
    S = _rademacher(p, m, gen, op.device)
    Q, _ = torch.linalg.qr(_mm(op, S))
    head = float((Q * _mm(op, Q)).sum())
    if m == p:  # Q spans R^p: the trace is tr(QᵀAQ), nothing left to estimate
        return TraceEstimate(head, 0.0, 0, 2 * m, "hutch++", seed)
    g = total - 2 * m
    tail, se = _deflated_hutchinson(op, Q, g, gen)
    return TraceEstimate(head + tail, se, g, 2 * m + g, "hutch++", seed)


@with_analysis_threads
def xtrace(problem_or_operator: object, theta: object = None, *, samples: int = 48, seed: int = 0) -> TraceEstimate:
    """XTrace: the mean of m leave-one-out Hutch++ estimates that share one sketch (Epperly, Tropp & Webber 2024).

    With m = ⌊s/2⌋ Rademacher probes Ω = [ω_1 … ω_m] (p, m), Y = AΩ = QR and Z = AQ (2m products
    in all), estimate i uses the sketch of the other m − 1 probes, whose projector is
    P_i = Q(I − s_i s_iᵀ)Qᵀ with s_i the normalised i-th column of R⁻ᵀ, and ω_i as the Hutchinson
    probe of the rest:

        t_i = tr(QᵀZ) − s_iᵀ(QᵀZ)s_i + u_iᵀ(y_i − Z c_i),   c_i = (I − s_i s_iᵀ)Qᵀω_i,  u_i = ω_i − Q c_i,

    and the estimate is (1/m) Σ t_i, unbiased like Hutch++ and with a smaller error at the same
    number of products. When ⌊s/2⌋ ≥ p the sketch spans everything and the result is exact (stderr
    0). When AΩ is numerically rank-deficient (a singular value below √ε of the largest, ε of the
    operator's dtype: a low-rank A, or probes that miss part of its range), R⁻¹ is not usable and
    the estimate is Hutch++'s: tr(QᵀAQ) on the r-column basis plus Hutchinson with max(2, m − r)
    fresh probes on the deflated rest (≈ 0 for an exactly low-rank A, with its own stderr).

    Args:
        problem_or_operator: a :class:`~losslab.Problem` (its Hessian at ``theta``) or a symmetric operator.
        theta: the point (p,) with a Problem.
        samples: s ≥ 16 (or ≥ 2p, exact), the budget of operator products; 2⌊s/2⌋ are used.
        seed: seeds Ω (its ``"probes"`` stream, :mod:`losslab.random_streams`).

    Returns:
        A :class:`TraceEstimate` (``method="xtrace"``, ``probes`` = m) whose ``stderr`` is the
        standard deviation of the t_i over √m (the paper's error estimate). The t_i share one
        sketch and are not independent, so it understates the error: over 30 seeds on a digits
        MLP's Hessian the errors were 1.2–1.8 of it (RMS of error/stderr; Hutch++'s 1.06), and
        more with a sketch of nearly p columns on a flat spectrum. Below 8 probes it was useless
        (4–28×), hence the minimum budget.

    Example:
        >>> from losslab.curvature import MatrixOperator
        >>> A = torch.diag(torch.arange(1.0, 101.0, dtype=torch.float64))
        >>> round(xtrace(MatrixOperator(A), samples=40, seed=0).estimate / 5050, 1)
        1.0
    """
    op = as_operator(problem_or_operator, theta)
    total = positive_int("samples", samples)
    p = op.shape[0]
    if total < min(16, 2 * p):
        raise LosslabError(
            f"expected samples >= 16 for XTrace (its error estimate needs 8 probes or more), got samples={total}; "
            "use hutchpp or hutchinson for a smaller budget"
        )
    seed = seed_int("seed", seed)
    m = min(total // 2, p)
    gen = generator(seed, "probes")
    Omega = _rademacher(p, m, gen, op.device)
    Y = _mm(op, Omega)
    if m == p:  # Q spans R^p: the trace is tr(QᵀAQ), nothing left to estimate
        Q, _ = torch.linalg.qr(Y)
        return TraceEstimate(float((Q * _mm(op, Q)).sum()), 0.0, 0, 2 * p, "xtrace", seed)
    U, sv, _ = torch.linalg.svd(Y, full_matrices=False)
    rank = int((sv > sv[0] * torch.finfo(op.dtype).eps ** 0.5).sum()) if float(sv[0]) > 0 else 0
    if rank < m:  # AΩ (numerically) rank-deficient: R⁻¹ is not usable; Hutch++ on the rank-r sketch, fresh probes for the rest
        Q = U[:, :rank]
        head = float((Q * _mm(op, Q)).sum()) if rank else 0.0
        g = max(2, m - rank)
        tail, se = _deflated_hutchinson(op, Q, g, gen)
        return TraceEstimate(head + tail, se, g, m + rank + g, "xtrace", seed)
    Q, R = torch.linalg.qr(Y)
    Z = _mm(op, Q)
    T = Q.T @ Z  # QᵀAQ (m, m)
    S = torch.linalg.solve_triangular(R, torch.eye(m, dtype=F64, device=R.device), upper=True).T  # R⁻ᵀ
    S = S / S.norm(dim=0)  # s_i: the direction in range(Q) that only probe i's column of Y reaches
    W = Q.T @ Omega
    C = W - S * (S * W).sum(0)  # c_i = (I − s_i s_iᵀ) Qᵀ ω_i
    U, V = Omega - Q @ C, Y - Z @ C  # (I − P_i) ω_i and A (I − P_i) ω_i, column by column
    t = torch.trace(T) - ((T @ S) * S).sum(0) + (U * V).sum(0)
    est, se = _mean_stderr(t)
    return TraceEstimate(est, se, m, 2 * m, "xtrace", seed)


def frobenius_norm(problem_or_operator: object, theta: object = None, *, samples: int = 100, seed: int = 0) -> TraceEstimate:
    """‖A‖_F ≈ sqrt((1/s) Σ_i ‖A z_i‖²), Rademacher z_i (E‖Az‖² = tr(AᵀA) = ‖A‖_F²).

    E.g. the size of the feature-learning curvature: ``frobenius_norm(nonlinearity_curvature(problem, θ))``.
    The standard error is the delta method's, se(‖A‖_F²) / (2‖A‖_F). The probes come from the
    ``"probes"`` stream of ``seed`` (:mod:`losslab.random_streams`).
    """
    op = as_operator(problem_or_operator, theta)
    s = positive_int("samples", samples, minimum=2)
    seed = seed_int("seed", seed)
    Z = _rademacher(op.shape[0], s, generator(seed, "probes"), op.device)
    sq, se = _mean_stderr((_mm(op, Z) ** 2).sum(0))
    norm = math.sqrt(max(sq, 0.0))
    return TraceEstimate(norm, se / (2 * norm) if norm > 0 else 0.0, s, s, "frobenius", seed)
