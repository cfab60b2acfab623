"""What kind of point θ is: minimum, saddle, maximum — or not critical, or not decidable here.

The second-order test (e.g. Nocedal & Wright, *Numerical Optimization*, Thm 2.3–2.4): at a
critical point (∇L = 0), a positive definite Hessian means a strict local minimum, a negative
definite one a strict local maximum, and eigenvalues of both signs a saddle. A semidefinite
Hessian with a zero eigenvalue decides nothing: a flat valley of minima (every
over-parameterised least-squares minimum), a plateau, or a higher-order saddle.

The evidence here is ‖∇L(θ)‖ and the two extreme Hessian eigenvalues from Lanczos
(:func:`~losslab.curvature.eigs`), each with its residual bound b: an eigenvalue lies in
[θ − b, θ + b]. Claims are graded by that evidence:

* negative (positive) curvature is *certain* when θ_min + b_min < −δ (θ_max − b_max > δ): the
  Ritz vector is a direction of that curvature whatever else Lanczos missed;
* "all eigenvalues > δ" needs the smallest Ritz value to be the smallest eigenvalue, which
  Lanczos from a random start finds with probability 1 in exact arithmetic but cannot prove;
* δ, the curvature indistinguishable from zero, is ``eig_tol`` times the Hessian's norm.

Critical means: in every group G, ‖∇_G L‖ ≤ grad_tol · s_G, with s_G the gradient's
Cauchy–Schwarz scale ‖J_G‖_F·‖∂L/∂f‖ (:mod:`losslab.curvature.criticality`). Both tolerances are
relative, so the kind does not change when y, the loss or the parameters are rescaled; their
defaults and floors are the dtype's row of :data:`losslab.tolerances.TOLERANCES`.

Kinds: ``"not a critical point"`` (some ρ_G > grad_tol), ``"saddle"``, ``"minimum"``,
``"maximum"`` (strict), ``"degenerate"`` (semidefinite with zero curvature within δ: the
second-order test cannot decide), ``"inconclusive"`` (bounds straddle ±δ, or Lanczos did not
converge) — never more confident than the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import LosslabError, finite_float
from .._enums import StrEnum
from .._threads import with_analysis_threads
from ..problem import Problem
from ..random_streams import generator
from ..tolerances import smallest_usable, tolerances
from .criticality import gradient_ratios, worst_ratio
from .eigs import EigenResult, eigs
from .operator import HessianOperator

__all__ = ["KINDS", "CriticalKind", "CriticalPointResult", "classify"]


class CriticalKind(StrEnum):
    """What kind of point θ is (the module docstring says when each is claimed). A str: ``kind == "saddle"`` and JSON
    give the value."""

    MINIMUM = "minimum"
    SADDLE = "saddle"
    MAXIMUM = "maximum"
    DEGENERATE = "degenerate"
    INCONCLUSIVE = "inconclusive"
    NOT_CRITICAL = "not a critical point"


KINDS = tuple(k.value for k in CriticalKind)  # the values, as plain strings


@dataclass(frozen=True)
class CriticalPointResult:
    """The kind of point θ is, with the evidence.

    Attributes:
        kind: a :class:`CriticalKind` (a str, one of :data:`KINDS`).
        reason: one sentence with the numbers behind ``kind``.
        grad_norm: ‖∇L(θ)‖₂ (in the loss's units per parameter unit; for information).
        grad_tol: the relative tolerance: θ is critical when every ρ_G ≤ grad_tol.
        grad_ratio: max over groups of ρ_G = ‖∇_G L‖ / s_G (dimensionless, between 0 and about 1).
        min_eig, min_bound: the smallest Ritz value and its residual bound.
        max_eig, max_bound: the largest Ritz value and its residual bound.
        zero_tol: δ, curvature within ±δ is treated as zero (``eig_tol`` × max |eigenvalue|).
        grad_group: the group attaining ``grad_ratio``.
        converged: whether Lanczos met its tolerance for both extreme pairs.
        eigen: the :class:`~losslab.curvature.EigenResult` (vectors: directions of extreme curvature).
    """

    kind: CriticalKind
    reason: str
    grad_norm: float
    grad_tol: float
    min_eig: float
    min_bound: float
    max_eig: float
    max_bound: float
    zero_tol: float
    converged: bool
    eigen: EigenResult
    grad_ratio: float = 0.0
    grad_group: str = ""

    def __post_init__(self):
        object.__setattr__(self, "kind", CriticalKind(self.kind))  # a plain string is accepted (and checked)


def _decide(lo: float, blo: float, hi: float, bhi: float, delta: float, converged: bool) -> tuple[CriticalKind, str]:
    nums = f"λ_min ∈ [{lo - blo:.3g}, {lo + blo:.3g}], λ_max ∈ [{hi - bhi:.3g}, {hi + bhi:.3g}], zero within ±{delta:.3g}"
    negative, positive = lo + blo < -delta, hi - bhi > delta  # certain: a Ritz vector has that curvature
    if negative and positive:
        return CriticalKind.SADDLE, f"curvature of both signs at a critical point: {nums}"
    if not converged:
        return CriticalKind.INCONCLUSIVE, f"Lanczos did not converge, so the extreme eigenvalues may be missed: {nums}"
    if lo - blo > delta:
        return CriticalKind.MINIMUM, f"every eigenvalue is positive (as far as Lanczos finds): {nums}"
    if hi + bhi < -delta:
        return CriticalKind.MAXIMUM, f"every eigenvalue is negative (as far as Lanczos finds): {nums}"
    min_zero, max_zero = abs(lo) + blo <= delta, abs(hi) + bhi <= delta
    if (positive and min_zero) or (negative and max_zero) or (min_zero and max_zero):
        sign = "positive" if positive else "negative" if negative else "zero"
        return CriticalKind.DEGENERATE, (
            f"semidefinite ({sign} curvature and zero curvature): a flat valley, a plateau or a higher-order saddle — "
            f"the second-order test cannot decide: {nums}"
        )
    return CriticalKind.INCONCLUSIVE, f"an eigenvalue bound straddles the zero band: {nums}"


@with_analysis_threads
def classify(problem: Problem, theta: object, *, grad_tol: float | None = None, eig_tol: float | None = None,
             tol: float | None = None, max_iter: int | None = None, seed: int = 0) -> CriticalPointResult:
    """Classify θ as a minimum, saddle, maximum, degenerate or inconclusive critical point, or not critical.

    Args:
        problem: a :class:`~losslab.Problem` (restricted, to classify in some groups only).
        theta: the point, shape (p,) (or a params dict).
        grad_tol: relative: θ is critical when ‖∇_G L‖ ≤ grad_tol · s_G in every group G (module
            docstring); default 1e-6 in float64, 1e-3 in float32.
        eig_tol: relative zero band: |curvature| ≤ eig_tol · max(|λ_min|, |λ_max|) counts as
            zero; default 1e-6 in float64, 1e-3 in float32; at least the rounding floor c·ε
            (3.6e-15 float64, 1.9e-6 float32).
        tol, max_iter, seed: passed to :func:`~losslab.curvature.eigs` (which="both", k=2,
            ``criterion="residual"``: every sign decision uses the rigorous residual bounds, so
            they are driven below tol·‖H‖ rather than only the estimated gap bounds).

    Returns:
        A :class:`CriticalPointResult`. The Hessian's extreme eigenpairs are computed even when θ
        is not critical (they say how curved the landscape is there).

    Example:
        >>> from losslab import Problem
        >>> from losslab.models import Polynomial
        >>> x = torch.linspace(-1, 1, 9, dtype=torch.float64)
        >>> classify(Problem(Polynomial(1, 2), x, x**2), torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)).kind
        <CriticalKind.MINIMUM: 'minimum'>
    """
    if not isinstance(problem, Problem):
        raise LosslabError(f"expected a losslab.Problem, got {type(problem).__name__}")
    theta = problem.as_theta(theta)
    table = tolerances(problem.dtype)
    grad_tol = table.grad if grad_tol is None else finite_float("grad_tol", grad_tol, nonnegative=True)
    eig_tol = table.zero_curvature if eig_tol is None else finite_float("eig_tol", eig_tol, nonnegative=True)
    for name, value in (("grad_tol", grad_tol), ("eig_tol", eig_tol)):
        if value >= 1:  # ρ_G ≤ 1 always; a zero band of ‖H‖₂ or more covers the whole spectrum
            raise LosslabError(f"expected {name} < 1 (relative: 1 or more decides nothing), got {name}={value:g}; "
                               f"the default is {table.grad if name == 'grad_tol' else table.zero_curvature:g}")
    if eig_tol < table.rounding:
        raise LosslabError(
            f"expected eig_tol >= {smallest_usable(table.rounding):.2g} (the rounding floor of {problem.dtype} products relative "
            f"to ‖H‖₂), got eig_tol={eig_tol:g}: curvature that small cannot be told from zero; "
            f"pass eig_tol >= {smallest_usable(table.rounding):.2g}"
        )
    grad = problem.grad(theta).detach()
    grad_norm = float(torch.linalg.vector_norm(grad.to(torch.float64)))
    ratio, group = worst_ratio(gradient_ratios(problem, theta, grad, generator(seed, "probes", 1)))  # eigs draws from "lanczos"
    p = problem.n_params
    # criterion="residual": the signs are decided on the rigorous residual bounds, so make those small
    res = eigs(HessianOperator(problem, theta), k=min(2, p), which="both", tol=tol, criterion="residual", max_iter=max_iter, seed=seed)
    lo, hi = float(res.values[0]), float(res.values[-1])
    blo, bhi = float(res.bounds[0]), float(res.bounds[-1])
    delta = eig_tol * max(abs(lo), abs(hi))
    converged = res.all_converged
    if not ratio <= grad_tol:
        kind = CriticalKind.NOT_CRITICAL
        reason = f"‖∇_{group} L‖ is {ratio:.3g} of its scale (> grad_tol = {grad_tol:.3g}; ‖∇L‖ = {grad_norm:.3g})"
    else:
        kind, reason = _decide(lo, blo, hi, bhi, delta, converged)
        reason = f"‖∇_G L‖ ≤ {ratio:.3g} of its scale in every group (≤ grad_tol = {grad_tol:.3g}); {reason}"
    return CriticalPointResult(kind, reason, grad_norm, grad_tol, lo, blo, hi, bhi, delta, converged, res, ratio, group)
