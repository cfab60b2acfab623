"""Extreme eigenpairs of a curvature operator: thick-restart Lanczos with full reorthogonalisation.

Lanczos (Lanczos 1950; Paige 1971; Golub & Van Loan, *Matrix Computations*, 4th ed., §10.1) builds
an orthonormal basis V_j of the Krylov space span{v, Av, …, A^{j−1}v} from one operator product
per step; the eigenpairs (θ_i, s_i) of the small projected matrix T_j = V_jᵀ A V_j give Ritz
pairs (θ_i, y_i = V_j s_i) whose extreme ones converge first to the extreme eigenpairs of A.
Every new vector is orthogonalised against the whole basis — after the recurrence's own
projections on the last two vectors, one classical Gram–Schmidt pass, and a second where the
first cancelled much (the DGKS test, Daniel et al. 1976: "twice is enough") — so no ghost copies
of converged eigenvalues appear; when the basis is full the
iteration restarts from the best Ritz vectors kept ("thick restart", Wu & Simon 2000, the
symmetric case of Stewart's Krylov–Schur method), which keeps memory at ``max_basis`` vectors.

Error bounds — two kinds, reported side by side.

* ``bounds`` (rigorous). For a symmetric A, any unit y and θ = yᵀAy, some eigenvalue λ of A
  satisfies |λ − θ| ≤ r = ‖Ay − θy‖ (Parlett, *The Symmetric Eigenvalue Problem*, Thm 4.5.1).
  The residual is computed from the stored operator products A·V (the true residual of the
  operator as evaluated, not the recurrence's estimate β|s_j|), at no extra products. The bound
  is about the *nearest* eigenvalue, and needs nothing else.
* ``gap_bounds`` (an estimate's consequence). If the open interval (θ − δ, θ + δ) holds no
  eigenvalue of A other than the one θ approximates, then |λ − θ| ≤ r²/δ (Kato–Temple; Saad,
  *Numerical Methods for Large Eigenvalue Problems*, 2nd ed., Thm 3.8; Parlett §11.5). Near
  convergence this is far smaller than r: an eigenvalue is accurate to the *square* of its
  residual. δ, the gap to the rest of the spectrum, is not known; it is estimated from the other
  Ritz values, each widened by its residual (the recurrence's estimate β|s_j| for the pairs not
  wanted, whose vectors are never formed): δ_i = min_{j≠i} (|θ_i − θ_j| − r_j) over all
  Ritz values of the current basis (LAPACK's and ARPACK's error-bound practice uses the
  computed eigenvalues' gaps in the same way). ``gap_bounds[i]`` is r_i²/δ_i when δ_i > r_i
  and r_i is below the residual cap of the convergence test (√tol·‖A‖, or tol·‖A‖ for
  ``criterion="residual"``), else r_i (never more than the rigorous bound): far from
  convergence the other Ritz values say little about where the rest of the spectrum is (an
  early-stopped run on a spectrum with separated outliers put eigenvalues inside the estimated
  gap in about one case in eight), so the gap is only trusted once the pair is near an
  eigenvalue. It holds whenever the estimate is right, i.e. when A has no eigenvalue closer
  to θ_i than δ_i other than the one found — which fails when Lanczos has *missed* an
  eigenvalue (see below). Ritz values are Rayleigh quotients, so the
  smallest is ≥ λ_min and the largest ≤ λ_max always.

Convergence (``criterion="gap"``, the default): a pair is accepted when its gap bound is
≤ tol·‖A‖ *and* its rigorous residual is ≤ √tol·‖A‖. The first condition is the eigenvalue
accuracy asked for; the second keeps the estimated gap from carrying the whole claim: the true
eigenvalue is always within √tol·‖A‖, and the gap estimate is only trusted once the residuals
of the neighbouring Ritz values are small enough to make it meaningful (a neighbour with a
large residual shrinks δ and turns the gap bound back into r). Since r²/δ ≈ the actual error of
a Ritz value near convergence, this stops about when the eigenvalues are as accurate as asked —
roughly half the iterations that a residual ≤ tol·‖A‖ test needs (its eigenvalues are then
accurate to ~tol²). ``criterion="residual"`` is that stricter test: every rigorous bound
≤ tol·‖A‖ (use it when the bounds themselves must be small, e.g. for sign decisions near zero
as in :func:`~losslab.curvature.classify`).

Multiple eigenvalues. In exact arithmetic a Krylov space from one start vector holds one
eigenvector per distinct eigenvalue, so a multiple eigenvalue can be returned fewer times than
its multiplicity — and the k-th value returned is then a later eigenvalue, still within its
rigorous bound of *an* eigenvalue (but not necessarily within its gap bound of the k-th). Two
guards: when the space becomes invariant (β ≈ 0, e.g. a low-rank operator) the iteration
continues from a fresh random direction orthogonal to the basis; and once the wanted pairs
converge, one more fresh direction can be added and the values must not move (one product).
Adding a unit vector q ⟂ V with Rayleigh quotient α moves converged wanted values by at most
about Σ(r_iᵀq)²/|θ_i − α| unless α itself reaches the wanted end of the spectrum — which happens
when a high-multiplicity eigenvalue there dominates random directions (the large null space of
an over-parameterised least-squares Hessian, for ``which="smallest"``). ``verify=None`` (the
default) therefore adds the fresh direction only when a random direction's Rayleigh quotient can
reach the wanted values: when the start vector's (v₀ᵀAv₀, free) is within 6 estimated standard
deviations of them (the spread of vᵀAv over random unit v, √(2/(p+2))·√(‖Av₀‖² − (v₀ᵀAv₀)²),
also from the first product). ``verify=True`` always checks, ``False`` never. Neither catches
every missed copy; block Krylov methods would be needed for that. The extreme eigenvalue itself
(k = 1 per end, as in :func:`~losslab.curvature.classify`) is not affected by its multiplicity.

Products run in the operator's dtype; the Lanczos vectors and T are float64 torch tensors, so
no SciPy/BLAS thread pool competes with torch's.
"""

from __future__ import annotations

import math

import torch

from .._checks import LosslabError, choice, finite_float, positive_int, seed_int
from .._threads import with_analysis_threads
from ..memory import dense_bytes, lanczos_bytes, require
from ..random_streams import generator
from ..tolerances import smallest_usable, tolerances
from .operator import CurvatureOperator, as_operator
from .ritz import EigenResult, _converged, _gap_bounds, _residual_cap, _result, _ritz, _wanted

__all__ = ["CRITERIA", "WHICH", "EigenResult", "eigs"]

WHICH = ("largest", "smallest", "both")
CRITERIA = ("gap", "residual")
F64 = torch.float64
_DGKS = 0.5  # a second full Gram–Schmidt pass when one leaves less than this fraction of the vector (Daniel et al. 1976)
_SPREADS = 6.0  # how many estimated standard deviations of vᵀAv (random unit v) make the fresh-direction check worth a product


def _apply(op: CurvatureOperator, v: torch.Tensor) -> torch.Tensor:
    """A v in the operator's dtype, for a basis vector v (unit and finite by construction, so not re-validated)."""
    return op._counted_rows(v.to(op.dtype)[None])[0]


def _random_orthogonal(V: torch.Tensor, gen: torch.Generator) -> torch.Tensor | None:
    """A random unit vector orthogonal to the rows of V, or None if they span everything (drawn on the CPU ``gen``, on V's device)."""
    v = torch.randn(V.shape[1], generator=gen, dtype=F64).to(V.device)
    for _ in range(2):
        v = v - V.T @ (V @ v)
    n = float(torch.linalg.vector_norm(v))
    return v / n if n > 1e-8 else None


def _reaches(alpha: float, spread: float, values: torch.Tensor, k: int, which: str) -> bool:
    """Whether a random direction's Rayleigh quotient (≈ alpha ± spread) can reach the wanted values (ascending)."""
    top = bool(alpha + _SPREADS * spread >= float(values[k // 2 if which == "both" else 0]))
    bottom = bool(alpha - _SPREADS * spread <= float(values[k // 2 - 1 if which == "both" else -1]))
    if which == "largest":
        return top
    if which == "smallest":
        return bottom
    return top or (k >= 2 and bottom)


def _dense(op: CurvatureOperator, k: int, which: str, tol: float, criterion: str) -> EigenResult:
    p = op.shape[0]
    A = op.matmat(torch.eye(p, dtype=op.dtype, device=op.device)).to(F64)  # column j = A e_j, a true product
    _, S = torch.linalg.eigh((A + A.T) / 2)
    AS = A @ S
    rq = (S * AS).sum(0)
    res = torch.linalg.vector_norm(AS - S * rq, dim=0)
    idx = _wanted(p, k, which)
    scale = float(rq.abs().max())
    return _result(rq[idx], S[:, idx], res[idx], _gap_bounds(rq, res, idx), tol, scale, p, which, "dense", criterion, op.dtype)


def _lanczos(
    op: CurvatureOperator, k: int, which: str, tol: float, criterion: str, m: int, max_iter: int, seed: int, verify: bool | None
) -> EigenResult:
    p = op.shape[0]
    gen = generator(seed, "lanczos")  # on the CPU: the same start vectors on every device
    dev = op.device
    # Preallocated on the operator's device: every vector operation below writes into V, AV or w in place.
    # T (m × m) and its eigendecomposition stay on the CPU.
    V, AV = torch.empty(m, p, dtype=F64, device=dev), torch.empty(m, p, dtype=F64, device=dev)
    T = torch.zeros(m, m, dtype=F64)
    w = torch.randn(p, generator=gen, dtype=F64).to(dev)  # the work vector: A v_j, then its part orthogonal to the basis
    torch.div(w, torch.linalg.vector_norm(w), out=V[0])
    j, products, scale = 0, 0, 0.0
    alpha = spread = 0.0  # v₀ᵀAv₀ and the spread of vᵀAv over random unit v, from the first product
    verified = None  # the wanted Ritz values when they last converged, before a fresh-direction check

    def finish(rq, Y, res, idx):  # Y: the wanted vectors only
        return _result(rq[idx], Y, res[idx], _gap_bounds(rq, res, idx), tol, scale, products, which, "lanczos", criterion, op.dtype)

    while True:
        AV[j] = _apply(op, V[j])
        products += 1
        w.copy_(AV[j])
        size_w = float(torch.linalg.vector_norm(w))  # finite: the operator refuses non-finite products
        if products == 1:
            alpha = float(V[0] @ w)
            spread = size_w * math.sqrt(2.0 / (p + 2) * max(1.0 - (alpha / size_w) ** 2, 0.0)) if size_w else 0.0  # no overflow
        B = V[: j + 1]
        # The three-term recurrence's own projections first (on v_j, v_{j−1}: two dot products), which
        # remove most of Av; then one pass against the whole basis, and a second only where it cancelled
        # much (Daniel, Gragg, Kaufman & Stewart 1976) — classical Gram–Schmidt twice where it matters.
        local = B[-2:]
        h_local = torch.mv(local, w)
        w.addmv_(local.T, h_local, alpha=-1.0)
        size_local = float(torch.linalg.vector_norm(w))
        h = torch.mv(B, w)
        w.addmv_(B.T, h, alpha=-1.0)
        h[-len(h_local):] += h_local
        beta = float(torch.linalg.vector_norm(w))
        if beta < _DGKS * size_local:
            h2 = torch.mv(B, w)
            w.addmv_(B.T, h2, alpha=-1.0)
            h += h2
            beta = float(torch.linalg.vector_norm(w))
        h = h.cpu()
        T[: j + 1, j] = h
        T[j, : j + 1] = h
        j += 1
        theta, S = torch.linalg.eigh(T[:j, :j])
        scale = max(scale, float(theta.abs().max()))
        fresh = beta <= 1e-8 * size_w  # an invariant subspace: continue from a fresh direction orthogonal to it
        if j >= k:
            idx = _wanted(j, k, which)
            estimate = beta * S[-1].abs()  # ‖Ay − θy‖ of every Ritz pair by the Lanczos relation AV = VT + w e_jᵀ
            hopeful = float(estimate[idx].max()) <= _residual_cap(tol, criterion) * scale  # cheap; the gap bounds only if it holds
            hopeful = hopeful and bool(_converged(estimate[idx], _gap_bounds(theta, estimate, idx), tol, scale, criterion).all())
            if hopeful or products >= max_iter:  # (j ≤ m < p: the basis never fills R^p)
                rq, Y, res = _ritz(V[:j], AV[:j], S, theta, estimate, idx)  # true residuals, from the stored products
                if products >= max_iter:
                    return finish(rq, Y, res, idx)
                if bool(_converged(res[idx], _gap_bounds(rq, res, idx), tol, scale, criterion).all()):
                    check = verify if verify is not None else _reaches(alpha, spread, rq[idx], k, which)
                    if verified is not None:
                        if float((rq[idx] - verified).abs().max()) <= tol * scale:
                            return finish(rq, Y, res, idx)
                    elif not check:
                        return finish(rq, Y, res, idx)
                    verified, fresh = rq[idx], True  # check with a fresh random direction before stopping
        nxt = None
        if fresh:
            nxt = _random_orthogonal(V[:j], gen)
            if nxt is None:  # no direction left: j < p, so only a draw within 1e-8 of span(V) (odds under 1e-8)
                idx = _wanted(j, k, which)
                rq, Y, res = _ritz(V[:j], AV[:j], S, theta, beta * S[-1].abs(), idx)
                return finish(rq, Y, res, idx)
        if j == m:  # thick restart: keep the best Ritz vectors, continue from the next vector (orthogonal to them)
            keep = _wanted(m, k + (m - k) // 2, which)
            Sk = S[:, keep].to(dev)
            Y = None  # the last check's Ritz vectors: freed before the rotated copy
            V[: len(keep)] = Sk.T @ V  # one rotated copy at a time: keep vectors beyond V and AV (lanczos_bytes)
            AV[: len(keep)] = Sk.T @ AV
            T.zero_()
            T[: len(keep), : len(keep)] = torch.diag(theta[keep])
            j = len(keep)
        if nxt is None:
            torch.div(w, beta, out=V[j])
        else:
            V[j] = nxt


def _basis_within_budget(op: CurvatureOperator, k: int, m: int, *, given: bool) -> int:
    """The basis size to use: ``m``, or fewer vectors (more restarts) when the default does not fit the budget.

    The dense path (m ≥ p) holds 5·p² values; Lanczos holds 2·m + max(k + ⌊(m − k)/2⌋, 3·k) + 4 vectors of p and
    3·m² values at its peak (:func:`losslab.memory.lanczos_bytes`). A basis the caller chose (``given``) is kept or refused.
    """
    p, budget = op.shape[0], op.memory_budget
    dense = f"the dense {p} × {p} matrix (used when max_basis >= p)"
    if m >= p:
        if dense_bytes(p) <= budget or given:
            require(dense_bytes(p), budget, dense, "max_basis")
            return m
        m = p - 1
        if m < k + 2:  # too few vectors for a restarted Lanczos: only the dense path is left
            require(dense_bytes(p), budget, dense, "k")
    if not given:
        while m > k + 2 and lanczos_bytes(p, m, k) > budget:
            m -= 1
    what = f"Lanczos for {k} eigenpair(s) with a basis of {m} vectors of p = {p:,}"
    require(lanczos_bytes(p, m, k), budget, what, "max_basis" if given else "k")
    return m


@with_analysis_threads
def eigs(
    problem_or_operator: object,
    theta: object = None,
    k: int = 5,
    which: str = "largest",
    *,
    tol: float | None = None,
    criterion: str = "gap",
    max_iter: int | None = None,
    max_basis: int | None = None,
    verify: bool | None = None,
    seed: int = 0,
) -> EigenResult:
    """The k largest, smallest, or both-end eigenpairs of a symmetric operator, with error bounds.

    Args:
        problem_or_operator: a :class:`~losslab.Problem` (its Hessian at ``theta``) or a
            :class:`~losslab.curvature.CurvatureOperator` (GGN, H − GGN, ...; ``theta=None``).
        theta: the point, shape (p,), with a Problem.
        k: number of eigenpairs, 1 ≤ k ≤ p.
        which: ``"largest"`` (algebraically), ``"smallest"``, or ``"both"``: ⌊k/2⌋ smallest and
            ⌈k/2⌉ largest (SciPy's ``"BE"`` convention; k in total).
        tol: relative tolerance, the scale ‖A‖₂ estimated by the largest |Ritz value| (so
            eigenvalues near 0 converge too). With ``criterion="gap"`` it is the eigenvalue
            accuracy asked for: stop when every wanted pair has gap bound ≤ tol·‖A‖ and residual
            ≤ √tol·‖A‖; default 1e-10 for float64 operators, 100·eps (1.2e-5) for float32.
            With ``"residual"``: stop when every residual ‖Ay − θy‖ ≤ tol·‖A‖; default 1e-8 for
            float64, 100·eps for float32 (the defaults are :data:`losslab.tolerances.TOLERANCES`).
            At least the rounding floor c·ε of the operator's dtype (3.6e-15 float64, 1.9e-6 float32).
        criterion: ``"gap"`` (default; eigenvalues to ~tol in about half the products) or
            ``"residual"`` (the rigorous bounds themselves ≤ tol·‖A‖). See the module docstring.
        max_iter: most operator products (default max(300, 10·max_basis)); pairs not converged
            by then are returned with ``converged`` False and their (larger) bounds.
        max_basis: Lanczos vectors kept (memory: 2·max_basis·p floats), ≥ k + 2; default
            min(p, max(30, 2k + 10)), lowered (down to k + 2: more restarts, the same eigenvalues to
            ``tol``) to fit the operator's ``memory_budget``. When p ≤ max_basis the matrix is
            assembled from p products (one batched ``matmat``) and diagonalised densely instead
            (5·p² float64 values; a restarted Lanczos when that does not fit and max_basis is not given).
        verify: after convergence, add one fresh random direction (one product) and require the
            values not to move: ``True`` always, ``False`` never, ``None`` (default) only when a
            random direction's Rayleigh quotient can reach the wanted values (a high-multiplicity
            eigenvalue at the wanted end; module docstring).
        seed: seeds the start vector (and any fresh restart direction): the ``"lanczos"`` stream
            of ``seed`` (:func:`losslab.random_streams.generator`), independent of ``init(seed)``.

    Returns:
        An :class:`EigenResult` (values ascending).

    Raises:
        LosslabError: k < 1 or k > p, an unknown ``which`` or ``criterion``, a bad θ,
            max_basis < k + 2, a tol below the rounding floor (the message names the smallest usable
            tol), or a basis over the operator's ``memory_budget`` (the smallest one, k + 2 vectors,
            or the ``max_basis`` given; :func:`losslab.memory.lanczos_bytes`).

    Example:
        >>> from losslab.curvature import MatrixOperator
        >>> op = MatrixOperator(torch.diag(torch.arange(1.0, 101.0, dtype=torch.float64)))
        >>> res = eigs(op, k=3, which="both")
        >>> res.values.round(decimals=8).tolist(), bool(res.gap_bounds.max() < 1e-8), res.matvecs < 100
        ([1.0, 99.0, 100.0], True, True)
    """
    op = as_operator(problem_or_operator, theta)
    p = op.shape[0]
    k = positive_int("k", k)
    if k > p:
        raise LosslabError(f"expected k <= p = {p} (the operator's size), got k={k}")
    which = choice("which", which, WHICH)
    criterion = choice("criterion", criterion, CRITERIA)
    table = tolerances(op.dtype)
    if tol is None:
        tol = table.eig_gap if criterion == "gap" else table.eig_residual
    tol = finite_float("tol", tol, positive=True)
    if tol >= 1:
        raise LosslabError(f"expected tol < 1 (a tolerance relative to ‖A‖₂: 1 asks for nothing), got tol={tol:g}; e.g. tol=1e-6")
    if tol < table.rounding:
        usable = smallest_usable(table.rounding)
        f64 = smallest_usable(tolerances(F64).rounding)
        better = "" if op.dtype == F64 else f", or a float64 problem (problem.to(torch.float64)) for tol down to {f64:.2g}"
        raise LosslabError(
            f"expected tol >= {usable:.2g} (the rounding floor of {op.dtype} products, c·eps relative to ‖A‖₂), "
            f"got tol={tol:g}: a {str(op.dtype).removeprefix('torch.')} operator cannot resolve eigenvalues that finely; "
            f"pass tol >= {usable:.2g}{better}"
        )
    seed = seed_int("seed", seed)
    if verify is not None and not isinstance(verify, bool):
        raise LosslabError(f"expected verify to be True, False or None, got verify={verify!r}")
    m = min(p, max(30, 2 * k + 10)) if max_basis is None else positive_int("max_basis", max_basis)
    m = _basis_within_budget(op, k, m, given=max_basis is not None)
    if m >= p:
        return _dense(op, k, which, tol, criterion)
    if m < k + 2:
        raise LosslabError(f"expected max_basis >= k + 2 = {k + 2} (room to restart), got max_basis={m}")
    max_iter = max(300, 10 * m) if max_iter is None else positive_int("max_iter", max_iter)
    return _lanczos(op, k, which, tol, criterion, m, max(max_iter, k), seed, verify)
