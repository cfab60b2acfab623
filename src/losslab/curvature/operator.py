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

import math
import warnings

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator

from .._checks import LosslabError, NonFiniteError, as_tensor, nonfinite_message, positive_int, shape
from ..memory import DEFAULT_MEMORY_BUDGET, F64_BYTES, require
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


LARGEST_PRODUCT = 1e150  # Lanczos and the trace estimators square norms of products in float64 (max ≈ 1.8e308)


class CurvatureOperator:
    """A symmetric p × p linear operator applied to vectors, never stored (unless asked).

    Subclasses implement :meth:`_apply_rows`: ``V`` of shape (m, p) (one vector per row, in
    ``self.dtype``) ↦ ``A Vᵀ`` transposed, shape (m, p). Inputs are validated and cast here.

    Attributes:
        shape: (p, p).
        dtype: the dtype products are computed in (the problem's).
        products: operator–vector products applied so far (m per ``matmat`` of m columns).
        memory_budget: bytes of intermediates an analysis of this operator may allocate (its
            problem's ``memory_budget``; see :class:`~losslab.Problem` and :mod:`losslab.memory`).
    """

    def __init__(self, p: int, dtype: torch.dtype, device: torch.device | str = "cpu", memory_budget: int = DEFAULT_MEMORY_BUDGET):
        self.shape = (p, p)
        self.dtype = dtype
        self.device = torch.device(device)
        self.products = 0
        self.memory_budget = positive_int("memory_budget", memory_budget)

    def _apply_rows(self, V: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _vector(self, name: str, value: object, ndim: int) -> torch.Tensor:
        p = self.shape[0]
        out = as_tensor(name, value, dtype=self.dtype)
        shape(name, out, (p,) if ndim == 1 else (p, None))
        return out.to(self.device)

    def _counted_rows(self, V: torch.Tensor) -> torch.Tensor:
        """``_apply_rows`` with the products counted, for rows already checked (or built finite and
        of shape (m, p) in ``self.dtype`` by the caller, as Lanczos builds its basis vectors)."""
        self.products += V.shape[0]
        out = self._apply_rows(V)
        top = float(out.abs().max()) if out.numel() else 0.0
        if not math.isfinite(top):
            raise NonFiniteError(self._nonfinite(out, V.shape[0]))
        if top > LARGEST_PRODUCT:
            raise NonFiniteError(
                f"expected {type(self).__name__} products below {LARGEST_PRODUCT:.0e} in size (their squares must fit in float64), "
                f"got max |Av| = {top:.3g}: rescale the loss or the model (eigenvalues scale with the loss)"
            )
        return out

    def _nonfinite(self, out: torch.Tensor, m: int) -> str:
        """One line: which product went non-finite, where (θ's scale), and what to do."""
        first = self.products - m + 1
        where = f" in product {first}" + ("" if m == 1 else f"–{self.products}")
        bad = int((~torch.isfinite(out)).sum())
        return nonfinite_message(f"finite {type(self).__name__} products", bad, where, getattr(self, "theta", None), self.dtype)

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
        """The p × p matrix, as ``matmat`` of the identity (p products; for tiny models and tests).

        Raises:
            LosslabError: the identity and the matrix (2·p² values) over ``memory_budget``.
        """
        p = self.shape[0]
        require(3 * p * p * F64_BYTES, self.memory_budget, f"the dense {p} × {p} matrix", "p (restrict the problem to fewer groups)")
        return self.matmat(torch.eye(p, dtype=self.dtype, device=self.device))

    def to_scipy(self) -> LinearOperator:
        """A float64 :class:`scipy.sparse.linalg.LinearOperator` (e.g. for ``eigsh``, ``cg``)."""

        def mv(v: np.ndarray) -> np.ndarray:
            v = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64).reshape(-1))
            return self.matvec(v).to(torch.float64).cpu().numpy()

        def mm(V: np.ndarray) -> np.ndarray:
            V = torch.from_numpy(np.ascontiguousarray(V, dtype=np.float64))
            return self.matmat(V).to(torch.float64).cpu().numpy()

        return LinearOperator(self.shape, matvec=mv, rmatvec=mv, matmat=mm, rmatmat=mm, dtype=np.float64)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.shape[0]}, dtype={self.dtype})"


class MatrixOperator(CurvatureOperator):
    """A given symmetric matrix A (p × p) as an operator: for tests and known spectra.

    ``memory_budget`` bounds what analyses of it allocate (default 256 MiB; the matrix itself is not counted).

    Example:
        >>> op = MatrixOperator(torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)))
        >>> op @ torch.ones(3, dtype=torch.float64)
        tensor([1., 2., 3.], dtype=torch.float64)
    """

    def __init__(self, A: object, *, memory_budget: int = DEFAULT_MEMORY_BUDGET):
        A = as_tensor("A", A)
        A = A if A.dtype in (torch.float32, torch.float64) else A.to(torch.float64)
        shape("A", A, (A.shape[0], A.shape[0]) if A.ndim == 2 else (None, None))
        if not torch.allclose(A, A.T, rtol=1e-6, atol=1e-12 * float(A.abs().max())):
            raise LosslabError("expected a symmetric matrix A, got one with A != A.T; pass (A + A.T) / 2")
        super().__init__(A.shape[0], A.dtype, A.device, memory_budget)
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
        super().__init__(A.shape[0], torch.promote_types(A.dtype, B.dtype), A.device, min(A.memory_budget, B.memory_budget))
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
    params = problem.unflatten(theta)
    return torch.cat([problem.loss_input(params, b.inputs) for b in problem.batches()])


class _GraphOperator(CurvatureOperator):
    """An operator whose products are backward passes through autograd graphs, one per data batch.

    With the data in one batch (or batches whose graphs fit four memory budgets together) the
    graphs are built once and cached; otherwise each product rebuilds them batch by batch and
    frees each before the next (exact either way: batch b enters with weight n_b/n).
    """

    l2_term = True  # products add the data-independent L2 term 2·l2·v

    def __init__(self, problem: Problem, theta: object):
        if not isinstance(problem, Problem):
            raise LosslabError(f"expected a losslab.Problem, got {type(problem).__name__}")
        theta = problem.as_theta(theta)
        super().__init__(problem.n_params, problem.dtype, problem.device, problem.memory_budget)
        self.problem = problem
        self.theta = theta.detach().clone()
        self._chunk = max(1, min(_MAX_CHUNK, problem.chunk_size() // 2))
        self._batched = True
        graph_bytes = 2 * problem.data.count * problem._bytes_per_point
        self.cached = problem.data.count == 1 or graph_bytes <= 4 * problem.memory_budget
        self._graphs = [self._build(b, w) for b, w in problem._weights()] if self.cached else None

    def _build(self, batch, weight):
        raise NotImplementedError

    def _graph_products(self, graph, V: torch.Tensor, batched: bool) -> torch.Tensor:
        raise NotImplementedError

    def _products(self, V: torch.Tensor, batched: bool) -> torch.Tensor:
        graphs = self._graphs if self.cached else (self._build(b, w) for b, w in self.problem._weights())
        total = None
        for graph in graphs:
            part = self._graph_products(graph, V, batched)
            total = part if total is None else total + part
        return total + 2 * self.problem.l2 * V if self.problem.l2 and self.l2_term else total

    def _apply_rows(self, V: torch.Tensor) -> torch.Tensor:
        if V.shape[0] > 1 and self._chunk > 1 and self._batched:
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*performance drop.*")
                    return torch.cat([self._products(chunk, batched=True) for chunk in V.split(self._chunk)])
            except RuntimeError:  # a backward without a batching rule: fall back to one vector at a time
                self._batched = False
        return torch.stack([self._products(v, batched=False) for v in V])


def _grad(out: torch.Tensor | None, inp: torch.Tensor, cot: torch.Tensor, batched: bool) -> torch.Tensor:
    """Σ cot·∂out/∂inp by backward through the cached graph; zeros where ``out`` does not depend on ``inp``."""
    lead = cot.shape[:1] if batched else ()
    if out is None or not out.requires_grad:
        return torch.zeros(*lead, *inp.shape, dtype=inp.dtype, device=inp.device)
    (g,) = torch.autograd.grad(out, inp, cot, retain_graph=True, allow_unused=True, is_grads_batched=batched)
    return torch.zeros(*lead, *inp.shape, dtype=inp.dtype, device=inp.device) if g is None else g


def _output_and_loss_gradient(problem: Problem, x: torch.Tensor, batch, weight, *, create_graph: bool):
    """(z(x) on ``batch`` with its graph, z detached as a new leaf zd, ∂(w·ℓ_b)/∂z at zd — with a graph in zd if ``create_graph``)."""
    z = problem.loss_input(problem.unflatten(x), batch.inputs)
    zd = z.detach().requires_grad_(True)
    loss = problem.loss_fn(zd, batch.y)
    (gz,) = torch.autograd.grad(loss if weight is None else weight * loss, zd, create_graph=create_graph)
    return z, zd, gz


def _transposed_jacobian_graph(problem: Problem, theta: torch.Tensor, batch, weight, *, ggn: bool):
    """(x, z, zd, gz, c, Jᵀc) on ``batch``, x a fresh leaf copy of θ: for the GGN c = u, a zero leaf (Jᵀu differentiated in u
    is J v; gz keeps its graph in zd for H_ℓ·Jv); for H − GGN c = r = gz held fixed (Jᵀr differentiated in x is Σ_i r_i ∇²z_i)."""
    x = theta.clone().requires_grad_(True)
    with torch.enable_grad():
        z, zd, gz = _output_and_loss_gradient(problem, x, batch, weight, create_graph=ggn)
        c = torch.zeros_like(z, requires_grad=True) if ggn else gz
        jtc = torch.autograd.grad(z, x, c, create_graph=True, allow_unused=True)[0]
    return x, z, zd, gz, c, jtc


class HessianOperator(_GraphOperator):
    """∇²L(θ) (p × p): Hessian-vector products by double backward through cached gradient graphs.

    The forward pass and the gradient graph ∇ℓ_b(θ) of each data batch are built once
    (create_graph=True); each product ∇²L·v is one backward pass through them (Pearlmutter 1994),
    plus 2·l2·v. The graph is built on each group's own tensor rather than on views of a flat θ,
    which spares every product the backward of the slicing (~15 % of a product on a 71k-parameter
    MLP). The graphs are held as long as the operator: delete the operator to free them. Over a
    DataLoader too large for cached graphs, each product recomputes them batch by batch.

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
        self._sizes = [math.prod(problem.model.shapes[g]) for g in problem.free]
        super().__init__(problem, theta)

    def _build(self, batch, weight):
        problem = self.problem
        where = problem.slices()
        leaves = [self.theta[s].reshape(problem.model.shapes[g]).clone().requires_grad_(True) for g, s in where.items()]
        params = {g: v.to(self.theta.dtype) for g, v in problem.fixed.items()} | dict(zip(where, leaves))
        with torch.enable_grad():
            loss = problem.batch_loss(params, batch)
            loss = loss if weight is None else weight * loss
            grads = torch.autograd.grad(loss, leaves, create_graph=True, allow_unused=True) if loss.requires_grad else ()
        return leaves, [(g, i) for i, g in enumerate(grads) if g is not None and g.requires_grad]

    def _graph_products(self, graph, V: torch.Tensor, batched: bool) -> torch.Tensor:
        leaves, gs = graph
        lead = V.shape[:1] if batched else ()
        pieces = V.split(self._sizes, dim=-1)
        res = [None] * len(self._sizes)
        if gs:
            cot = [pieces[i].reshape((*lead, *leaves[i].shape)) for _, i in gs]
            res = torch.autograd.grad([g for g, _ in gs], leaves, cot, retain_graph=True, allow_unused=True, is_grads_batched=batched)
        # zeros only for the groups the gradient does not depend on (most products allocate none)
        out = [torch.zeros(*lead, size, dtype=V.dtype, device=V.device) if r is None else r.reshape((*lead, -1))
               for r, size in zip(res, self._sizes)]
        return torch.cat(out, dim=-1)


class GGNOperator(_GraphOperator):
    """The generalised Gauss–Newton matrix G = Jᵀ H_ℓ J + 2·l2·I (p × p), matrix-free.

    J = ∂z/∂θ (N × p, z from :func:`loss_output`), H_ℓ = ∂²ℓ/∂z² at z(θ). A product G v is
    J v (double-backward trick: the derivative of u ↦ Jᵀu, which is linear in u), then H_ℓ·(Jv)
    through the graph of ∂ℓ/∂z, then Jᵀ(·) by one backward — all through graphs cached at
    construction (one per data batch). Positive semi-definite when ℓ is convex in z (mse, bce,
    cross-entropy).

    Args:
        problem: a :class:`~losslab.Problem`.
        theta: the point, shape (p,) (or a params dict).
    """

    def _build(self, batch, weight):
        return _transposed_jacobian_graph(self.problem, self.theta, batch, weight, ggn=True)

    def _graph_products(self, graph, V: torch.Tensor, batched: bool) -> torch.Tensor:
        x, z, zd, gz, u, jtu = graph
        jv = _grad(jtu, u, V, batched)
        hjv = _grad(gz, zd, jv, batched)
        return _grad(z, x, hjv, batched)


class NonlinearityOperator(_GraphOperator):
    """H − GGN = Σ_i (∂ℓ/∂z_i) ∇²z_i (p × p): the curvature from the model being nonlinear in θ.

    With r = ∂ℓ/∂z at z(θ) held fixed (for mse, 2/N times the residuals), this is the Hessian of
    θ ↦ ⟨r, z(θ)⟩: one backward through the cached graph of Jᵀr per product (and batch) — cheaper
    than H·v − G·v and exactly zero (not zero up to rounding) when z is affine in θ. The l2
    penalty is in both H and G, hence not here.

    Args:
        problem: a :class:`~losslab.Problem`.
        theta: the point, shape (p,) (or a params dict).
    """

    l2_term = False  # in both H and G

    def _build(self, batch, weight):
        x, *_, jtr = _transposed_jacobian_graph(self.problem, self.theta, batch, weight, ggn=False)
        return x, jtr

    def _graph_products(self, graph, V: torch.Tensor, batched: bool) -> torch.Tensor:
        x, jtr = graph
        return _grad(jtr, x, V, batched)


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
