"""The empirical neural tangent kernel Θ(x, x') = J(x) J(x')ᵀ, computed in row blocks within a memory budget.

For a model f(θ, x) with k outputs and J(x) = ∂f(θ, x)/∂θ (k × p, the free parameter groups of the
problem), the empirical NTK at θ (Jacot, Gabriel & Hongler 2018, "Neural tangent kernel: convergence
and generalization in neural networks", NeurIPS; "empirical" = at this finite network's θ, not the
infinite-width limit) is

    Θ(x, x')_{cc'} = Σ_j ∂f_c(θ, x)/∂θ_j · ∂f_{c'}(θ, x')/∂θ_j,       a k × k block per pair,

and, summed over the output dimension as neural-tangents' ``trace_axes`` does (Novak et al. 2020, "Neural Tangents: fast and easy infinite
neural networks in Python", ICLR),
Θ(x, x') = Σ_c Θ(x, x')_{cc}. Gradient flow on the squared loss of the linearized network moves the
training outputs by df/dt = −(2/N)·Θ(X, X)(f − y): the kernel is the whole dynamics of lazy training.

The Jacobian of a block of b inputs is one ``torch.func.jacrev`` of the flattened outputs (b·k, p),
for built-in models and wrapped ``torch.nn.Module`` s alike (their ``apply`` is a pure function of the
params dict). Blocks are as large as :func:`ntk_bytes` lets them be within ``problem.memory_budget``;
the numbers do not depend on the block size beyond rounding.
"""

from __future__ import annotations

import math

import torch

from .._checks import LosslabError, as_tensor
from ..batches import Batch, map_tensors, tensors
from ..memory import F64_BYTES, blocks, require
from ..problem import Problem

__all__ = ["empirical_ntk", "ntk_bytes"]


def ntk_bytes(n1: int, n2: int, k: int, p: int, rows: int, activations: int, per_output: bool) -> int:
    """Bytes :func:`empirical_ntk` holds at its peak for blocks of ``rows`` inputs: the result (n1·n2, times k² per
    output), two block Jacobians (rows·k × p each), and ``jacrev``'s vmapped backward through a block's graph
    (rows·k cotangents × rows × the model's activations per example), all float64."""
    result = n1 * n2 * (k * k if per_output else 1)
    return (result + 2 * rows * k * p + rows * k * rows * activations) * F64_BYTES


def _inputs(problem: Problem, name: str, X: object) -> tuple[object, int]:
    """X prepared as the problem's model reads it (dtype, device, a column for d_in = 1), and its row count.

    Each input tensor must match the problem's own inputs (its first batch) in everything but the number of
    rows: the same structure (tensor, tuple length or dict keys), the same trailing shape and the same kind of
    number (floating or integer), so that a mismatch is a one-line :class:`LosslabError` and not a torch error
    from inside the model.
    """
    if X is None or isinstance(X, (str, bytes, bool, int, float)):
        raise LosslabError(f"expected {name} as inputs of shape (n, d_in) (a tensor, array or nested list), got {X!r}")
    if not isinstance(X, (tuple, dict)):
        X = as_tensor(name, X)
    inputs = problem.prepare(Batch(X, torch.zeros(1), 1)).inputs
    lead = {int(t.shape[0]) if t.ndim else -1 for t in tensors(inputs)}
    if len(lead) != 1 or min(lead) < 1:
        raise LosslabError(f"expected {name} with one leading (example) dimension of size >= 1, got leading sizes {sorted(lead)}")
    d_in = problem.model.d_in
    if isinstance(inputs, torch.Tensor) and d_in is not None and (inputs.ndim != 2 or inputs.shape[1] != d_in):
        raise LosslabError(f"expected {name} of shape (n, {d_in}), got shape {tuple(inputs.shape)}; "
                           f"pass inputs with d_in = {d_in} columns")
    _like(name, inputs, problem.prepare(problem.data.first()).inputs, tuple(X.shape) if isinstance(X, torch.Tensor) else None)
    return inputs, lead.pop()


def _like(name: str, given: object, ref: object, shown: tuple | None = None) -> None:
    """Raise unless ``given`` has the structure, trailing shapes and number kinds of the problem's inputs ``ref``."""
    def kind(t: torch.Tensor) -> str:
        return "floating" if t.is_floating_point() else "integer"

    if isinstance(ref, torch.Tensor) and isinstance(given, torch.Tensor):
        pairs = [(name, given, ref)]
    elif isinstance(ref, tuple) and isinstance(given, tuple) and len(ref) == len(given):
        pairs = [(f"{name}[{i}]", g, r) for i, (g, r) in enumerate(zip(given, ref, strict=True))]
    elif isinstance(ref, dict) and isinstance(given, dict) and set(ref) == set(given):
        pairs = [(f"{name}[{k!r}]", given[k], ref[k]) for k in ref]
    else:
        raise LosslabError(f"expected {name} structured like the problem's inputs ({_describe(ref)}), got {_describe(given)}")
    for where, g, r in pairs:
        if tuple(g.shape[1:]) != tuple(r.shape[1:]):
            raise LosslabError(f"expected {where} of shape (n, {', '.join(map(str, r.shape[1:]))}) like the problem's inputs, "
                               f"got shape {shown or tuple(g.shape)}; fix its trailing dimensions")
        if kind(g) != kind(r):
            raise LosslabError(f"expected {where} to hold {kind(r)} numbers ({r.dtype}) like the problem's inputs, got "
                               f"{g.dtype}; convert it with .to({r.dtype})")


def _describe(inputs: object) -> str:
    if isinstance(inputs, torch.Tensor):
        return f"a tensor of shape {tuple(inputs.shape)}"
    if isinstance(inputs, tuple):
        return f"a tuple of {len(inputs)} tensors"
    if isinstance(inputs, dict):
        return f"a dict with keys {sorted(inputs)}"
    return type(inputs).__name__


def _jacobian(problem: Problem, theta: torch.Tensor, X: object, b: int) -> torch.Tensor:
    """J of the model output on the block X of b inputs: shape (b, k, p) (k = 1 for scalar outputs)."""
    def outputs(t: torch.Tensor) -> torch.Tensor:
        return problem.model.apply(problem.unflatten(t), X)

    return torch.func.jacrev(lambda t: outputs(t).reshape(-1))(theta).reshape(b, -1, theta.shape[0])


def empirical_ntk(problem: Problem, theta: object, X1: object, X2: object = None, *, per_output: bool = False) -> torch.Tensor:
    """The empirical NTK Θ(X1, X2) = J(X1) J(X2)ᵀ of ``problem``'s model at θ (see the module docstring).

    Args:
        problem: a :class:`~losslab.Problem`; its model (built-in or a wrapped ``torch.nn.Module``), its free
            groups (θ's), its dtype and device, and its ``memory_budget`` are used — not its data or loss.
        theta: the point, shape (p,).
        X1: n1 inputs, shape (n1, d_in) (or (n1,) when d_in = 1; a tuple/dict of tensors for a module taking
            several inputs).
        X2: n2 inputs; default X1 (the kernel is then symmetric positive semi-definite).
        per_output: keep the k × k output block of every pair instead of its trace.

    Returns:
        float tensor in ``problem.dtype``, shape (n1, n2), or (n1, n2, k, k) with ``per_output`` (k = 1 for a
        scalar model).

    Raises:
        LosslabError: θ of the wrong shape, inputs of the wrong shape or empty, per_output not a bool.
        MemoryBudgetError: the result and one row's Jacobians exceed ``problem.memory_budget`` (before allocating).

    Example:
        >>> from losslab import Problem
        >>> from losslab.models import Linear
        >>> X = torch.tensor([[1.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
        >>> prob = Problem(Linear(2), X, torch.zeros(2))
        >>> empirical_ntk(prob, prob.init(0), X)  # features (x, 1): Θ = X Xᵀ + 1
        tensor([[2., 2.],
                [2., 6.]], dtype=torch.float64)
    """
    if not isinstance(problem, Problem):
        raise LosslabError(f"expected a losslab.Problem, got {type(problem).__name__}")
    if not isinstance(per_output, bool):
        raise LosslabError(f"expected per_output to be True or False, got per_output={per_output!r}")
    theta = problem._point(theta, "theta").detach()
    A, n1 = _inputs(problem, "X1", X1)
    B, n2 = (A, n1) if X2 is None else _inputs(problem, "X2", X2)
    first = _jacobian(problem, theta, map_tensors(A, lambda t: t[:1]), 1)
    k, p = first.shape[1], first.shape[2]
    activations = problem.model.activations_per_example()
    rows = 1
    while rows < max(n1, n2) and ntk_bytes(n1, n2, k, p, 2 * rows, activations, per_output) <= problem.memory_budget:
        rows *= 2
    require(ntk_bytes(n1, n2, k, p, rows, activations, per_output), problem.memory_budget,
            f"the empirical NTK of {n1} × {n2} inputs ({k} output{'s' * (k > 1)}, p = {p})", "the number of inputs")
    out = torch.empty((n1, n2, k, k) if per_output else (n1, n2), dtype=theta.dtype, device=theta.device)
    for i in blocks(n1, rows):
        J1 = _jacobian(problem, theta, map_tensors(A, lambda t, i=i: t[i]), i.stop - i.start)
        for j in blocks(n2, rows):
            if X2 is None and j.start < i.start:
                continue  # the lower blocks of a symmetric kernel are mirrored below
            J2 = J1 if X2 is None and i == j else _jacobian(problem, theta, map_tensors(B, lambda t, j=j: t[j]), j.stop - j.start)
            block = torch.einsum("acp,bdp->abcd", J1, J2)
            out[i, j] = block if per_output else torch.diagonal(block, dim1=2, dim2=3).sum(-1)
    if X2 is None:  # Θ(x, x')_{cd} = Θ(x', x)_{dc}: exactly symmetric, the diagonal blocks' rounding averaged
        upper = torch.triu(torch.ones(n1, n1, dtype=torch.bool, device=out.device))
        mask = upper[:, :, None, None] if per_output else upper
        full = torch.where(mask, out, out.transpose(0, 1).transpose(2, 3) if per_output else out.T)
        out = (full + (full.transpose(0, 1).transpose(2, 3) if per_output else full.T)) / 2
    return out if math.isfinite(float(out.abs().max())) else _nonfinite(out)


def _nonfinite(out: torch.Tensor) -> torch.Tensor:
    raise LosslabError(f"expected a finite empirical NTK, got {int((~torch.isfinite(out)).sum())} non-finite entries; "
                       "the model's gradients overflow at this θ (lower its scale)")
