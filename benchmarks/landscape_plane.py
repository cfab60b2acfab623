"""A 41×41 loss plane: losslab against loss-landscapes and a per-point loop, side by side.

Run by hand (``pip install -e ".[bench]"`` first):

    OMP_WAIT_POLICY=PASSIVE python benchmarks/landscape_plane.py

For each problem it prints the median wall time of several repeats (whole calls, directions
included) of

* ``losslab.landscape.plane`` (batched or per-point fast path, chosen by size),
* the same with the previous kernels (``fast._LEGACY``: ``baddbmm`` first layer, ``torch.tanh_``),
* ``loss_landscapes.random_plane`` (pip package loss-landscapes 3.0.6, filter normalisation),
* a plain loop over the points with an ``nn.Module`` forward (weights copied in),

in ms per point, as ratios to losslab, and as achieved GFLOP/s (matrix-product FLOPs only)
against this machine's float32 matmul peak measured in the same run.
"""

from __future__ import annotations

import platform
from copy import deepcopy

import torch
from _timing import matmul_peak_gflops, median_seconds

from losslab import Problem
from losslab.landscape import fast, plane
from losslab.landscape.evaluate import backend
from losslab.models import MLP

STEPS = 41






def problems():
    g = torch.Generator().manual_seed(0)
    for width, n in ((16, 100), (32, 256)):
        X = torch.rand(n, 1, generator=g) * 2 - 1
        y = X[:, 0] ** 3 - X[:, 0]
        net = torch.nn.Sequential(torch.nn.Linear(1, width), torch.nn.Tanh(), torch.nn.Linear(width, 1))
        flops = 2 * n * (width + width)
        yield f"two-layer tanh width {width}, n={n}", MLP([1, width, 1], "tanh"), net, X, y, flops, 5
    X = torch.randn(4096, 20, generator=g)
    y = torch.sin(X[:, 0])
    net = torch.nn.Sequential(
        torch.nn.Linear(20, 256), torch.nn.Tanh(), torch.nn.Linear(256, 256), torch.nn.Tanh(), torch.nn.Linear(256, 1)
    )
    yield "MLP 20-256-256-1, n=4096", MLP([20, 256, 256, 1], "tanh"), net, X, y, 2 * 4096 * (20 * 256 + 256 * 256 + 256), 3


def params_of(net: torch.nn.Sequential) -> dict[str, torch.Tensor]:
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    out = {}
    for i, lin in enumerate(linears):
        out[f"W{i}"], out[f"b{i}"] = lin.weight.detach().clone(), lin.bias.detach().clone()
    return out


def main() -> None:
    import loss_landscapes
    import loss_landscapes.metrics

    torch.manual_seed(0)
    peak = matmul_peak_gflops()
    print(f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; float32 matmul peak {peak:.0f} GFLOP/s")
    for name, model, net, X, y, flops, repeats in problems():
        problem = Problem(model, X, y)
        center = problem.flatten(params_of(net))
        points = STEPS * STEPS
        metric = loss_landscapes.metrics.Loss(torch.nn.MSELoss(), X, y[:, None])

        def ours():
            plane(problem, center, steps=STEPS, span=1.0, seed=0)

        def ours_before():
            fast._LEGACY = True
            try:
                plane(problem, center, steps=STEPS, span=1.0, seed=0)
            finally:
                fast._LEGACY = False

        def theirs():
            loss_landscapes.random_plane(net, metric, distance=1, steps=STEPS, normalization="filter", deepcopy_model=True)

        copy = deepcopy(net)
        Theta = center + 0.01 * torch.randn(points, problem.n_params)

        def loop():
            with torch.no_grad():
                for theta in Theta:
                    p = problem.unflatten(theta)
                    for i, m in enumerate(m for m in copy if isinstance(m, torch.nn.Linear)):
                        m.weight.copy_(p[f"W{i}"])
                        m.bias.copy_(p[f"b{i}"])
                    ((copy(X)[:, 0] - y) ** 2).mean()

        times = {"losslab plane": median_seconds(ours, repeats), "losslab (before)": median_seconds(ours_before, repeats),
                 "loss-landscapes": median_seconds(theirs, repeats), "nn.Module loop": median_seconds(loop, repeats)}
        base = times["losslab plane"]
        print(f"{name}: 41×41 = {points} points, losslab path: {backend(problem)}")
        for label, seconds in times.items():
            per_point = seconds / points
            gflops = flops / per_point / 1e9
            print(f"  {label:16s} {per_point * 1e3:8.4f} ms/point  {seconds / base:6.2f}× losslab  "
                  f"{gflops:6.1f} GFLOP/s ({100 * gflops / peak:4.1f} % of peak)")


if __name__ == "__main__":
    main()
