"""Kernel regression with the empirical NTK: the end point of training the linearized network on the squared loss.

The linearized network f_lin(θ, x) = f(θ₀, x) + J(θ₀, x)(θ − θ₀) (:class:`~losslab.models.Linearized`) is
linear in Δθ = θ − θ₀. Its squared loss (1/N)‖JΔθ − r‖² + λ‖Δθ‖² on the N = n·k training outputs, with
r = y − f(θ₀, X), is a convex quadratic; gradient descent from θ₀ (Δθ = 0) stays in the row space of J and
converges, for λ = 0, to the minimum-norm minimiser Δθ* = J⁺r, and for λ > 0 to Δθ* = Jᵀ(JJᵀ + NλI)⁻¹r. With
Θ = JJᵀ the empirical NTK (per output, N × N) the predictions on new inputs X* are then

    f(X*) = f(θ₀, X*) + Θ(X*, X) (Θ(X, X) + NλI)⁺ r

(Lee et al. 2019, "Wide neural networks of any depth evolve as linear models under gradient descent", NeurIPS,
their equation for the linearized network's t → ∞ predictions; Jacot, Gabriel & Hongler 2018).

Two ways to compute it, chosen by ``implementation``:

* ``"jacobian"`` (default): the thin SVD J = U S Vᵀ of the N × p training Jacobian, Δθ* = V diag(sᵢ/(sᵢ² + Nλ)) Uᵀ r
  over the singular values above the cut-off ε·max(N, p)·s_max (LAPACK's and NumPy's default for least squares,
  ε the float64 machine epsilon), and the new predictions f(θ₀, X*) + J(X*)Δθ* as one Jacobian–vector product.
  It works with J's condition number, so a rank-deficient problem (N > p) is solved to float64 accuracy.
  Memory: J and its SVD factors, about 2·N·p + min(N, p)² float64 values.
* ``"kernel"``: the N × N kernel Θ(X, X) and its eigendecomposition, Θ(X*, X) Σ_{λᵢ > ε·N·λ_max} uᵢuᵢᵀr/λᵢ.
  Memory grows as N², not N·p: the choice for very wide networks (p ≫ N). Θ = JJᵀ squares J's condition number,
  so when Θ is rank-deficient (more training outputs than parameters) the directions of J with small singular
  values are resolved only to between ε·cond(J)² and √ε relative accuracy (a user's case in review, 90 outputs
  and p = 33, gave training predictions 1.2e-7 away from f₀ + JJ⁺r in float64; the test case of this module's
  tests, also 90 × 33, 2.5e-10 through the kernel against 2.6e-13 through the Jacobian).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import LosslabError, nonnegative_float
from ..batches import map_tensors
from ..memory import F64_BYTES, blocks, kernel_ridge_bytes, require
from ..problem import Problem
from .ntk import _inputs, _jacobian, empirical_ntk

IMPLEMENTATIONS = ("jacobian", "kernel")

__all__ = ["NTKRegression", "ntk_regression"]


@dataclass(frozen=True)
class NTKRegression:
    """The linearized network trained to convergence, in kernel form.

    Attributes:
        predictions: f at the new inputs, shape (n*,) or (n*, k), in the problem's dtype.
        train_predictions: f at the training inputs, shape like ``problem.y``.
        rank: the numerical rank of J (equal to that of Θ(X, X) = JJᵀ, N × N, N = n·k).
        ridge: λ.
    """

    predictions: torch.Tensor
    train_predictions: torch.Tensor
    rank: int
    ridge: float


def ntk_regression(problem: Problem, theta0: object, X_new: object, *, ridge: float = 0.0,
                   implementation: str = "jacobian") -> NTKRegression:
    """Predictions of the linearized network at θ₀ trained to convergence on ``problem``'s squared loss.

    Args:
        problem: a :class:`~losslab.Problem` with loss ``"mse"``, a model without an output link, l2 = 0, tensor data.
        theta0: the expansion point θ₀, shape (p,).
        X_new: inputs to predict, shape (n*, d_in).
        ridge: λ ≥ 0 of the penalty λ‖θ − θ₀‖² (0: the minimum-norm least-squares fit J⁺r).
        implementation: ``"jacobian"`` (the SVD of J: accurate, memory ∝ N·p) or ``"kernel"`` (the N × N
            kernel: memory ∝ N², less accurate when Θ is rank-deficient); see the module docstring.

    Returns:
        :class:`NTKRegression`.

    Raises:
        LosslabError: another loss, a sigmoid link, l2 > 0 (its penalty is around 0, not θ₀: set ``ridge``
            instead), a bad θ₀, inputs unlike the problem's (shape, structure, integer/floating), an unknown
            implementation.
        MemoryBudgetError: J and its SVD (``"jacobian"``) or the N × N kernel and its factorisation (``"kernel"``)
            exceed ``problem.memory_budget``.

    Example:
        >>> from losslab import Problem
        >>> from losslab.models import Linear
        >>> X = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
        >>> prob = Problem(Linear(1), X, torch.tensor([1.0, 3.0], dtype=torch.float64))
        >>> fit = ntk_regression(prob, prob.init(0), torch.tensor([[2.0]], dtype=torch.float64))
        >>> round(float(fit.predictions[0]), 9), fit.rank  # the line through (0, 1) and (1, 3), at x = 2
        (5.0, 2)
    """
    if not isinstance(problem, Problem):
        raise LosslabError(f"expected a losslab.Problem, got {type(problem).__name__}")
    if problem.loss_fn.name != "mse":
        raise LosslabError(f"expected the squared loss 'mse' (kernel regression is its minimiser), got loss {problem.loss_fn.name!r}")
    if problem.model.link is not None:
        raise LosslabError(f"expected a model without an output link, got a {problem.model.link} output; "
                           "kernel regression needs outputs linear in θ − θ₀")
    if problem.l2:
        raise LosslabError(f"expected l2 = 0, got l2={problem.l2:g}: the problem's penalty is around θ = 0, not θ₀; "
                           "pass ridge= for λ‖θ − θ₀‖²")
    ridge = nonnegative_float("ridge", ridge)
    if implementation not in IMPLEMENTATIONS:
        raise LosslabError(f"expected implementation to be one of {IMPLEMENTATIONS}, got implementation={implementation!r}")
    theta0 = problem._point(theta0, "theta0").detach()
    X_new, _ = _inputs(problem, "X_new", X_new)
    X = problem.X
    y = problem.y
    params0 = problem.unflatten(theta0)
    f0 = problem.model.apply(params0, X).detach()
    f0_new = problem.model.apply(params0, X_new).detach()
    k = 1 if y.ndim == 1 else y.shape[1]
    N = problem.n * k
    r = (y - f0).reshape(N).to(torch.float64)
    if implementation == "kernel":
        return _by_kernel(problem, theta0, X_new, f0, f0_new, r, ridge)
    p = theta0.shape[0]
    require((2 * N * p + min(N, p) ** 2 + N) * F64_BYTES, problem.memory_budget,
            f"the {N} × {p} Jacobian of the training outputs and its SVD (implementation='kernel' needs N² instead)",
            "the number of examples")
    J = _training_jacobian(problem, theta0, X, N, p)
    U, S, Vh = torch.linalg.svd(J, full_matrices=False)
    keep = S > torch.finfo(torch.float64).eps * max(N, p) * float(S.max())
    U, S, Vh = U[:, keep], S[keep], Vh[keep]
    delta = Vh.T @ ((S / (S**2 + N * ridge)) * (U.T @ r))
    del U, Vh
    train_predictions = f0 + (J @ delta).reshape(f0.shape).to(f0.dtype)
    slices, shapes = problem.slices(), problem.model.shapes
    fixed = {g: v.to(theta0.dtype) for g, v in problem.fixed.items()}

    def outputs(t: torch.Tensor) -> torch.Tensor:
        return problem.model.apply({g: t[s].reshape(shapes[g]) for g, s in slices.items()} | fixed, X_new)

    _, moved = torch.func.jvp(outputs, (theta0,), (delta.to(theta0.dtype),))
    return NTKRegression(f0_new + moved.detach().reshape(f0_new.shape), train_predictions, int(keep.sum()), ridge)


def _training_jacobian(problem: Problem, theta0: torch.Tensor, X: object, N: int, p: int) -> torch.Tensor:
    """J (N × p, float64) of the training outputs, in row blocks whose ``jacrev`` fits a quarter of the budget."""
    per_row = max(1, problem.model.activations_per_example()) * (N // problem.n) * F64_BYTES
    rows = max(1, int((problem.memory_budget // 4 // per_row) ** 0.5))
    return torch.cat([_jacobian(problem, theta0, map_tensors(X, lambda t, i=i: t[i]), i.stop - i.start).reshape(-1, p).to(torch.float64)
                      for i in blocks(problem.n, rows)])


def _by_kernel(problem: Problem, theta0: torch.Tensor, X_new: object, f0: torch.Tensor, f0_new: torch.Tensor,
               r: torch.Tensor, ridge: float) -> NTKRegression:
    """The ``"kernel"`` implementation: Θ(X, X)'s eigendecomposition on its numerical range (module docstring)."""
    X, N = problem.X, r.shape[0]
    require(kernel_ridge_bytes(N), problem.memory_budget, f"the {N} × {N} NTK of the training outputs", "the number of examples")
    K = empirical_ntk(problem, theta0, X, per_output=True).permute(0, 2, 1, 3).reshape(N, N).to(torch.float64)
    K_new = empirical_ntk(problem, theta0, X_new, X, per_output=True).permute(0, 2, 1, 3).reshape(-1, N).to(torch.float64)
    evals, evecs = torch.linalg.eigh((K + K.T) / 2 + N * ridge * torch.eye(N, dtype=torch.float64, device=K.device))
    keep = evals > torch.finfo(torch.float64).eps * N * float(evals.abs().max())
    alpha = evecs[:, keep] @ ((evecs[:, keep].T @ r) / evals[keep])
    predictions = f0_new + (K_new @ alpha).reshape(f0_new.shape).to(f0_new.dtype)
    train_predictions = f0 + (K @ alpha).reshape(f0.shape).to(f0.dtype)
    return NTKRegression(predictions, train_predictions, int(keep.sum()), ridge)
