"""A 41×41 loss plane: losslab against loss-landscapes 3.0.6, side by side in one run.

Run by hand (``pip install -e ".[bench]"`` first), in the environment users have (no
``OMP_WAIT_POLICY``, torch's default threads):

    flock /tmp/losslab-bench.lock python benchmarks/landscape_plane.py [--rounds 5] [--only NAME]

Every problem is float32 with tanh and filter-normalised random directions, on the same data for
both tools: ``losslab.landscape.plane`` (whole call, directions included; implementation
"auto", and each explicit implementation the model can take) against
``loss_landscapes.random_plane(..., normalization="filter")`` (one ``model.forward`` per point).
Times are medians of interleaved rounds (each round runs every contender once), and beside them
the fastest round of each (robust to other processes on a shared machine); the ratio is
loss-landscapes' time over ours, and the goal of issue #9 is judged on the medians.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from copy import deepcopy

import torch

from losslab import Problem
from losslab.landscape import plane
from losslab.landscape.evaluate import backend
from losslab.models import MLP, Module

STEPS = 41


class Residual(torch.nn.Module):
    """x ↦ W_out (h + Σ blocks) with blocks h ← h + tanh(W h + b): a module with its own forward."""

    def __init__(self, d_in: int, width: int, blocks: int):
        super().__init__()
        self.inp = torch.nn.Linear(d_in, width)
        self.blocks = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(blocks))
        self.out = torch.nn.Linear(width, 1)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        for block in self.blocks:
            h = h + torch.tanh(block(h))
        return self.out(h)


def seq(*widths: int) -> torch.nn.Sequential:
    layers = []
    for i in range(len(widths) - 1):
        layers += [torch.nn.Linear(widths[i], widths[i + 1]), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers[:-1])


def params_of(net: torch.nn.Sequential) -> dict[str, torch.Tensor]:
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    return {k: v for i, lin in enumerate(linears) for k, v in ((f"W{i}", lin.weight.detach()), (f"b{i}", lin.bias.detach()))}


def data(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g) * 2 - 1
    return X, torch.sin(2 * X[:, 0]) + X[:, 1:].sum(1) ** 2 / d


def problems():
    """(name, goal, losslab problem, its centre, the nn.Module loss-landscapes gets, X, y)."""
    for width, n, goal in ((16, 100, 15.0), (32, 256, 8.0)):
        torch.manual_seed(width)
        net = seq(4, width, 1)
        X, y = data(n, 4, width)
        prob = Problem(Module(net), X, y)
        yield f"Sequential 4-{width}-1 in Module, n={n}", goal, prob, prob.default_theta(), net, X, y
        prob = Problem(MLP([4, width, 1], "tanh"), X, y)
        yield f"MLP([4, {width}, 1]), n={n}", goal, prob, prob.flatten(params_of(net)), net, X, y
    torch.manual_seed(1)
    net = Residual(4, 16, 2)
    X, y = data(100, 4, 1)
    prob = Problem(Module(net), X, y)
    yield "residual MLP 4-16 (2 blocks x + tanh(Wx)) -1, n=100", 4.0, prob, prob.default_theta(), net, X, y
    torch.manual_seed(2)
    net = seq(20, 256, 256, 1)
    X, y = data(4096, 20, 2)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=512)
    prob = Problem(MLP([20, 256, 256, 1], "tanh"), loader, loss="mse")
    yield "MLP 20-256-256-1, n=4096 as a DataLoader of 8 batches", 1.3, prob, prob.flatten(params_of(net)), net, X, y


def contenders(prob, center, net, X, y):
    import loss_landscapes
    import loss_landscapes.metrics

    metric = loss_landscapes.metrics.Loss(torch.nn.MSELoss(), X, y[:, None])
    out = {"loss-landscapes": lambda: loss_landscapes.random_plane(net, metric, distance=1, steps=STEPS, normalization="filter",
                                                                   deepcopy_model=True)}
    auto = backend(prob)
    out[f"losslab auto ({auto})"] = lambda: plane(prob, center, steps=STEPS, span=1.0, seed=0, method="grid")
    for impl in ("layers", "layers per point", "vmap", "per point"):
        if impl == auto or prob.n > 1000:  # the large problem: auto only (each path takes ~15 s)
            continue
        try:
            backend(prob, impl)
        except Exception:
            continue
        out[f"losslab {impl}"] = lambda impl=impl: plane(prob, center, steps=STEPS, span=1.0, seed=0, method="grid",
                                                         implementation=impl)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default=None, help="run the problems whose name contains this")
    parser.add_argument("--skip", default="", help="comma-separated contenders to skip (e.g. 'per point')")
    args = parser.parse_args()
    skip = [s for s in args.skip.split(",") if s]
    print(f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, float32, {STEPS}×{STEPS} plane, "
          f"medians of {args.rounds} interleaved rounds")
    for name, goal, prob, center, net, X, y in problems():
        if args.only and args.only not in name:
            continue
        fns = {k: f for k, f in contenders(prob, center, deepcopy(net), X, y).items() if not any(s in k for s in skip)}
        rounds = args.rounds if "4096" not in name else max(2, args.rounds // 2)
        times = {k: [] for k in fns}
        for f in fns.values():
            f()  # warm-up
        for _ in range(rounds):
            for k, f in fns.items():
                start = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - start)
        med = {k: statistics.median(v) for k, v in times.items()}
        best = {k: min(v) for k, v in times.items()}
        print(f"{name}  (goal ≥ {goal:g}× loss-landscapes; median ms, ratio; fastest round ms, ratio)")
        for k, s in med.items():
            ratio, fastest = med["loss-landscapes"] / s, best["loss-landscapes"] / best[k]
            mark = "" if k == "loss-landscapes" else ("  goal met" if ratio >= goal else "  goal NOT met")
            print(f"  {k:34s} {s * 1e3:9.1f} ms {ratio:6.2f}×   {best[k] * 1e3:9.1f} ms {fastest:6.2f}×"
                  f"{mark if k.startswith('losslab auto') else ''}")


if __name__ == "__main__":
    main()
