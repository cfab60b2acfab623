"""Analytic objectives: the population loss of a two-layer ReLU student against a ReLU teacher, in closed form.

For Gaussian inputs x ~ N(0, I_d) the expected product of two ReLU units is the arc-cosine kernel of degree 1
(Cho & Saul 2009, "Kernel methods for deep learning", NeurIPS 2009):

    E[relu(wᵀx)·relu(vᵀx)] = ‖w‖‖v‖·(sin φ + (π − φ)·cos φ) / (2π),   φ = ∠(w, v) ∈ [0, π].

Written as ½·wᵀv + ‖w‖‖v‖·(sin φ − φ·cos φ)/(2π) (the same number: ‖w‖‖v‖cos φ = wᵀv), its non-smooth part
q(φ) = sin φ − φ·cos φ has q(0) = q'(0) = q''(0) = 0, so at parallel vectors, where the angle itself has a kink,
autograd's first and second derivatives are still the true ones. The cosine is clamped to [−1, 1] and
sin φ = √(1 − cos²φ) is taken only where positive (zero, with a zero gradient, elsewhere), so gradients are
finite at φ = 0 and π and at zero rows. (At exactly antiparallel pairs, φ = π, q''(π) = −π and the second
derivative misses that term; gradient descent does not land exactly there.)

The population loss of a student with rows W (n, d) and unit output weights, against a teacher with rows
V (k, d), is (Safran & Shamir 2018, "Spurious local minima are common in two-layer ReLU neural networks",
ICML 2018, Eq. (1))

    F(W) = ½·E[(Σ_i relu(w_iᵀx) − Σ_j relu(v_jᵀx))²]
         = ½·[Σ_{i,i'} κ(w_i, w_i') − 2·Σ_{i,j} κ(w_i, v_j) + Σ_{j,j'} κ(v_j, v_j')],

with κ the kernel above (κ(w, w) = ‖w‖²/2 exactly on the diagonal). F ≥ 0, and F = 0 at W = V up to a
permutation of the rows.
"""

from __future__ import annotations

import math

import torch

from ._checks import LosslabError, positive_int, shape
from .problem import Problem

__all__ = ["relu_kernel", "relu_population_loss", "relu_teacher_problem"]


def relu_kernel(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """E[relu(aᵀx)·relu(bᵀx)] for x ~ N(0, I_d), every row a of A (m, d) against every row b of B (r, d) → (m, r).

    The arc-cosine kernel of degree 1 (Cho & Saul 2009); see the module docstring for the form used and its
    derivatives at parallel rows. Differentiable, and batched by ``torch.func.vmap``.
    """
    A = check_rows("A", A)
    B = check_rows("B", B, A.shape[1])
    return _kernel(A, B)


_TINY = 1e-300  # below every ‖a‖²‖b‖² and sin²φ that matters; clamping at it keeps every derivative finite


def _kernel(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """:func:`relu_kernel` without the input checks (the inner loop of training)."""
    dots = A @ B.T
    norms = torch.sqrt(((A * A).sum(-1)[:, None] * (B * B).sum(-1)[None, :]).clamp_min(_TINY))  # ‖a‖‖b‖
    cos = (dots / norms).clamp(-1.0, 1.0)
    sin = torch.sqrt((1 - cos * cos).clamp_min(_TINY))  # a zero gradient where clamped: at φ = 0 and π
    phi = torch.atan2(sin, cos)
    return 0.5 * dots + norms * (sin - phi * cos) / (2 * math.pi)


def relu_population_loss(W: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """F(W) = ½·E[(Σ_i relu(w_iᵀx) − Σ_j relu(v_jᵀx))²], x ~ N(0, I_d), in closed form (module docstring).

    Differentiated by autograd through :func:`relu_kernel` (a hand-written closed-form gradient as a
    ``torch.autograd.Function`` was tried: under ``torch.func.vmap`` its per-call overhead made a training step of
    30 starts slower, not faster).

    Args:
        W: the student's rows, shape (n, d).
        V: the teacher's rows, shape (k, d) (held fixed: no gradient flows to it).

    Returns:
        A 0-dim tensor, in W's dtype.
    """
    W = check_rows("W", W)
    V = check_rows("V", V, W.shape[1]).to(W.dtype)
    cross = _kernel(W, torch.cat([W, V]))  # (n, n + k): the student against itself and against the teacher
    n = W.shape[0]
    # κ(w_i, w_i) = ‖w_i‖²/2 exactly: the diagonal computed by the formula is dropped (its gradient with it)
    students = cross[:, :n].sum() - torch.diagonal(cross[:, :n]).sum() + 0.5 * (W * W).sum()
    with torch.no_grad():
        teacher = _kernel(V, V).sum()
    return 0.5 * (students - 2 * cross[:, n:].sum() + teacher)


def relu_teacher_problem(k: int, n: int, *, dtype: torch.dtype = torch.float64) -> Problem:
    """The Safran–Shamir objective as a Problem: teacher V = I_k (d = k), student W (n, k), unit output weights.

    θ is W flattened row by row; the initial points are Xavier (Glorot & Bengio 2010) uniform draws
    U(−a, a), a = √(6/(k + n)) (fan-in d = k, fan-out n), from the ``"init"`` stream of the seed.

    Raises:
        LosslabError: k or n not a positive integer.
    """
    k = positive_int("k", k)
    n = positive_int("n", n)
    bound = math.sqrt(6.0 / (k + n))

    def xavier(g: torch.Generator) -> dict[str, torch.Tensor]:
        return {"W": (2 * torch.rand(n, k, generator=g, dtype=torch.float64) - 1) * bound}

    def relu_teacher_loss(params: dict[str, torch.Tensor]) -> torch.Tensor:
        W = params["W"]
        return relu_population_loss(W, torch.eye(k, dtype=W.dtype, device=W.device))

    relu_teacher_loss.__name__ = f"relu population loss (k={k} teacher, n={n} student)"
    return Problem.from_objective(relu_teacher_loss, shapes={"W": (n, k)}, init=xavier, dtype=dtype)


def check_rows(name: str, X: object, d: int | None = None) -> torch.Tensor:
    """X as a float tensor of shape (m, d) (a LosslabError otherwise)."""
    if not isinstance(X, torch.Tensor) or not X.is_floating_point():
        raise LosslabError(f"expected {name} as a floating-point torch tensor of shape (m, d), got {type(X).__name__}")
    shape(name, X, (None, d))
    return X
