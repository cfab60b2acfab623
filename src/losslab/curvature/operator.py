"""Curvature as linear operators: the Hessian, the Gauss–Newton matrix and their difference.

For L(θ) = ℓ(z(θ)) + l2·‖θ_all‖² with z the model output the loss is computed on (the logit
for bce with a sigmoid link, as in :class:`~losslab.Problem`; the output otherwise), the chain
rule splits the Hessian in two (Schraudolph 2002, "Fast curvature matrix-vector products";
Martens 2020, "New insights and perspectives on the natural gradient method"):

    ∇²L = Jᵀ H_ℓ J + 2·l2·I  +  Σ_i (∂ℓ/∂z_i) ∇²z_i
          └─ GGN, PSD when ℓ is convex in z ─┘   └─ curvature of the model in θ ─┘

with J = ∂z/∂θ (N × p) and H_ℓ = ∂²ℓ/∂z² (N × N). The second term vanishes identically when z is
affine in θ (polynomial basis, random features, a linearized network): non-convexity of a
loss convex in the output can only come from it — the curvature of feature learning.

Each operator is p × p, symmetric, and applied matrix-free (curvlinops style, Dangel et al.):
products reuse one cached autograd graph (double backward, Pearlmutter 1994), and a block of
vectors goes through one vmapped backward (``is_grads_batched``) when the graph allows. The
dense matrix is only for tests on tiny models. Per parameter group: pass a restricted problem
(``problem.restrict(["v"], at=...)``) and θ of its free groups.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator

from .._checks import LosslabError, as_tensor, shape
from ..problem import Problem

__all__ = [
    "CurvatureOperator",
    "DifferenceOperator",
    "GGNOperator",
    "HessianOperator",
    "MatrixOperator",
    "NonlinearityOperator",
    "as_operator",
    "loss_output",
    "nonlinearity_curvature",
]

_MAX_CHUNK = 64


class CurvatureOperator:
    """A symmetric p × p linear operator applied to vectors, never stored (unless asked).

    Subclasses implement :meth:`_apply_rows`: ``V`` of shape (m, p) (one vector per row, in
    ``self.dtype``) ↦ ``A Vᵀ`` transposed, shape (m, p). Inputs are validated and cast here.

    Attributes:
        shape: (p, p).
        dtype: the dtype products are computed in (the problem's).
        products: operator–vector products applied so far (m per ``matmat`` of m columns).
    """

    def __init__(self, p: int, dtype: torch.dtype):
        self.shape = (p, p)
        self.dtype = dtype
        self.products = 0

    def _apply_rows(self, V: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _vector(self, name: str, value: object, ndim: int) -> torch.Tensor:
        p = self.shape[0]
        out = as_tensor(name, value, dtype=self.dtype)
        shape(name, out, (p,) if ndim == 1 else (p, None))
        return out

    def _counted_rows(self, V: torch.Tensor) -> torch.Tensor:
        """``_apply_rows`` with the products counted, for rows already checked (or built finite and
        of shape (m, p) in ``self.dtype`` by the caller, as Lanczos builds its basis vectors)."""
        self.products += V.shape[0]
        return self._apply_rows(V)

    def matvec(self, v: object) -> torch.Tensor:
        """A v for v of shape (p,); returns shape (p,) in ``self.dtype``."""
        return self._counted_rows(self._vector("v", v, 1)[None])[0]

    def matmat(self, V: object) -> torch.Tensor:
        """A V for V of shape (p, m); returns shape (p, m) in ``self.dtype``."""
        return self._counted_rows(self._vector("V", V, 2).T.contiguous()).T

    def __matmul__(self, other: object) -> torch.Tensor:
        ndim = getattr(other, "ndim", np.ndim(other))
        return self.matvec(other) if ndim == 1 else self.matmat(other)

    def __sub__(self, other: CurvatureOperator) -> DifferenceOperator:
        return DifferenceOperator(self, other)

    def to_dense(self) -> torch.Tensor:
        """The p × p matrix, as ``matmat`` of the identity (p products; for tiny models and tests)."""
        p = self.shape[0]
        return self.matmat(torch.eye(p, dtype=self.dtype))

    def to_scipy(self) -> LinearOperator:
        """A float64 :class:`scipy.sparse.linalg.LinearOperator` (e.g. for ``eigsh``, ``cg``)."""

        def mv(v: np.ndarray) -> np.ndarray:
            v = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64).reshape(-1))
            return self.matvec(v).to(torch.float64).numpy()

        def mm(V: np.ndarray) -> np.ndarray:
            V = torch.from_numpy(np.ascontiguousarray(V, dtype=np.float64))
            return self.matmat(V).to(torch.float64).numpy()

        return LinearOperator(self.shape, matvec=mv, rmatvec=mv, matmat=mm, rmatmat=mm, dtype=np.float64)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.shape[0]}, dtype={self.dtype})"


class MatrixOperator(CurvatureOperator):
    """A given symmetric matrix A (p × p) as an operator: for tests and known spectra.

    Example:
        >>> op = MatrixOperator(torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)))
        >>> op @ torch.ones(3, dtype=torch.float64)
        tensor([1., 2., 3.], dtype=torch.float64)
    """

    def __init__(self, A: object):
        A = as_tensor("A", A)
        A = A if A.dtype in (torch.float32, torch.float64) else A.to(torch.float64)
        shape("A", A, (A.shape[0], A.shape[0]) if A.ndim == 2 else (None, None))
        if not torch.allclose(A, A.T, rtol=1e-6, atol=1e-12 * float(A.abs().max())):
            raise LosslabError("expected a symmetric matrix A, got one with A != A.T; pass (A + A.T) / 2")
        super().__init__(A.shape[0], A.dtype)
        self.A = A

    def _apply_rows(self, V: torch.Tensor) -> torch.Tensor:
        return V @ self.A.T


class DifferenceOperator(CurvatureOperator):
    """A − B for two operators of the same shape, e.g. ``HessianOperator − GGNOperator``."""

    def __init__(self, A: CurvatureOperator, B: CurvatureOperator):
        if not isinstance(A, CurvatureOperator) or not isinstance(B, CurvatureOperator):
            raise LosslabError(f"expected two curvature operators, got {type(A).__name__} and {type(B).__name__}")
        if A.shape != B.shape:
            raise LosslabError(f"expected operators of the same shape, got {A.shape} and {B.shape}")
        super().__init__(A.shape[0], torch.promote_types(A.dtype, B.dtype))
        self.A, self.B = A, B

    def _apply_rows(self, V: torch.Tensor) -> torch.Tensor:
        self.A.products += V.shape[0]
        self.B.products += V.shape[0]
        return self.A._apply_rows(V.to(self.A.dtype)).to(self.dtype) - self.B._apply_rows(V.to(self.B.dtype)).to(self.dtype)


def loss_output(problem: Problem, theta: torch.Tensor) -> torch.Tensor:
    """z(θ): the model output the data loss is computed on, as in ``Problem._objective``.

    The logit for bce with a sigmoid-link model (bce is then computed stably from the logit),
    the output ``model.apply`` otherwise. Shape (n,) or (n, k); ``problem.loss_fn(z, problem.y)
    + l2·‖θ_all‖²`` is ``problem.loss(θ)``.
    """
    return problem.loss_input(problem.unflatten(theta))


class _GraphOperator(CurvatureOperator):
    """An operator whose products are backward passes through one cached autograd graph."""

    def __init__(self, problem: Problem, theta: object):
        if not isinstance(problem, Problem):
            raise LosslabError(f"expected a losslab.Problem, got {type(problem).__name__}")
        theta = problem.as_theta(theta)
        super().__init__(problem.n_params, problem.dtype)
        self.problem = problem
        self.theta = theta.detach().clone()
        self._x = self.theta.clone().requires_grad_(True)
        self._chunk = max(1, min(_MAX_CHUNK, problem.chunk_size() // 2))
        self._batched = True

    def _apply_rows(self, V: torch.Tensor) -> torch.Tensor:
        if V.shape[0] > 1 and self._chunk > 1 and self._batched:
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*performance drop.*")
                    return torch.cat([self._products(chunk, batched=True) for chunk in V.split(self._chunk)])
            except RuntimeError:  # a backward without a batching rule: fall back to one vector at a time
                self._batched = False
        return torch.stack([self._products(v, batched=False) for v in V])

    def _products(self, V: torch.Tensor, batched: bool) -> torch.Tensor:
        raise NotImplementedError


def _grad(out: torch.Tensor | None, inp: torch.Tensor, cot: torch.Tensor, batched: bool) -> torch.Tensor:
    """Σ cot·∂out/∂inp by backward through the cached graph; zeros where ``out`` does not depend on ``inp``."""
    lead = cot.shape[:1] if batched else ()
    if out is None or not out.requires_grad:
        return torch.zeros(*lead, *inp.shape, dtype=inp.dtype)
    (g,) = torch.autograd.grad(out, inp, cot, retain_graph=True, allow_unused=True, is_grads_batched=batched)
    return torch.zeros(*lead, *inp.shape, dtype=inp.dtype) if g is None else g


def _output_and_loss_gradient(problem: Problem, x: torch.Tensor, *, create_graph: bool):
    """(z(x) with its graph, z detached as a new leaf zd, ∂ℓ/∂z at zd — with a graph in zd if ``create_graph``)."""
    z = loss_output(problem, x)
    zd = z.detach().requires_grad_(True)
    (gz,) = torch.autograd.grad(problem.loss_fn(zd, problem.y), zd, create_graph=create_graph)
    return z, zd, gz


class HessianOperator(_GraphOperator):
    """∇²L(θ) (p × p): Hessian-vector products by double backward through a cached gradient graph.

    The forward pass and the gradient graph ∇L(θ) are built once (create_graph=True); each
    product ∇²L·v is one backward pass through it (Pearlmutter 1994). The graph is built on each
    group's own tensor rather than on views of a flat θ, which spares every product the
    backward of the slicing (~15 % of a product on a 71k-parameter MLP). The graph is held as
    long as the operator: delete the operator to free it.

    Args:
        problem: a :class:`~losslab.Problem` (restricted to some groups for a per-group Hessian).
        theta: the point, shape (p,) (or a params dict).

    Example:
        >>> from losslab import Problem
        >>> from losslab.models import Polynomial
        >>> x = torch.linspace(-1, 1, 5, dtype=torch.float64)
        >>> H = HessianOperator(Problem(Polynomial(1, 1), x, x), torch.zeros(2, dtype=torch.float64))
        >>> torch.allclose(H.to_dense(), torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64))  # 2/n · ΦᵀΦ, Φ = [1, x]
        True
    """

    def __init__(self, problem: Problem, theta: object):
        super().__init__(problem, theta)
        where = problem.slices()
        self._leaves = [self.theta[s].reshape(problem.model.shapes[g]).clone().requires_grad_(True) for g, s in where.items()]
        self._sizes = [leaf.numel() for leaf in self._leaves]
        params = {g: v.to(self.theta.dtype) for g, v in problem.fixed.items()} | dict(zip(where, self._leaves))
        with torch.enable_grad():
            loss = problem.loss_of_params(params)
            grads = torch.autograd.grad(loss, self._leaves, create_graph=True, allow_unused=True) if loss.requires_grad else ()
        self._g = [(g, i) for i, g in enumerate(grads) if g is not None and g.requires_grad]

    def _products(self, V: torch.Tensor, batched: bool) -> torch.Tensor:
        lead = V.shape[:1] if batched else ()
        pieces = V.split(self._sizes, dim=-1)
        res = [None] * len(self._sizes)
        if self._g:
            cot = [pieces[i].reshape((*lead, *self._leaves[i].shape)) for _, i in self._g]
            res = torch.autograd.grad([g for g, _ in self._g], self._leaves, cot, retain_graph=True, allow_unused=True,
                                      is_grads_batched=batched)
        # zeros only for the groups the gradient does not depend on (most products allocate none)
        out = [torch.zeros(*lead, size, dtype=V.dtype) if r is None else r.reshape((*lead, -1)) for r, size in zip(res, self._sizes)]
        return torch.cat(out, dim=-1)


class GGNOperator(_GraphOperator):
    """The generalised Gauss–Newton matrix G = Jᵀ H_ℓ J + 2·l2·I (p × p), matrix-free.

    J = ∂z/∂θ (N × p, z from :func:`loss_output`), H_ℓ = ∂²ℓ/∂z² at z(θ). A product G v is
    J v (double-backward trick: the derivative of u ↦ Jᵀu, which is linear in u), then H_ℓ·(Jv)
    through the graph of ∂ℓ/∂z, then Jᵀ(·) by one backward — all through graphs cached at
    construction. Positive semi-definite when ℓ is convex in z (mse, bce, cross-entropy).

    Args:
        problem: a :class:`~losslab.Problem`.
        theta: the point, shape (p,) (or a params dict).
    """

    def __init__(self, problem: Problem, theta: object):
        super().__init__(problem, theta)
        with torch.enable_grad():
            self._z, self._zd, self._gz = _output_and_loss_gradient(problem, self._x, create_graph=True)
            self._u = torch.zeros_like(self._z, requires_grad=True)
            self._jtu = torch.autograd.grad(self._z, self._x, self._u, create_graph=True, allow_unused=True)[0]

    def _products(self, V: torch.Tensor, batched: bool) -> torch.Tensor:
        jv = _grad(self._jtu, self._u, V, batched)
        hjv = _grad(self._gz, self._zd, jv, batched)
        out = _grad(self._z, self._x, hjv, batched)
        return out + 2 * self.problem.l2 * V if self.problem.l2 else out


class NonlinearityOperator(_GraphOperator):
    """H − GGN = Σ_i (∂ℓ/∂z_i) ∇²z_i (p × p): the curvature from the model being nonlinear in θ.

    With r = ∂ℓ/∂z at z(θ) held fixed (for mse, 2/N times the residuals), this is the Hessian of
    θ ↦ ⟨r, z(θ)⟩: one backward through the cached graph of Jᵀr per product — cheaper than
    H·v − G·v and exactly zero (not zero up to rounding) when z is affine in θ. The l2 penalty
    is in both H and G, hence not here.

    Args:
        problem: a :class:`~losslab.Problem`.
        theta: the point, shape (p,) (or a params dict).
    """

    def __init__(self, problem: Problem, theta: object):
        super().__init__(problem, theta)
        with torch.enable_grad():
            z, _, r = _output_and_loss_gradient(problem, self._x, create_graph=False)
            self._jtr = torch.autograd.grad(z, self._x, r, create_graph=True, allow_unused=True)[0]

    def _products(self, V: torch.Tensor, batched: bool) -> torch.Tensor:
        return _grad(self._jtr, self._x, V, batched)


def nonlinearity_curvature(problem: Problem, theta: object) -> NonlinearityOperator:
    """The operator H − GGN at θ: :class:`NonlinearityOperator` (see there for the math).

    Example:
        >>> from losslab import Problem
        >>> from losslab.models import RandomFeatures
        >>> x = torch.linspace(-1, 1, 7, dtype=torch.float64)
        >>> prob = Problem(RandomFeatures(1, 4, "tanh"), x, x**2)
        >>> float(nonlinearity_curvature(prob, prob.init()).to_dense().abs().max())  # fixed features
        0.0
    """
    return NonlinearityOperator(problem, theta)


def as_operator(problem_or_operator: object, theta: object = None) -> CurvatureOperator:
    """An operator given as such, or the Hessian of a Problem at θ (θ required then)."""
    if isinstance(problem_or_operator, CurvatureOperator):
        if theta is not None:
            raise LosslabError("expected theta=None with an operator (it is evaluated at its own point), got a theta")
        return problem_or_operator
    if isinstance(problem_or_operator, Problem):
        if theta is None:
            raise LosslabError("expected theta of shape (p,) with a Problem, got theta=None; pass e.g. problem.init(seed=0)")
        return HessianOperator(problem_or_operator, theta)
    raise LosslabError(f"expected a losslab.Problem or a curvature operator, got {type(problem_or_operator).__name__}")
