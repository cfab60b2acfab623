"""One adapter per library for benchmarks/curvature_dataloader.py: the same net and DataLoader, each library's own API.

What each peer does over a DataLoader (read from its code, versions pinned in pyproject's ``bench`` extra):

* curvlinops 3.0.1 ``HessianLinearOperator(model, loss, params, data)``: per batch, ``vmap`` over the
  columns of ``jvp(jacrev(loss))`` (forward recomputed on every product), weighted n_b/N — exact over
  uneven batches; checks determinism at construction; leaves the module's mode as it is. No eigensolver:
  users call ``scipy.sparse.linalg.eigsh`` on ``to_scipy()``.
* PyHessian 0.1 ``hessian(model, criterion, dataloader=...)``: forces ``model.eval()``; per batch a
  forward, ``backward(create_graph=True)`` and a second backward, weighted n_b/N (exact); top-k by
  power iteration with deflation; vectors from the global torch RNG in the default dtype.
* hessian-eigenthings 1.0.0a5 ``HessianOperator(model, loader, loss_fn)``: per batch double backward,
  averaged with weight 1/B over the B batches — *not* n_b/N, so an uneven last batch is over-weighted;
  the adapter passes a loss_fn scaled by n_b·B/N, which makes it exact. Top-k by Lanczos with a fixed
  number of steps.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

CE = nn.CrossEntropyLoss()


def losslab_operator(net: nn.Module, dl):
    from losslab import Problem
    from losslab.curvature import HessianOperator
    from losslab.models import Module

    problem = Problem(Module(net), dl, loss="cross_entropy")
    return HessianOperator(problem, problem.default_theta())


def losslab_top(net, dl, k: int, tol: float) -> np.ndarray:
    from losslab import Problem
    from losslab.curvature import eigs
    from losslab.models import Module

    problem = Problem(Module(net), dl, loss="cross_entropy")  # end to end, as a user calls it (thread policy included)
    return eigs(problem, problem.default_theta(), k=k, tol=tol, seed=0).values.numpy()[::-1]


def curvlinops_operator(net: nn.Module, dl):
    from curvlinops import HessianLinearOperator

    return HessianLinearOperator(net, CE, [p for p in net.parameters() if p.requires_grad], dl)


def curvlinops_top(net, dl, k: int, tol: float) -> np.ndarray:
    from scipy.sparse.linalg import eigsh

    op = curvlinops_operator(net, dl).to_scipy()
    v0 = np.random.default_rng(0).standard_normal(op.shape[0])
    return np.sort(eigsh(op, k=k, which="LA", tol=tol, v0=v0, return_eigenvectors=False))[::-1]


def pyhessian_operator(net: nn.Module, dl):
    from pyhessian import hessian

    return hessian(net, CE, dataloader=dl, cuda=False)


def pyhessian_top(net, dl, k: int, tol: float) -> np.ndarray:
    torch.manual_seed(0)
    values, _ = pyhessian_operator(net, dl).eigenvalues(maxIter=1000, tol=tol, top_n=k)
    return np.sort(np.asarray(values))[::-1]


def eigenthings_operator(net: nn.Module, dl):
    import hessian_eigenthings as he

    n, count = len(dl.dataset), len(dl)

    def loss_fn(model, batch):  # its 1/B average of these is the exact n_b/N-weighted mean
        x, y = batch
        return CE(model(x), y) * (len(y) * count / n)

    return he.HessianOperator(net, dl, loss_fn)


def eigenthings_top(net, dl, k: int, steps: int) -> np.ndarray:
    import hessian_eigenthings as he

    res = he.lanczos(eigenthings_operator(net, dl), k=k, max_iter=steps, which="LA", seed=0)
    return np.sort(res.eigenvalues.detach().cpu().numpy())[::-1]


def product(name: str, op, v: torch.Tensor) -> torch.Tensor:
    """One Hessian-vector product over the whole DataLoader, as a flat tensor."""
    if name == "pyhessian":
        vs, start = [], 0
        for p in op.params:
            vs.append(v[start : start + p.numel()].reshape(p.shape))
            start += p.numel()
        return torch.cat([h.reshape(-1) for h in op.dataloader_hv_product(vs)[1]])
    if name == "curvlinops":
        return op @ v
    return op.matvec(v)


OPERATORS = {
    "losslab": losslab_operator,
    "curvlinops": curvlinops_operator,
    "pyhessian": pyhessian_operator,
    "eigenthings": eigenthings_operator,
}
TOP = {"losslab": losslab_top, "curvlinops": curvlinops_top, "pyhessian": pyhessian_top, "eigenthings": eigenthings_top}
