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

Trace and density (``--tasks trace,density``): each library's own estimator, as shipped —
losslab ``hutchpp``/``hutchinson`` and ``spectral_density`` (all probes in one batched product);
curvlinops ``hutchpp_trace`` and ``lanczos_approximate_spectrum`` (Papyan 2020: no reorthogonalisation,
spectral bounds by ARPACK ``eigsh`` first, a density on a grid); PyHessian ``trace`` (Hutchinson only,
one probe per product, global RNG; run with tol=0 so it takes exactly maxIter probes) and ``density``
(SLQ with full reorthogonalisation; it calls ``torch.eig``, removed from torch 2, so it crashes as
shipped: the adapter installs a ``torch.eig`` shim built on ``torch.linalg.eigh``); hessian-eigenthings
``trace(method="hutch++")`` and ``spectral_density`` (one probe per product). With ``dense=H`` each
adapter runs the same estimator code on the matrix H in place of the DataLoader operator (for tuning).
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


def _dense_pyhessian(h, H: torch.Tensor) -> None:
    """Make PyHessian's object multiply by the matrix H instead of the DataLoader (its estimators unchanged)."""

    def hv(vs):
        Hv = (H @ torch.cat([v.reshape(-1) for v in vs]).to(H.dtype)).to(vs[0].dtype)
        return None, [piece.reshape(v.shape) for piece, v in zip(Hv.split([v.numel() for v in vs]), vs)]

    h.dataloader_hv_product = hv


class _DenseCurvlinops:
    """curvlinops' PyTorchLinearOperator around a dense matrix (its estimators unchanged)."""

    def __new__(cls, H: torch.Tensor):
        from curvlinops._torch_base import PyTorchLinearOperator

        class Dense(PyTorchLinearOperator):
            SELF_ADJOINT = True
            device, dtype = H.device, H.dtype

            def _matmat(self, X):
                return [H @ X[0]]

        return Dense([(H.shape[0],)], [(H.shape[0],)])


def losslab_trace(net, dl, samples: int, seed: int, dense=None, method: str = "xtrace") -> float:
    from losslab import Problem
    from losslab.curvature import MatrixOperator, hutchinson, hutchpp, xtrace
    from losslab.models import Module

    fn = {"xtrace": xtrace, "hutchpp": hutchpp, "hutchinson": hutchinson}[method]
    if dense is not None:
        return fn(MatrixOperator(dense), samples=samples, seed=seed).estimate
    problem = Problem(Module(net), dl, loss="cross_entropy")
    return fn(problem, problem.default_theta(), samples=samples, seed=seed).estimate


def losslab_hutchpp_trace(net, dl, samples: int, seed: int, dense=None) -> float:
    return losslab_trace(net, dl, samples, seed, dense, method="hutchpp")


def curvlinops_trace(net, dl, samples: int, seed: int, dense=None) -> float:
    from curvlinops import hutchpp_trace

    op = dense if dense is not None else curvlinops_operator(net, dl)
    torch.manual_seed(seed)
    return float(hutchpp_trace(op, samples))


def curvlinops_xtrace(net, dl, samples: int, seed: int, dense=None) -> float:
    """curvlinops' XTrace (Epperly, Tropp & Webber 2024): its most accurate trace estimator per product."""
    from curvlinops import xtrace

    op = dense if dense is not None else curvlinops_operator(net, dl)
    torch.manual_seed(seed)
    return float(xtrace(op, samples))


def pyhessian_trace(net, dl, samples: int, seed: int, dense=None) -> float:
    h = pyhessian_operator(net, dl)
    if dense is not None:
        _dense_pyhessian(h, dense)
    torch.manual_seed(seed)
    return float(np.mean(h.trace(maxIter=samples, tol=0.0)))


def eigenthings_trace(net, dl, samples: int, seed: int, dense=None) -> float:
    import hessian_eigenthings as he

    if dense is not None:
        op = he.LambdaOperator(lambda v: dense @ v.to(dense.dtype), size=dense.shape[0], dtype=dense.dtype)
    else:
        op = eigenthings_operator(net, dl)
    return he.trace(op, num_matvecs=samples, method="hutch++", seed=seed).estimate


def losslab_density(net, dl, setting, seed: int, dense=None):
    """(nodes, weights) of losslab's SLQ: ``setting`` = (probes, steps)."""
    from losslab import Problem
    from losslab.curvature import MatrixOperator, spectral_density
    from losslab.models import Module

    probes, steps = setting
    if dense is not None:
        sd = spectral_density(MatrixOperator(dense), probes=probes, steps=steps, seed=seed)
    else:
        problem = Problem(Module(net), dl, loss="cross_entropy")
        sd = spectral_density(problem, problem.default_theta(), probes=probes, steps=steps, seed=seed)
    return "nodes", sd.nodes, sd.weights


def curvlinops_density(net, dl, setting, seed: int, dense=None):
    """(grid, density) of curvlinops' Papyan SLQ: ``setting`` = (num_repeats, ncv)."""
    from curvlinops import lanczos_approximate_spectrum

    repeats, ncv = setting
    op = _DenseCurvlinops(dense) if dense is not None else curvlinops_operator(net, dl)
    torch.manual_seed(seed)
    np.random.seed(seed)
    grid, density = lanczos_approximate_spectrum(op, ncv, num_repeats=repeats)
    return "grid", grid, density


def _eig_shim(T, eigenvectors=False):
    w, V = torch.linalg.eigh(T)
    return torch.stack([w, torch.zeros_like(w)], 1), V


def pyhessian_density(net, dl, setting, seed: int, dense=None):
    """(nodes, weights) of PyHessian's SLQ: ``setting`` = (n_v, iter); ``torch.eig`` shimmed (removed in torch 2)."""
    torch.eig = _eig_shim
    n_v, steps = setting
    h = pyhessian_operator(net, dl)
    if dense is not None:
        _dense_pyhessian(h, dense)
    torch.manual_seed(seed)
    nodes, weights = h.density(iter=steps, n_v=n_v)
    return "nodes", torch.tensor(nodes), torch.tensor(weights)


def eigenthings_density(net, dl, setting, seed: int, dense=None):
    """(nodes, weights) of hessian-eigenthings' SLQ: ``setting`` = (num_runs, lanczos_steps)."""
    import hessian_eigenthings as he

    runs, steps = setting
    if dense is not None:
        op = he.LambdaOperator(lambda v: dense @ v.to(dense.dtype), size=dense.shape[0], dtype=dense.dtype)
    else:
        op = eigenthings_operator(net, dl)
    res = he.spectral_density(op, num_runs=runs, lanczos_steps=steps, seed=seed)
    keep = ~torch.isnan(res.raw_eigenvalues)
    return "nodes", res.raw_eigenvalues[keep], res.raw_weights[keep]


OPERATORS = {
    "losslab": losslab_operator,
    "curvlinops": curvlinops_operator,
    "pyhessian": pyhessian_operator,
    "eigenthings": eigenthings_operator,
}
TOP = {"losslab": losslab_top, "curvlinops": curvlinops_top, "pyhessian": pyhessian_top, "eigenthings": eigenthings_top}
TRACE = {"losslab": losslab_trace, "losslab-hutch++": losslab_hutchpp_trace,
         "curvlinops": curvlinops_trace, "curvlinops-xtrace": curvlinops_xtrace,
         "pyhessian": pyhessian_trace, "eigenthings": eigenthings_trace}
DENSITY = {"losslab": losslab_density, "curvlinops": curvlinops_density, "pyhessian": pyhessian_density,
           "eigenthings": eigenthings_density}
