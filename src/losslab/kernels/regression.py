"""Kernel regression with the empirical NTK: the end point of training the linearized network on the squared loss.

The linearized network f_lin(θ, x) = f(θ₀, x) + J(θ₀, x)(θ − θ₀) (:class:`~losslab.models.Linearized`) is
linear in Δθ = θ − θ₀. Its squared loss (1/N)‖JΔθ − r‖² + λ‖Δθ‖² on the N = n·k training outputs, with
r = y − f(θ₀, X), is a convex quadratic; gradient descent from θ₀ (Δθ = 0) stays in the row space of J and
converges, for λ = 0, to the minimum-norm minimiser Δθ* = J⁺r, and for λ > 0 to Δθ* = Jᵀ(JJᵀ + NλI)⁻¹r. With
Θ = JJᵀ the empirical NTK (per output, N × N) the predictions on new inputs X* are then

    f(X*) = f(θ₀, X*) + Θ(X*, X) (Θ(X, X) + NλI)⁺ r

(Lee et al. 2019, "Wide neural networks of any depth evolve as linear models under gradient descent", NeurIPS,
their equation for the linearized network's t → ∞ predictions; Jacot, Gabriel & Hongler 2018). For λ = 0
the pseudo-inverse is taken on Θ's numerical range (eigenvalues above ε·N·λ_max), so that a rank-deficient
kernel (more training outputs than parameters) gives the least-squares fit, as J⁺ does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import LosslabError, nonnegative_float
from ..memory import kernel_ridge_bytes, require
from ..problem import Problem
from .ntk import _inputs, empirical_ntk

__all__ = ["NTKRegression", "ntk_regression"]


@dataclass(frozen=True)
class NTKRegression:
    """The linearized network trained to convergence, in kernel form.

    Attributes:
        predictions: f at the new inputs, shape (n*,) or (n*, k), in the problem's dtype.
        train_predictions: f at the training inputs, shape like ``problem.y``.
        rank: the numerical rank of Θ(X, X) (N × N, N = n·k).
        ridge: λ.
    """

    predictions: torch.Tensor
    train_predictions: torch.Tensor
    rank: int
    ridge: float


def ntk_regression(problem: Problem, theta0: object, X_new: object, *, ridge: float = 0.0) -> NTKRegression:
    """Predictions of the linearized network at θ₀ trained to convergence on ``problem``'s squared loss.

    Args:
        problem: a :class:`~losslab.Problem` with loss ``"mse"``, a model without an output link, l2 = 0, tensor data.
        theta0: the expansion point θ₀, shape (p,).
        X_new: inputs to predict, shape (n*, d_in).
        ridge: λ ≥ 0 of the penalty λ‖θ − θ₀‖² (0: the minimum-norm interpolant when Θ is invertible).

    Returns:
        :class:`NTKRegression`.

    Raises:
        LosslabError: another loss, a sigmoid link, l2 > 0 (its penalty is around 0, not θ₀: set ``ridge``
            instead), a bad θ₀ or inputs.
        MemoryBudgetError: the N × N kernel and its factorisation exceed ``problem.memory_budget``.

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
    theta0 = problem._point(theta0, "theta0").detach()
    X_new, _ = _inputs(problem, "X_new", X_new)
    X = problem.X
    y = problem.y
    f0 = problem.model.apply(problem.unflatten(theta0), X).detach()
    k = 1 if y.ndim == 1 else y.shape[1]
    N = problem.n * k
    require(kernel_ridge_bytes(N), problem.memory_budget, f"the {N} × {N} NTK of the training outputs", "the number of examples")
    K = empirical_ntk(problem, theta0, X, per_output=True).permute(0, 2, 1, 3).reshape(N, N).to(torch.float64)
    K_new = empirical_ntk(problem, theta0, X_new, X, per_output=True).permute(0, 2, 1, 3).reshape(-1, N).to(torch.float64)
    r = (y - f0).reshape(N).to(torch.float64)
    evals, evecs = torch.linalg.eigh((K + K.T) / 2 + N * ridge * torch.eye(N, dtype=torch.float64, device=K.device))
    keep = evals > torch.finfo(torch.float64).eps * N * float(evals.abs().max())
    alpha = evecs[:, keep] @ ((evecs[:, keep].T @ r) / evals[keep])
    f0_new = problem.model.apply(problem.unflatten(theta0), X_new).detach()
    shape_new = f0_new.shape
    predictions = f0_new + (K_new @ alpha).reshape(shape_new).to(f0_new.dtype)
    train_predictions = f0 + (K @ alpha).reshape(f0.shape).to(f0.dtype)
    return NTKRegression(predictions, train_predictions, int(keep.sum()), ridge)
