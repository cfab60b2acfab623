"""Curvature over a DataLoader of uneven batches equals curvature over the same data as one tensor.

References are independent of losslab: the dense Hessian is ``torch.func.hessian`` of the full-batch
mean loss written by hand with ``torch.func.functional_call`` and ``torch.nn.functional``; the GGN is
Jᵀ H_ℓ J from ``torch.func.jacrev`` of the module's own outputs. Cases: a tanh MLP and a BatchNorm
CNN in eval mode (running statistics set), float64, 11 examples in batches of 4, 4, 3. The
data-loader problem is also built streamed (``cache_bytes=0``: the loader is read on every pass)
and with a tiny ``memory_budget`` (the per-batch autograd graphs are rebuilt for every product).
Last, a source check that nothing in ``losslab.curvature`` moves device tensors to NumPy without
``.cpu()`` or draws random numbers without a seeded generator.
"""

from __future__ import annotations

import ast
import pathlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import losslab.curvature as curvature
from losslab import Problem
from losslab.curvature import GGNOperator, HessianOperator, NonlinearityOperator, eigs, hutchpp, spectral_density
from losslab.models import Module

from _helpers import gen
from references import dense_ggn, dense_hessian, module_outputs

DT = torch.float64
N, BATCH, CLASSES = 11, 4, 3


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 4), nn.Tanh(), nn.Linear(4, CLASSES)).to(DT).eval()


def bn_cnn() -> nn.Module:
    """Conv(1→2, 3) – BN – ReLU – Linear(8→3) on 4×4 images, BN running statistics from a train-mode pass, eval mode."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, CLASSES)).to(DT)
    with torch.no_grad():
        net.train()(torch.randn(32, 1, 4, 4, generator=gen(9), dtype=DT))
    return net.eval()


MAKERS = {"mlp": mlp, "bn_cnn": bn_cnn}


def data() -> tuple[torch.Tensor, torch.Tensor]:
    X = torch.randn(N, 1, 4, 4, generator=gen(1), dtype=DT)
    y = torch.randint(0, CLASSES, (N,), generator=gen(2))
    return X, y


def loader(X, y) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=BATCH, shuffle=False)  # 4, 4, 3


def problems(net: nn.Module) -> dict[str, Problem]:
    X, y = data()
    uncached = Problem(Module(net), loader(X, y), loss="cross_entropy")
    uncached = uncached.with_memory_budget(uncached.point_bytes)  # graphs of 3 batches exceed 4 budgets: operators rebuild them per product
    return {
        "tensor": Problem(Module(net), X, y, loss="cross_entropy"),
        "loader": Problem(Module(net), loader(X, y), loss="cross_entropy"),
        "streamed": Problem(Module(net), loader(X, y), loss="cross_entropy", cache_bytes=0),
        "uncached": uncached,
    }


def dense_references(net: nn.Module, theta: torch.Tensor) -> dict[str, torch.Tensor]:
    """H, GGN and H − GGN of the full-batch mean cross-entropy, by torch.func on the module itself (tests/references.py)."""
    X, y = data()
    out = module_outputs(net, X)
    H = dense_hessian(lambda t: F.cross_entropy(out(t), y), theta)
    G = dense_ggn(out, lambda z: F.cross_entropy(z, y), theta)
    return {"H": H, "G": G, "N": H - G}


def operators(problem: Problem, theta: torch.Tensor) -> dict[str, object]:
    return {"H": HessianOperator(problem, theta), "G": GGNOperator(problem, theta), "N": NonlinearityOperator(problem, theta)}


@pytest.mark.parametrize("name", MAKERS)
def test_operators_over_uneven_batches_equal_the_one_tensor_and_torch_func_hessian(name):
    net = MAKERS[name]()
    probs = problems(net)
    assert probs["loader"].data.count == 3 and probs["loader"].data.cached is not None
    assert probs["streamed"].data.cached is None
    theta = probs["tensor"].default_theta()
    refs = dense_references(net, theta)
    assert float(refs["N"].abs().max()) > 1e-3 * float(refs["H"].abs().max())  # the models are nonlinear in θ
    v = torch.randn(len(theta), generator=gen(3), dtype=DT)
    V = torch.randn(len(theta), 3, generator=gen(4), dtype=DT)
    for kind, problem in probs.items():
        for op_name, op in operators(problem, problem.as_theta(theta)).items():
            if kind == "uncached":
                assert not op.cached
            elif kind in ("tensor", "loader"):
                assert op.cached
            A = refs[op_name]
            tol = dict(rtol=0, atol=1e-12 * float(A.abs().max()))
            if kind in ("tensor", "loader"):  # the whole matrix; the streamed and uncached paths on a vector and a block
                torch.testing.assert_close(op.to_dense(), A, **tol, msg=f"{kind} {op_name}")
            else:
                torch.testing.assert_close(op.matmat(V), A @ V, **tol, msg=f"{kind} {op_name}")
            torch.testing.assert_close(op.matvec(v), A @ v, **tol, msg=f"{kind} {op_name}")


@pytest.mark.parametrize("name", MAKERS)
def test_eigs_trace_and_density_equal_between_tensor_and_dataloader(name):
    probs = problems(MAKERS[name]())
    theta = probs["tensor"].default_theta()
    lam = torch.linalg.eigvalsh(dense_references(MAKERS[name](), theta)["H"])
    scale = float(lam.abs().max())
    results = {}
    for kind, problem in probs.items():
        H = HessianOperator(problem, theta)
        H.memory_budget = 2**28  # room for the Lanczos bases and probes (the uncached problem's budget is one point's graph)
        results[kind] = (
            eigs(H, k=3, which="both", max_basis=8, seed=1),
            hutchpp(H, samples=30, seed=2),
            spectral_density(H, probes=3, steps=8, seed=3),
        )
    e0, t0, d0 = results["tensor"]
    assert e0.method == "lanczos" and e0.all_converged
    torch.testing.assert_close(e0.values, torch.cat([lam[:1], lam[-2:]]), rtol=0, atol=1e-8 * scale)
    for kind, (e, t, d) in results.items():
        torch.testing.assert_close(e.values, e0.values, rtol=0, atol=1e-10 * scale, msg=kind)
        assert e.values.device.type == "cpu" and e.vectors.device.type == "cpu"
        assert abs(t.estimate - t0.estimate) <= 1e-10 * scale * len(theta), kind
        torch.testing.assert_close(d.nodes, d0.nodes, rtol=0, atol=1e-9 * scale, msg=kind)
        torch.testing.assert_close(d.weights, d0.weights, rtol=0, atol=1e-9, msg=kind)
    assert abs(d0.moment(1) - float(lam.mean())) <= 0.5 * float(lam.abs().mean())  # a sanity bound on SLQ, 3 probes


def _calls(tree: ast.AST):
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)]


def test_curvature_moves_to_the_cpu_before_numpy_and_draws_random_numbers_from_cpu_generators():
    """Device safety by reading the source: ``x.numpy()`` only as ``x.cpu().numpy()`` (or on a tensor built by
    ``torch.from_numpy``), and every random draw (randn/rand/randint/normal…) takes a ``generator=`` made on the CPU
    (``torch.Generator()`` without a device), its result moved to the operator's device."""
    folder = pathlib.Path(curvature.__file__).parent
    random_fns = {"randn", "rand", "randint", "normal", "randperm", "randn_like", "rand_like", "randint_like"}
    checked = 0
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text())
        for call in _calls(tree):
            where = f"{path.name}:{call.lineno}"
            if call.func.attr == "numpy":
                receiver = call.func.value
                assert isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Attribute) and receiver.func.attr == "cpu", where
                checked += 1
            if call.func.attr in random_fns:
                assert any(k.arg == "generator" for k in call.keywords), f"{where}: a random draw without generator="
                checked += 1
            if call.func.attr == "Generator":
                assert not call.args and not call.keywords, f"{where}: expected a CPU generator, torch.Generator()"
    assert checked >= 5  # the to_scipy conversions and the start vectors / probes of eigs and trace (density draws through trace._signs)
