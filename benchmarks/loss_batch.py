"""Batched loss evaluation against a per-point loop, side by side in one process.

The many-points workload of landscapes and chord searches: K parameter points on the same data.
Prints the median time of several repeats for

* ``Problem.loss_batch(Θ)`` — one ``torch.func.vmap`` call per memory-budget chunk;
* a Python loop of ``Problem.loss(θ)``;
* a Python loop of a plain ``nn.Module`` forward with the weights copied in (what a user
  would write by hand),

and the ratios. Run by hand: ``OMP_WAIT_POLICY=PASSIVE python benchmarks/loss_batch.py``.
"""

from __future__ import annotations

import platform

import torch
from _timing import median_seconds

from losslab import Problem
from losslab.models import TwoLayer


def bench(width: int, n: int, points: int = 41 * 41, dtype=torch.float32) -> dict[str, float]:
    g = torch.Generator().manual_seed(0)
    X = torch.rand(n, 1, generator=g, dtype=dtype) * 2 - 1
    y = X[:, 0] ** 3
    problem = Problem(TwoLayer(1, width, "tanh"), X, y, dtype=dtype)
    Theta = torch.randn(points, problem.n_params, generator=g, dtype=dtype)
    net = torch.nn.Sequential(torch.nn.Linear(1, width), torch.nn.Tanh(), torch.nn.Linear(width, 1, bias=False)).to(dtype)

    def module_loop():
        with torch.no_grad():
            for theta in Theta:
                p = problem.unflatten(theta)
                net[0].weight.copy_(p["W"])
                net[0].bias.copy_(p["b"])
                net[2].weight.copy_(p["v"][None])
                ((net(X)[:, 0] - y) ** 2).mean()

    def loss_loop():
        with torch.no_grad():
            for theta in Theta:
                problem.loss(theta)

    batched = median_seconds(lambda: problem.loss_batch(Theta))
    return {
        "loss_batch": batched,
        "loop of Problem.loss": median_seconds(loss_loop, 3),
        "loop of nn.Module forward": median_seconds(module_loop, 3),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    for width, n in ((16, 100), (32, 256)):
        times = bench(width, n)
        base = times["loss_batch"]
        print(f"TwoLayer tanh width {width}, n={n}, 41×41 = 1681 points, float32:")
        for name, seconds in times.items():
            print(f"  {name:28s} {seconds * 1e3:8.1f} ms  ({seconds / base:5.1f}× loss_batch)")
