"""Closed-form (ridge) least squares for a model affine in its free parameters.

For a model affine in θ the output is f(θ) = f0 + Φθ, with f0 = f(0) and Φ = ∂f/∂θ the
(constant) Jacobian of the N = n·k outputs — the fixed features. The squared loss is then a
convex quadratic,

    L(θ) = (1/N)‖Φθ − r‖² + λ‖θ‖² + const,   r = y − f0,   λ = problem.l2 + ridge,

minimised without forming the normal equations ΦᵀΦ (whose condition number is the square of
Φ's): for λ = 0 by a rank-revealing least-squares solve (LAPACK ``gelsd``, SVD-based), which
returns the minimum-norm minimiser when Φ is rank-deficient; for λ > 0 by the same solver on
the augmented system (below).

Minimum norm (λ = 0). When the minimiser is not unique — in particular when there are more
free parameters than outputs, p > N, where every minimiser interpolates if Φ has full row rank —
the one returned (``theta0`` left at its default 0) is the minimum-norm least-squares solution

    θ* = Φ⁺r = argmin {‖θ‖ : θ minimises ‖Φθ − r‖},

with Φ⁺ the Moore–Penrose pseudo-inverse (Penrose 1955, "A generalized inverse for matrices",
Proc. Cambridge Philos. Soc. 51). With the SVD Φ = Σ_i s_i u_i v_iᵀ, θ* = Σ_{s_i > ε} (u_iᵀr / s_i) v_i:
singular values at or below ε = eps·max(N, p)·s_1 (``gelsd``'s default cut-off in
``torch.linalg.lstsq``, eps the float64 machine epsilon) count as zero — ``numpy.linalg.pinv``
cuts at 1e-15·s_1 by default — so θ* is the pseudo-inverse solution at Φ's numerical rank.
θ* lies in the row space of Φ; every other minimiser adds a null-space vector and has a larger
norm. It is also the limit of the ridge solution as λ → 0⁺, and the point gradient descent from
θ = 0 converges to. Only the free groups count: fixed groups (``restrict``) enter through f0, so
θ* = Φ⁺(y − f0). ``theta0`` moves the centre: θ* = θ0 + Φ⁺(r − Φθ0), the
minimiser closest to θ0. For λ > 0 (``ridge`` or ``problem.l2``) the minimiser is unique and no
norm is chosen: the ridge solution, by one of the two forms below. The augmented system is

    [Φ/√N; √λ·I] θ = [r/√N; 0],

whose residual is exactly the objective above (Golub & Van Loan, *Matrix Computations*, §5.3
and §6.1 on ridge/Tikhonov regularisation as an augmented least-squares problem). That costs
O((N + p)p²); when there are more features than outputs (p > N) and λ > 0 the same minimiser is

    θ* = Φᵀ(ΦΦᵀ + NλI)⁻¹ r

(the push-through identity (ΦᵀΦ + NλI)⁻¹Φᵀ = Φᵀ(ΦΦᵀ + NλI)⁻¹; the kernel form of ridge
regression), an N × N Cholesky solve in O(N²p) — seconds instead of minutes for thousands of
features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import LosslabError, nonnegative_float
from ..memory import blocks, fits, least_squares_bytes, mib, require
from ..models.base import Params
from ..problem import Problem

__all__ = ["LeastSquaresResult", "check_least_squares", "least_squares", "least_squares_result"]


@dataclass(frozen=True)
class LeastSquaresResult:
    """The closed-form minimiser of an affine squared-loss problem, with diagnostics.

    Attributes:
        params: the full parameter dict (free groups from ``theta``, fixed groups as held), in
            ``problem.dtype``.
        theta: the minimiser θ*, shape (p,), in ``problem.dtype``.
        rank: numerical rank of the features Φ.
        residual: (1/N)‖f(θ*) − y‖², the mean squared error at θ* (float64).
        loss: ``problem.loss(θ*)`` evaluated in float64 (includes the problem's l2 term).
        ridge: the effective λ = problem.l2 + ridge.
        features: Φ = ∂f/∂θ, shape (N, p) with N = n·k outputs, float64.
        offset: f0 = f(θ = 0), shape (N,), float64.
    """

    params: Params
    theta: torch.Tensor
    rank: int
    residual: float
    loss: float
    ridge: float
    features: torch.Tensor
    offset: torch.Tensor


def check_least_squares(problem: Problem) -> None:
    """Raise unless ``problem`` is a squared loss of a model affine in its free groups.

    The message names what is wrong (the loss, the output link, or the groups that are not
    affine) and the fix.
    """
    if not isinstance(problem, Problem):
        raise LosslabError(f"expected a losslab.Problem, got {type(problem).__name__}")
    model, free = problem.model, list(problem.groups)
    if problem.loss_fn.name != "mse":
        raise LosslabError(
            f"least_squares expects the squared loss 'mse', got loss {problem.loss_fn.name!r}, which has no closed-form "
            "minimiser; use losslab.fit.train(problem, ...) instead (it is still convex when the logit is affine)"
        )
    if model.link is not None:
        raise LosslabError(
            f"least_squares expects a model whose output is affine in its parameters, got {model.describe()} "
            f"with a {model.link} output ({model.link} of an affine logit is not affine); use losslab.fit.train, "
            "or loss='bce' on the logit for logistic regression"
        )
    if not model.is_affine_in(free):
        expected = f"least_squares expects a model affine in the free groups {free}, got {model.describe()}"
        declared = [[g for g in model.groups if g in s] for s in model.affine_sets]
        if not declared:
            raise LosslabError(
                f"{expected}, which declares no affine parameter groups; linearize it with "
                "losslab.models.Linearized(model, params0), or use losslab.fit.train"
            )
        options = [o for o in ([g for g in s if g in free] for s in declared) if o]
        if options:
            best = max(options, key=len)
            fix = f"restrict to groups {best} with problem.restrict({best}, at=params)"
        else:
            best = max(declared, key=len)
            fix = f"none of them is free here: fit groups {best} with problem.full().restrict({best}, at=params)"
        raise LosslabError(
            f"{expected}, which is affine only in {' or '.join(map(str, declared))}; {fix}, "
            "or use losslab.fit.train for the non-convex problem"
        )


def _features(problem: Problem, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(Φ, f0): the Jacobian (N, p) of the flattened outputs at θ = 0 and the outputs there (N,).

    Refuses (MemoryBudgetError) before building Φ when Φ and the solve (:func:`losslab.memory.least_squares_bytes`)
    exceed the memory budget; the Jacobian's vmapped products run on as many tangents at a time as one point's
    graph fits beside them (``chunk_size`` of ``torch.func.jacfwd``/``jacrev``).
    """
    zero = torch.zeros(problem.n_params, dtype=problem.dtype, device=problem.device)

    def outputs(theta: torch.Tensor) -> torch.Tensor:
        return problem.output(theta).reshape(-1)

    f0 = outputs(zero).detach()
    N, p = f0.numel(), problem.n_params
    held = least_squares_bytes(N, p, lam > 0)
    require(held + problem.point_bytes, problem.memory_budget,
            f"closed-form least squares with N = {N:,} outputs and p = {p:,} parameters (Φ is N × p float64: {mib(8 * N * p)})",
            "the number of samples or parameters")
    size = fits(problem.point_bytes, problem.memory_budget, held)
    if p > N:
        return torch.func.jacrev(outputs, chunk_size=size)(zero).detach(), f0
    if size >= p:
        return torch.func.jacfwd(outputs)(zero).detach(), f0
    phi = torch.empty(N, p, dtype=f0.dtype, device=f0.device)  # jacfwd, a block of columns at a time
    column = torch.func.vmap(lambda v: torch.func.jvp(outputs, (zero,), (v,))[1])
    for cols in blocks(p, size):
        basis = torch.zeros(cols.stop - cols.start, p, dtype=zero.dtype, device=zero.device)
        basis[:, cols].fill_diagonal_(1.0)
        phi[:, cols] = column(basis).detach().T
    return phi, f0


def least_squares_result(problem: Problem, *, ridge: float = 0.0, theta0: object = None) -> LeastSquaresResult:
    """Minimise ``problem.loss(θ) + ridge·‖θ‖²`` in closed form; see the module docstring.

    With λ = problem.l2 + ridge = 0 and more free parameters than outputs (p > N) it returns the
    minimum-norm interpolant θ* = Φ⁺(y − f0), the pseudo-inverse solution (Penrose 1955).

    Computed in float64 whatever ``problem.dtype``; θ* is cast back to ``problem.dtype``.

    Args:
        problem: a :class:`~losslab.Problem` with loss ``"mse"`` and a model affine (no link) in
            its free groups — e.g. a Polynomial, RandomFeatures, a Linearized network, or a
            TwoLayer restricted to ``["v"]``.
        ridge: extra weight λ_extra >= 0 of ‖θ_free‖², on top of ``problem.l2``.
        theta0: when the minimiser is not unique (λ = 0 and Φ rank-deficient, e.g. p > N), return
            the one closest to θ0 — where gradient descent started at θ0 converges. Default 0: the
            minimum-norm minimiser θ* = Φ⁺(y − f0) (Penrose 1955; see the module docstring). A θ (p,)
            or params dict. No effect when λ > 0.

    Returns:
        A :class:`LeastSquaresResult`.

    Raises:
        LosslabError: the loss is not mse, or the model is not affine in the free groups; a
            MemoryBudgetError when Φ and the solve exceed ``problem.memory_budget`` (before Φ is built).

    Example:
        >>> from losslab.models import Polynomial
        >>> x = torch.linspace(-1, 1, 9, dtype=torch.float64)
        >>> res = least_squares_result(Problem(Polynomial(1, 2), x, 1 + x**2))
        >>> [round(float(c), 6) for c in res.theta], res.rank
        ([1.0, 0.0, 1.0], 3)
    """
    check_least_squares(problem)
    ridge = nonnegative_float("ridge", ridge)
    p64 = problem.to(torch.float64)
    lam = p64.l2 + ridge
    start = torch.zeros(p64.n_params, dtype=torch.float64, device=p64.device) if theta0 is None else p64.as_theta(theta0, "theta0")
    phi, f0 = _features(p64, lam)
    y = torch.cat([b.y.reshape(-1) for b in p64.batches()])
    N, p = phi.shape
    r = y - f0
    if lam == 0.0:
        # Solve for δ = θ − θ0: Φδ ≈ r − Φθ0; the minimum-norm δ gives the minimiser closest to θ0.
        sol = torch.linalg.lstsq(phi, (r - phi @ start)[:, None], driver="gelsd")
        theta64, rank = start + sol.solution[:, 0], int(sol.rank)
    else:  # a unique minimiser: θ0 plays no part
        rank = int(torch.linalg.matrix_rank(phi))
        if p > N:  # the dual (kernel) form: an N × N Cholesky solve
            K = phi @ phi.T
            K.diagonal().add_(N * lam)
            theta64 = (phi.T @ torch.cholesky_solve(r[:, None], torch.linalg.cholesky(K)))[:, 0]
        else:
            A = torch.cat([phi / math.sqrt(N), math.sqrt(lam) * torch.eye(p, dtype=torch.float64)])
            b = torch.cat([r / math.sqrt(N), torch.zeros(p, dtype=torch.float64)])
            theta64 = torch.linalg.lstsq(A, b[:, None], driver="gelsd").solution[:, 0]
    residual = float(((f0 + phi @ theta64 - y) ** 2).mean())
    loss = float(p64.loss(theta64))
    theta = theta64.to(problem.dtype)
    return LeastSquaresResult(params=problem.unflatten(theta), theta=theta, rank=rank, residual=residual, loss=loss, ridge=lam,
                              features=phi, offset=f0)


def least_squares(problem: Problem, *, ridge: float = 0.0, theta0: object = None) -> Params:
    """The parameters minimising ``problem.loss(θ) + ridge·‖θ‖²`` for an affine squared-loss problem.

    The full parameter dict (fixed groups included, via ``problem.unflatten``). With λ = 0 and p > N
    the free parameters are the minimum-norm solution Φ⁺(y − f0) (Penrose 1955). See
    :func:`least_squares_result` for the method, the arguments and diagnostics.

    Example:
        >>> from losslab.models import Polynomial
        >>> x = torch.linspace(-1, 1, 9, dtype=torch.float64)
        >>> params = least_squares(Problem(Polynomial(1, 1), x, 2 * x - 1))
        >>> [round(float(c), 6) for c in params["coef"]]
        [-1.0, 2.0]
    """
    return least_squares_result(problem, ridge=ridge, theta0=theta0).params
