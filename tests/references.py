"""Dense float64 references for the tests: one implementation of each, shared (curvlinops' ``examples/functorch.py``).

Every reference here is built from ``torch.func``, ``torch.nn.functional``, ``torch.linalg`` or plain Python
floats, applied to a function the test hands in (a loss written out by hand, a module's own forward, or a
problem's model and data). None of them calls losslab's curvature code (``losslab.curvature``, ``Problem.grad``,
``Problem.hvp``, the operators) nor ``losslab.losses``, so a bug there cannot hide in its own reference.
They are dense: for the tiny models of the tests only (p of at most a few hundred).

Imported as ``from references import ...`` (``tests`` is on pytest's ``pythonpath``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

F64 = torch.float64
Tensor = torch.Tensor


# ---- derivatives of a function of the flat θ -------------------------------------------------------------


def dense_hessian(loss: Callable[[Tensor], Tensor], theta: Tensor) -> Tensor:
    """∇²loss(θ), shape (p, p), by ``torch.func.hessian`` (forward-over-reverse autodiff) at θ in float64.

    Independent of losslab's Hessian–vector products: PyTorch differentiates ``loss`` itself, twice.
    """
    return torch.func.hessian(loss)(theta.to(F64))


def dense_gradient(loss: Callable[[Tensor], Tensor], theta: Tensor) -> Tensor:
    """∇loss(θ), shape (p,), by ``torch.func.grad`` at θ in float64 (not ``Problem.grad``)."""
    return torch.func.grad(loss)(theta.to(F64))


def dense_eigenvalues(loss: Callable[[Tensor], Tensor], theta: Tensor) -> Tensor:
    """The eigenvalues of ∇²loss(θ), ascending, shape (p,): ``torch.linalg.eigvalsh`` of :func:`dense_hessian`.

    A direct symmetric eigensolver (LAPACK) on the dense matrix: nothing of losslab's Lanczos or operators.
    """
    return torch.linalg.eigvalsh(dense_hessian(loss, theta))


def dense_jacobian(outputs: Callable[[Tensor], Tensor], theta: Tensor) -> Tensor:
    """J = ∂z/∂θ of the flattened outputs z(θ), shape (N, p) with N = z.numel(): ``torch.func.jacrev`` in float64.

    For outputs of shape (n,) row i is the per-example Jacobian ∇_θ f(x_i) (the features of the linearized model).
    """
    return torch.func.jacrev(lambda t: outputs(t).reshape(-1))(theta.to(F64))


def dense_ggn(outputs: Callable[[Tensor], Tensor], output_loss: Callable[[Tensor], Tensor], theta: Tensor) -> Tensor:
    """The generalized Gauss–Newton matrix Jᵀ H_ℓ J, shape (p, p), in float64.

    J = ∂z/∂θ from :func:`dense_jacobian`, H_ℓ = ∇²_z ℓ(z) of ``output_loss`` at z(θ) from ``torch.func.hessian``:
    the GGN by its definition (Schraudolph 2002), independent of losslab's GGN operator. No penalty term.
    """
    theta = theta.to(F64)
    z0 = outputs(theta)
    J = dense_jacobian(outputs, theta)
    H_ell = torch.func.hessian(lambda z: output_loss(z.reshape(z0.shape)))(z0.reshape(-1))
    return J.T @ H_ell @ J


def dense_nonlinearity(outputs: Callable[[Tensor], Tensor], output_loss: Callable[[Tensor], Tensor], theta: Tensor) -> Tensor:
    """Σ_i r_i ∇²z_i(θ), shape (p, p), r = ∇_z ℓ(z(θ)): the part of the Hessian the GGN leaves out, in float64.

    Built from the Hessians of the outputs themselves (``torch.func.hessian`` of z), not as H − GGN, so that
    H = GGN + this is an identity the tests can check between two independent computations.
    """
    theta = theta.to(F64)
    z0 = outputs(theta)
    r = torch.func.grad(lambda z: output_loss(z.reshape(z0.shape)))(z0.reshape(-1))  # (N,)
    hz = torch.func.hessian(lambda t: outputs(t).reshape(-1))(theta)  # (N, p, p)
    return torch.einsum("i,ipq->pq", r, hz)


# ---- a problem's or a module's outputs and losses, written out here ---------------------------------------


def outputs_of(problem) -> Callable[[Tensor], Tensor]:
    """θ ↦ z(θ) on the problem's data: the logit for bce with a sigmoid link (what the loss is taken of), else the
    model's output. Only the model's forward and the problem's parameter layout are used."""
    logit = problem.loss_fn.name == "bce" and problem.model.link == "sigmoid"
    return lambda t: (problem.model.logit if logit else problem.model.apply)(problem.unflatten(t), problem.X)


def output_loss_of(problem) -> Callable[[Tensor], Tensor]:
    """z ↦ ℓ(z, y), the data loss of :func:`outputs_of`, written with ``torch.nn.functional`` (not losslab.losses)."""
    y = problem.y
    if problem.loss_fn.name == "mse":
        return lambda z: F.mse_loss(z, y)
    if problem.loss_fn.name == "bce":
        return lambda z: F.binary_cross_entropy_with_logits(z, y)
    return lambda z: F.cross_entropy(z, y)


def mse_of(problem) -> Callable[[Tensor], Tensor]:
    """θ ↦ mean((f(θ; x_i) − y_i)²), the mean squared error written out on the model's outputs (no l2 term)."""
    return lambda t: ((problem.model.apply(problem.unflatten(t), problem.X) - problem.y) ** 2).mean()


def module_outputs(net: nn.Module, X: Tensor) -> Callable[[Tensor], Tensor]:
    """θ ↦ net(X) with the flat θ split into the module's parameters in ``named_parameters`` order, by
    ``torch.func.functional_call``: the user's own forward, no losslab wrapper in between."""
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    sizes = [p.numel() for _, p in net.named_parameters()]
    return lambda t: torch.func.functional_call(net, {n: s.reshape(sh) for n, s, sh in zip(names, t.split(sizes), shapes)}, (X,))


def linear_bce(theta: Tensor, X: Tensor, y: Tensor) -> Tensor:
    """mean(softplus(f) − y·f), f = X·w + b with θ = (w, b): logistic regression's loss written out."""
    f = X @ theta[:-1] + theta[-1]
    return (F.softplus(f) - y * f).mean()


def two_layer_tanh_mse(theta: Tensor, x: Tensor, y: Tensor, width: int) -> Tensor:
    """TwoLayer(1, width, "tanh")'s loss written out in torch: mean((v·tanh(W x + b) − y)²), θ = (W, b, v)."""
    W, b, v = theta[:width].reshape(width, 1), theta[width:2 * width], theta[2 * width:]
    return ((torch.tanh(x @ W.T + b) @ v - y) ** 2).mean()


def hand_two_layer_tanh_mse(theta: Tensor, X: Tensor, y: Tensor, width: int) -> float:
    """mean_i (Σ_j v_j tanh(W_j·x_i + b_j) − y_i)², θ = (W row by row, b, v), in Python floats summed by ``math.fsum``:
    TwoLayer(d, width, "tanh")'s loss with no tensor arithmetic at all."""
    t = [float(v) for v in theta]
    d = X.shape[1]
    W = [t[j * d:(j + 1) * d] for j in range(width)]
    b, v = t[width * d:width * d + width], t[width * d + width:]
    terms = []
    for xi, yi in zip(X.tolist(), y.tolist()):
        f = math.fsum(v[j] * math.tanh(math.fsum(W[j][k] * xi[k] for k in range(d)) + b[j]) for j in range(width))
        terms.append((f - yi) ** 2)
    return math.fsum(terms) / len(terms)


def _example_losses(name: str, z: Tensor, y: Tensor) -> list[float]:
    """Per-example losses written out in Python floats: mse on the output, bce and cross-entropy on logits."""
    if name == "mse":
        return [(u - v) ** 2 for u, v in zip(z.reshape(-1).tolist(), y.reshape(-1).tolist(), strict=True)]
    if name == "bce":  # softplus(z) − y·z, stably
        pairs = zip(z.reshape(-1).tolist(), y.reshape(-1).tolist(), strict=True)
        return [max(u, 0.0) + math.log1p(math.exp(-abs(u))) - v * u for u, v in pairs]
    assert name == "cross_entropy", name
    out = []
    for row, label in zip(z.reshape(len(y), -1).tolist(), y.reshape(-1).tolist(), strict=True):
        top = max(row)
        out.append(top + math.log(math.fsum(math.exp(u - top) for u in row)) - row[int(label)])
    return out


def hand_loss(problem, theta: Tensor) -> float:
    """L(θ) of ``problem`` with every group free, in float64, from the model's outputs alone: the per-example
    losses written out (not Problem.loss, not the losses module), averaged with ``math.fsum``, plus l2·Σθ²."""
    full = problem.full().to(F64)
    params = full.unflatten(theta.to(F64))
    terms: list[float] = []
    with torch.no_grad():
        for batch in full.batches():
            z = full.model.logit(params, batch.inputs)
            if full.loss_fn.name == "mse" and full.model.link == "sigmoid":
                z = torch.sigmoid(z)
            terms += _example_losses(full.loss_fn.name, z, batch.y)
    assert terms
    return math.fsum(terms) / len(terms) + problem.l2 * math.fsum(t * t for t in theta.to(F64).tolist())
