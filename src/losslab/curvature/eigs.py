"""Extreme eigenpairs of a curvature operator: thick-restart Lanczos with full reorthogonalisation.

Lanczos (Lanczos 1950; Paige 1971; Golub & Van Loan, *Matrix Computations*, 4th ed., §10.1) builds
an orthonormal basis V_j of the Krylov space span{v, Av, …, A^{j−1}v} from one operator product
per step; the eigenpairs (θ_i, s_i) of the small projected matrix T_j = V_jᵀ A V_j give Ritz
pairs (θ_i, y_i = V_j s_i) whose extreme ones converge first to the extreme eigenpairs of A.
Every new vector is orthogonalised against the whole basis twice (classical Gram–Schmidt
twice, "CGS2"), so no ghost copies of converged eigenvalues appear; when the basis is full the
iteration restarts from the best Ritz vectors kept ("thick restart", Wu & Simon 2000, the
symmetric case of Stewart's Krylov–Schur method), which keeps memory at ``max_basis`` vectors.

Error bounds. For a symmetric A, any unit y and θ = yᵀAy, some eigenvalue λ of A satisfies
|λ − θ| ≤ ‖Ay − θy‖ (Parlett, *The Symmetric Eigenvalue Problem*, ch. 4). The residual here
is computed from the stored operator products A·V (so it is the true residual of the operator
as evaluated, not the recurrence's estimate β|s_j|), at no extra products. The bound is about
the *nearest* eigenvalue. Ritz values are Rayleigh quotients, so the smallest is ≥ λ_min and
the largest ≤ λ_max always.

Multiple eigenvalues. In exact arithmetic a Krylov space from one start vector holds one
eigenvector per distinct eigenvalue, so a multiple eigenvalue can be returned fewer times than
its multiplicity — and the k-th value returned is then a later eigenvalue, still within its
bound of *an* eigenvalue. Two guards: when the space becomes invariant (β ≈ 0, e.g. a low-rank
operator) the iteration continues from a fresh random direction orthogonal to the basis, and
once the wanted pairs converge one more fresh direction is added and the values must not move
(one product). That catches a large null space the basis has nearly isolated (an
over-parameterised least-squares Hessian at small p), not every missed copy; block Krylov
methods would be needed for that. The extreme eigenvalue itself (k = 1 per end, as in
:func:`~losslab.curvature.classify`) is not affected by its multiplicity.

Products run in the operator's dtype; the Lanczos vectors and T are float64 torch tensors, so
no SciPy/BLAS thread pool competes with torch's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import LosslabError, choice, finite_float, positive_int, seed_int
from .operator import CurvatureOperator, as_operator

__all__ = ["WHICH", "EigenResult", "eigs"]

WHICH = ("largest", "smallest", "both")
F64 = torch.float64


@dataclass(frozen=True)
class EigenResult:
    """k Ritz pairs of a symmetric operator with residual error bounds.

    Attributes:
        values: Ritz values (Rayleigh quotients), ascending, shape (k,), float64.
        vectors: unit Ritz vectors, shape (p, k), float64; column i goes with ``values[i]``.
        bounds: ‖A y_i − θ_i y_i‖, shape (k,): some eigenvalue of A lies within ``bounds[i]``
            of ``values[i]`` (up to the rounding of the products themselves).
        converged: shape (k,) bool, ``bounds <= tol · norm_estimate``.
        matvecs: operator–vector products used.
        which: ``"largest"``, ``"smallest"`` or ``"both"`` (⌊k/2⌋ smallest and ⌈k/2⌉ largest).
        tol: the relative tolerance used.
        norm_estimate: max |Ritz value| seen, a lower bound on ‖A‖₂ (the scale of ``tol``).
        method: ``"lanczos"`` or ``"dense"`` (tiny p: the matrix from p products, then eigh).
    """

    values: torch.Tensor
    vectors: torch.Tensor
    bounds: torch.Tensor
    converged: torch.Tensor
    matvecs: int
    which: str
    tol: float
    norm_estimate: float
    method: str

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


def _ritz(V: torch.Tensor, AV: torch.Tensor, S: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Rayleigh quotients (k,), unit vectors (p, k), residual norms (k,)) of y = Vᵀs for the columns s of S."""
    Y, AY = V.T @ S, AV.T @ S
    norms = torch.linalg.vector_norm(Y, dim=0)
    Y, AY = Y / norms, AY / norms
    rq = (Y * AY).sum(0)
    return rq, Y, torch.linalg.vector_norm(AY - Y * rq, dim=0)


def _apply(op: CurvatureOperator, v: torch.Tensor) -> torch.Tensor:
    return op.matvec(v.to(op.dtype)).to(F64)


def _random_orthogonal(V: torch.Tensor, gen: torch.Generator) -> torch.Tensor | None:
    """A random unit vector orthogonal to the rows of V, or None if they span everything."""
    v = torch.randn(V.shape[1], generator=gen, dtype=F64)
    for _ in range(2):
        v = v - V.T @ (V @ v)
    n = float(torch.linalg.vector_norm(v))
    return v / n if n > 1e-8 else None


def _result(values, vectors, bounds, tol, scale, matvecs, which, method) -> EigenResult:
    order = torch.argsort(values)
    bounds = bounds[order]
    return EigenResult(
        values=values[order],
        vectors=vectors[:, order].contiguous(),
        bounds=bounds,
        converged=bounds <= tol * scale,
        matvecs=matvecs,
        which=which,
        tol=tol,
        norm_estimate=scale,
        method=method,
    )


def _dense(op: CurvatureOperator, k: int, which: str, tol: float) -> EigenResult:
    p = op.shape[0]
    A = op.matmat(torch.eye(p, dtype=op.dtype)).to(F64)  # column j = A e_j, a true product
    theta, S = torch.linalg.eigh((A + A.T) / 2)
    S = S[:, _wanted(p, k, which)]
    AY = A @ S
    rq = (S * AY).sum(0)
    bounds = torch.linalg.vector_norm(AY - S * rq, dim=0)
    scale = float(theta.abs().max())
    return _result(rq, S, bounds, tol, scale, p, which, "dense")


def _lanczos(op: CurvatureOperator, k: int, which: str, tol: float, m: int, max_iter: int, seed: int) -> EigenResult:
    p = op.shape[0]
    gen = torch.Generator().manual_seed(seed)
    V, AV = torch.zeros(m, p, dtype=F64), torch.zeros(m, p, dtype=F64)
    T = torch.zeros(m, m, dtype=F64)
    v = torch.randn(p, generator=gen, dtype=F64)
    v = v / torch.linalg.vector_norm(v)
    j, products, scale = 0, 0, 0.0
    verified = None  # the wanted Ritz values when they last converged
    while True:
        V[j] = v
        w = _apply(op, v)
        products += 1
        AV[j] = w
        size_w = float(torch.linalg.vector_norm(w))
        B = V[: j + 1]
        h = B @ w
        w = w - B.T @ h
        h2 = B @ w  # second pass of classical Gram–Schmidt: orthogonal to working precision
        w = w - B.T @ h2
        h = h + h2
        T[: j + 1, j] = h
        T[j, : j + 1] = h
        beta = float(torch.linalg.vector_norm(w))
        j += 1
        theta, S = torch.linalg.eigh(T[:j, :j])
        scale = max(scale, float(theta.abs().max()))
        fresh = beta <= 1e-8 * size_w  # an invariant subspace: continue from a fresh direction orthogonal to it
        if j >= k:
            idx = _wanted(j, k, which)
            estimate = beta * S[-1, idx].abs()  # ‖Ay − θy‖ by the Lanczos relation AV = VT + w e_jᵀ
            if bool((estimate <= tol * scale).all()) or products >= max_iter or j == p:
                rq, Y, res = _ritz(V[:j], AV[:j], S[:, idx])  # the true residuals, from the stored products
                if products >= max_iter or j == p:
                    return _result(rq, Y, res, tol, scale, products, which, "lanczos")
                if bool((res <= tol * scale).all()):
                    if verified is not None and float((rq - verified).abs().max()) <= tol * scale:
                        return _result(rq, Y, res, tol, scale, products, which, "lanczos")
                    verified, fresh = rq, True  # check with a fresh random direction before stopping
        if fresh:
            v = _random_orthogonal(V[:j], gen)
            if v is None:  # V spans R^p
                rq, Y, res = _ritz(V[:j], AV[:j], S[:, _wanted(j, k, which)])
                return _result(rq, Y, res, tol, scale, products, which, "lanczos")
        else:
            v = w / beta
        if j == m:  # thick restart: keep the best Ritz vectors, continue from v (orthogonal to them)
            keep = _wanted(m, k + (m - k) // 2, which)
            Sk = S[:, keep]
            V[: len(keep)], AV[: len(keep)] = Sk.T @ V, Sk.T @ AV
            T.zero_()
            T[: len(keep), : len(keep)] = torch.diag(theta[keep])
            j = len(keep)


def eigs(
    problem_or_operator: object,
    theta: object = None,
    k: int = 5,
    which: str = "largest",
    *,
    tol: float | None = None,
    max_iter: int | None = None,
    max_basis: int | None = None,
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
        tol: stop when every wanted pair has ‖Ay − θy‖ ≤ tol·‖A‖₂ (estimated by the largest
            |Ritz value|): relative to the operator's norm, so eigenvalues near 0 converge too.
            Default 1e-8 for float64 operators, 100·eps (1.2e-5) for float32.
        max_iter: most operator products (default max(300, 10·max_basis)); pairs not converged
            by then are returned with ``converged`` False and their (larger) bounds.
        max_basis: Lanczos vectors kept (memory: 2·max_basis·p floats), ≥ k + 2; default
            min(p, max(30, 2k + 10)). When p ≤ max_basis the matrix is assembled from p products
            (one batched ``matmat``) and diagonalised densely instead.
        seed: seeds the start vector.

    Returns:
        An :class:`EigenResult` (values ascending).

    Raises:
        LosslabError: k < 1 or k > p, an unknown ``which``, a bad θ, or max_basis < k + 2.

    Example:
        >>> from losslab.curvature import MatrixOperator
        >>> op = MatrixOperator(torch.diag(torch.arange(1.0, 101.0, dtype=torch.float64)))
        >>> res = eigs(op, k=3, which="both")
        >>> res.values.round(decimals=8).tolist(), bool(res.bounds.max() < 1e-6), res.matvecs < 100
        ([1.0, 99.0, 100.0], True, True)
    """
    op = as_operator(problem_or_operator, theta)
    p = op.shape[0]
    k = positive_int("k", k)
    if k > p:
        raise LosslabError(f"expected k <= p = {p} (the operator's size), got k={k}")
    which = choice("which", which, WHICH)
    eps = torch.finfo(op.dtype).eps
    tol = max(1e-8, 100 * eps) if tol is None else finite_float("tol", tol, positive=True)
    seed = seed_int("seed", seed)
    m = min(p, max(30, 2 * k + 10)) if max_basis is None else positive_int("max_basis", max_basis)
    if m >= p:
        return _dense(op, k, which, tol)
    if m < k + 2:
        raise LosslabError(f"expected max_basis >= k + 2 = {k + 2} (room to restart), got max_basis={m}")
    max_iter = max(300, 10 * m) if max_iter is None else positive_int("max_iter", max_iter)
    return _lanczos(op, k, which, tol, m, max(max_iter, k), seed)
