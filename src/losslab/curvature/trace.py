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

Probes go through batched ``matmat`` calls, a block of them at a time within the operator's
``memory_budget`` (:mod:`losslab.memory`): the estimate is the same to rounding whatever the block
size. The probes themselves are held as int8 signs (p bytes each). Hutch++'s sketch Q and XTrace's
m probes must fit whole; when they do not, the estimator refuses before drawing them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import LosslabError, positive_int, seed_int
from .._threads import with_analysis_threads
from ..memory import F64_BYTES, blocks, fits, probe_bytes, require, sketch_bytes, xtrace_bytes
from ..random_streams import generator
from ..tolerances import rounding_floor
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
            leave-one-out estimates / √m, the paper's error estimate; by the delta method for a norm),
            never below the rounding floor of the products: c·ε·‖A‖₂·p for a trace (each sample
            zᵀAz with ‖z‖² = p is within c·ε·‖A‖₂·p of exact), c·ε·‖A‖₂·√p for ‖A‖_F, with c·ε from
            :mod:`losslab.tolerances` for the operator's dtype and ‖A‖₂ estimated by the largest
            ‖Az‖/‖z‖ among the products made (a lower bound).
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


def _signs(p: int, s: int, gen: torch.Generator) -> torch.Tensor:
    """(p, s) Rademacher draws 0/1 as int8 on the CPU generator ``gen``: the numbers ``torch.randint(0, 2, (p, s))``
    draws (the same probes on every device, and whatever the block size), at one byte each."""
    return torch.randint(0, 2, (p, s), generator=gen, dtype=torch.int8)


def _columns(signs: torch.Tensor, cols: slice, device: torch.device) -> torch.Tensor:
    """The ±1 probes of ``signs[:, cols]`` in float64 on ``device``."""
    return (2 * signs[:, cols].to(F64) - 1).to(device)


def _rademacher(p: int, s: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """(p, s) ±1 entries in float64, drawn on the CPU generator ``gen`` (the same probes on every device), moved to ``device``."""
    return _columns(_signs(p, s, gen), slice(None), device)


def _mm(op: CurvatureOperator, V: torch.Tensor) -> torch.Tensor:
    return op.matmat(V.to(op.dtype)).to(F64)


def _block(op: CurvatureOperator, held: int, what: str, setting: str) -> int:
    """Probes per block next to ``held`` bytes, within the operator's budget; refuses when not one fits."""
    p = op.shape[0]
    require(held + probe_bytes(p), op.memory_budget, what, setting)
    return fits(probe_bytes(p), op.memory_budget, held)


def _forms(
    op: CurvatureOperator, signs: torch.Tensor, form, *, Q: torch.Tensor | None = None, what: str, setting: str, rows: int = 1
) -> torch.Tensor:
    """``form(z, A z)`` (a (b,) tensor per block) for each probe z of ``signs`` (deflated: z ← (I − QQᵀ)z), a block at a time."""
    held = signs.numel() + (0 if Q is None else Q.numel() * F64_BYTES)
    size = _block(op, held, what, setting)
    out = []
    for cols in blocks(signs.shape[1], size):
        Z = _columns(signs, cols, op.device)
        if Q is not None:
            Z = Z - Q @ (Q.T @ Z)
        out.append(form(Z, _mm(op, Z)))
    return torch.cat(out, dim=-1) if rows > 1 else torch.cat(out)


def _products(op: CurvatureOperator, V: torch.Tensor | None, signs: torch.Tensor | None, held: int) -> torch.Tensor:
    """A·V (p, m) in float64 (V float64, or the probes of ``signs``), a block of columns at a time next to ``held`` bytes."""
    p, m = (V if V is not None else signs).shape
    out = torch.empty(p, m, dtype=F64, device=op.device)
    for cols in blocks(m, fits(probe_bytes(p), op.memory_budget, held)):
        out[:, cols] = _mm(op, V[:, cols] if V is not None else _columns(signs, cols, op.device))
    return out


def _quadratic(Z: torch.Tensor, AZ: torch.Tensor) -> torch.Tensor:
    return (Z * AZ).sum(0)


def _with_gain(form):
    """``form`` and ‖Az‖/‖z‖ per probe, stacked (2, b): the second row gives the norm estimate of the rounding floor."""
    return lambda Z, AZ: torch.stack([form(Z, AZ), AZ.norm(dim=0) / Z.norm(dim=0).clamp_min(torch.finfo(F64).tiny)])


def _floor(op: CurvatureOperator, gains: torch.Tensor, power: float = 1.0) -> float:
    """c·ε·‖A‖₂·p^power: the rounding floor of a trace (power 1) or a Frobenius norm (½), ‖A‖₂ ≥ the largest gain ‖Az‖/‖z‖."""
    return rounding_floor(op.dtype, float(gains.max()) if gains.numel() else 0.0) * op.shape[0] ** power


def _deflated_hutchinson(op: CurvatureOperator, Q: torch.Tensor, g: int, gen: torch.Generator) -> tuple[float, float]:
    """Hutchinson on (I − QQᵀ)A(I − QQᵀ) with g fresh Rademacher probes: (mean, stderr). Hutch++'s second part."""
    signs = _signs(op.shape[0], g, gen)
    return _mean_stderr(_forms(op, signs, _quadratic, Q=Q, what=f"the deflated Hutchinson part ({g} probes)", setting="samples"))


def _probe_forms(problem_or_operator: object, theta: object, samples: int, seed: int, form, what: str):
    """(op, s, seed, forms): ``form(z, A z)`` and the gain ‖Az‖/‖z‖ (rows of forms, (2, s)) for s ≥ 2 Rademacher probes z
    from the ``"probes"`` stream of ``seed``; refused before drawing them when they and a block of products exceed the budget."""
    op = as_operator(problem_or_operator, theta)
    s = positive_int("samples", samples, minimum=2)
    seed = seed_int("seed", seed)
    p = op.shape[0]
    what = f"{what} with {s} probes of p = {p:,}"
    require(s * p + probe_bytes(p), op.memory_budget, what, "samples")
    signs = _signs(p, s, generator(seed, "probes"))
    return op, s, seed, _forms(op, signs, _with_gain(form), what=what, setting="samples", rows=2)


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
        A :class:`TraceEstimate`; exact for a diagonal A (stderr: the rounding floor only).

    Raises:
        LosslabError: the probes (s·p bytes) and one block of products over the operator's ``memory_budget``.

    Example:
        >>> from losslab.curvature import MatrixOperator
        >>> hutchinson(MatrixOperator(torch.eye(4, dtype=torch.float64)), samples=3).estimate
        4.0
    """
    op, s, seed, forms = _probe_forms(problem_or_operator, theta, samples, seed, _quadratic, "Hutchinson")
    est, se = _mean_stderr(forms[0])
    return TraceEstimate(est, max(se, _floor(op, forms[1])), s, s, "hutchinson", seed)


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

    Raises:
        LosslabError: the sketch (3·⌊s/3⌋·p float64 values, :func:`losslab.memory.sketch_bytes`) over the
            operator's ``memory_budget``: lower ``samples``.
    """
    op = as_operator(problem_or_operator, theta)
    total = positive_int("samples", samples, minimum=6)
    seed = seed_int("seed", seed)
    p = op.shape[0]
    gen = generator(seed, "probes")
    m = min(total // 3, p)
    require(sketch_bytes(p, m) + p * total, op.memory_budget, f"Hutch++'s sketch of {m} columns of p = {p:,}", "samples")
    S = _signs(p, m, gen)
    held = 3 * m * p * F64_BYTES  # A S, then Q and the factorisation's copy
    AS = _products(op, None, S, held)
    floor = _floor(op, AS.norm(dim=0) / math.sqrt(p))  # ‖s‖ = √p for a Rademacher column
    Q, _ = torch.linalg.qr(AS)
    del AS
    head = 0.0
    for cols in blocks(m, fits(probe_bytes(p), op.memory_budget, held)):
        head += float((Q[:, cols] * _mm(op, Q[:, cols])).sum())
    if m == p:  # Q spans R^p: the trace is tr(QᵀAQ), nothing left to estimate
        return TraceEstimate(head, floor, 0, 2 * m, "hutch++", seed)
    g = total - 2 * m
    tail, se = _deflated_hutchinson(op, Q, g, gen)
    return TraceEstimate(head + tail, max(se, floor), g, 2 * m + g, "hutch++", seed)


@with_analysis_threads
def xtrace(problem_or_operator: object, theta: object = None, *, samples: int = 48, seed: int = 0) -> TraceEstimate:
    """XTrace: the mean of m leave-one-out Hutch++ estimates that share one sketch (Epperly, Tropp & Webber 2024).

    With m = ⌊s/2⌋ Rademacher probes Ω = [ω_1 … ω_m] (p, m), Y = AΩ = QR and Z = AQ (2m products
    in all), estimate i uses the sketch of the other m − 1 probes, whose projector is
    P_i = Q(I − s_i s_iᵀ)Qᵀ with s_i the normalised i-th column of R⁻ᵀ, and ω_i as the Hutchinson
    probe of the rest:

        t_i = tr(QᵀZ) − s_iᵀ(QᵀZ)s_i + u_iᵀ(y_i − Z c_i),   c_i = (I − s_i s_iᵀ)Qᵀω_i,  u_i = ω_i − Q c_i,

    and the estimate is (1/m) Σ t_i, unbiased like Hutch++ and with a smaller error at the same
    number of products. When ⌊s/2⌋ ≥ p the sketch spans everything and the result is exact (stderr:
    the rounding floor only). When AΩ is numerically rank-deficient (a singular value below √ε of the largest, ε of the
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

    Raises:
        LosslabError: samples too small, or its m probes and their products (7·m·p float64 values,
            :func:`losslab.memory.xtrace_bytes`) over the operator's ``memory_budget``: lower ``samples``.

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
    require(xtrace_bytes(p, m), op.memory_budget, f"XTrace's {m} probes of p = {p:,}", "samples")
    gen = generator(seed, "probes")
    Omega = _rademacher(p, m, gen, op.device)
    Y = _products(op, Omega, None, xtrace_bytes(p, m))
    floor = _floor(op, Y.norm(dim=0) / math.sqrt(p))  # ‖ω‖ = √p for a Rademacher column
    if m == p:  # Q spans R^p: the trace is tr(QᵀAQ), nothing left to estimate
        Q, _ = torch.linalg.qr(Y)
        return TraceEstimate(float((Q * _products(op, Q, None, xtrace_bytes(p, m))).sum()), floor, 0, 2 * p, "xtrace", seed)
    U, sv, _ = torch.linalg.svd(Y, full_matrices=False)
    rank = int((sv > sv[0] * torch.finfo(op.dtype).eps ** 0.5).sum()) if float(sv[0]) > 0 else 0
    if rank < m:  # AΩ (numerically) rank-deficient: R⁻¹ is not usable; Hutch++ on the rank-r sketch, fresh probes for the rest
        Q = U[:, :rank]
        head = float((Q * _products(op, Q, None, xtrace_bytes(p, m))).sum()) if rank else 0.0
        g = max(2, m - rank)
        tail, se = _deflated_hutchinson(op, Q, g, gen)
        return TraceEstimate(head + tail, max(se, floor), g, m + rank + g, "xtrace", seed)
    Q, R = torch.linalg.qr(Y)
    Z = _products(op, Q, None, xtrace_bytes(p, m))
    T = Q.T @ Z  # QᵀAQ (m, m)
    S = torch.linalg.solve_triangular(R, torch.eye(m, dtype=F64, device=R.device), upper=True).T  # R⁻ᵀ
    S = S / S.norm(dim=0)  # s_i: the direction in range(Q) that only probe i's column of Y reaches
    W = Q.T @ Omega
    C = W - S * (S * W).sum(0)  # c_i = (I − s_i s_iᵀ) Qᵀ ω_i
    U, V = Omega - Q @ C, Y - Z @ C  # (I − P_i) ω_i and A (I − P_i) ω_i, column by column
    t = torch.trace(T) - ((T @ S) * S).sum(0) + (U * V).sum(0)
    est, se = _mean_stderr(t)
    return TraceEstimate(est, max(se, floor), m, 2 * m, "xtrace", seed)


def frobenius_norm(problem_or_operator: object, theta: object = None, *, samples: int = 100, seed: int = 0) -> TraceEstimate:
    """‖A‖_F ≈ sqrt((1/s) Σ_i ‖A z_i‖²), Rademacher z_i (E‖Az‖² = tr(AᵀA) = ‖A‖_F²).

    E.g. the size of the feature-learning curvature: ``frobenius_norm(nonlinearity_curvature(problem, θ))``.
    The standard error is the delta method's, se(‖A‖_F²) / (2‖A‖_F). The probes come from the
    ``"probes"`` stream of ``seed`` (:mod:`losslab.random_streams`).
    """
    op, s, seed, forms = _probe_forms(problem_or_operator, theta, samples, seed, lambda Z, AZ: (AZ**2).sum(0), "‖A‖_F")
    sq, se = _mean_stderr(forms[0])
    norm = math.sqrt(max(sq, 0.0))
    return TraceEstimate(norm, max(se / (2 * norm) if norm > 0 else 0.0, _floor(op, forms[1], 0.5)), s, s, "frobenius", seed)
