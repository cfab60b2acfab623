"""Scratch benchmark: evaluating a plane's worth of points, side by side in one process.

For each problem it times, on the same K points Θ (K, p):

* ``Problem.loss_batch``: ``torch.func.vmap`` per memory-budget chunk (the generic path);
* ``layers``: :mod:`losslab.landscape.fast`'s K-point kernel, one product per layer per chunk;
* ``layers per point``: its loop of ``addmm`` + in-place activation per point, no autograd;
* a loop of ``Problem.loss`` under ``torch.no_grad()``;
* a loop of an ``nn.Module`` forward with the weights copied in (what per-point tools do);

and prints ms/point, the ratio to the slowest-path baseline (the module loop), and GFLOP/s of
the model's matrix products. It also checks that the fast paths agree with ``loss_batch``.
Run by hand: ``flock /tmp/losslab-bench.lock python benchmarks/landscape_eval_scratch.py [--quick]``.
"""

from __future__ import annotations

import platform
import sys

import torch
from _timing import median_seconds

from losslab import Problem
from losslab.landscape import backend, evaluate_points
from losslab.models import MLP, TwoLayer


def module_for(problem: Problem) -> tuple[torch.nn.Module, list[tuple[torch.nn.Parameter, str]]]:
    """An nn.Module with the same forward, and (parameter, group) pairs to copy θ into."""
    model, dt = problem.model, problem.dtype
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[model.activation]
    if isinstance(model, TwoLayer):
        net = torch.nn.Sequential(torch.nn.Linear(model.d_in, model.width), act(), torch.nn.Linear(model.width, 1, bias=False)).to(dt)
        return net, [(net[0].weight, "W"), (net[0].bias, "b"), (net[2].weight, "v")]
    mods, pairs = [], []
    for i in range(model.depth):
        lin = torch.nn.Linear(model.widths[i], model.widths[i + 1]).to(dt)
        mods += [lin] + ([act()] if i < model.depth - 1 else [])
        pairs += [(lin.weight, f"W{i}"), (lin.bias, f"b{i}")]
    return torch.nn.Sequential(*mods), pairs


def flops_per_point(problem: Problem) -> float:
    return 2.0 * problem.n * sum(s[0] * s[1] if len(s) == 2 else s[0] for g, s in problem.model.shapes.items() if g[0] in "Wv")


def bench(name: str, problem: Problem, points: int, repeats: int) -> None:
    g = torch.Generator().manual_seed(0)
    theta = problem.init(0)
    Theta = theta + 0.3 * torch.randn(points, problem.n_params, generator=g, dtype=torch.float64).to(problem.dtype)
    net, pairs = module_for(problem)
    X, y = problem.X, problem.y

    def module_loop():
        with torch.no_grad():
            for t in Theta:
                p = problem.unflatten(t)
                for param, group in pairs:
                    param.copy_(p[group].reshape(param.shape))
                ((net(X)[:, 0] - y) ** 2).mean()

    def loss_loop():
        with torch.no_grad():
            for t in Theta:
                problem.loss(t)

    ref = problem.loss_batch(Theta)
    for how in ("layers", "layers per point"):
        got = evaluate_points(problem, Theta, implementation=how)
        err = float(((got - ref).abs() / ref.abs()).max())
        assert err < (1e-5 if problem.dtype == torch.float32 else 1e-12), (how, err)
    times = {
        "nn.Module loop": median_seconds(module_loop, repeats),
        "Problem.loss loop": median_seconds(loss_loop, repeats),
        "Problem.loss_batch": median_seconds(lambda: problem.loss_batch(Theta), repeats),
        "layers": median_seconds(lambda: evaluate_points(problem, Theta, implementation="layers"), repeats),
        "layers per point": median_seconds(lambda: evaluate_points(problem, Theta, implementation="layers per point"), repeats),
    }
    base = times["nn.Module loop"]
    flops = flops_per_point(problem) * points
    print(f"{name}: {points} points, p={problem.n_params}, n={problem.n}, {problem.dtype}; auto path = {backend(problem)}")
    for key, sec in times.items():
        print(f"  {key:20s} {sec / points * 1e3:9.4f} ms/point  {base / sec:6.1f}× module loop  {flops / sec / 1e9:7.2f} GFLOP/s")


def matmul_peak(dtype=torch.float32, size: int = 1024) -> float:
    A, B = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    sec = median_seconds(lambda: A @ B, 5)
    return 2 * size**3 / sec / 1e9


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    torch.manual_seed(0)
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"float32 matmul peak (1024²): {matmul_peak():.1f} GFLOP/s")
    dt = torch.float32

    def data(n: int, d: int):
        g = torch.Generator().manual_seed(1)
        X = torch.rand(n, d, generator=g, dtype=dt) * 2 - 1
        return X, torch.tanh(X.sum(1))

    grid = 11 * 11 if quick else 41 * 41
    bench("TwoLayer tanh width 16", Problem(TwoLayer(1, 16, "tanh"), *data(100, 1), dtype=dt), grid, 3)
    bench("TwoLayer tanh width 32", Problem(TwoLayer(1, 32, "tanh"), *data(256, 1), dtype=dt), grid, 3)
    bench("MLP 20-256-256-1 tanh", Problem(MLP([20, 256, 256, 1], "tanh"), *data(4096, 20), dtype=dt), 8 if quick else 60, 2)
