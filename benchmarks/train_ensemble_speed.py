"""Many seeds at once: ``train_ensemble`` against a Python loop of ``train``, GD and per-start SGD (issue #12, §7).

The problem: a tanh MLP [4, width, 1] fitted by squared loss to n examples of a random tanh teacher
(``losslab.data.teacher``, d_in = 4, 8 hidden units), float64 (the library's default). K = 64 seeds,
300 steps each, lr = 0.05:

* GD: ``train_ensemble(problem, seeds=range(K), steps=300)`` against
  ``[train(problem, seed=s, steps=300) for s in range(K)]``;
* SGD, batch 32, each start its own minibatch order (``minibatches="per-start"``, the sequence
  ``train(seed=s)`` draws): ``train_ensemble(..., optimizer="sgd", batch_size=32)`` against the loop of
  ``train(..., optimizer="sgd", batch_size=32)``.

Both sides use their defaults otherwise (records every 3 steps; ``threads="auto"``, one thread for these
sizes). Rounds are interleaved (loop, ensemble, loop, ensemble, …) after one warm-up of each; medians of
``--repeats`` rounds and the ratio loop / ensemble. ``--width`` and ``--n`` give the larger size. Run in the
users' environment: no OMP_WAIT_POLICY, torch's default threads; ``--profile`` prints where the time of one
``train`` and of one ensemble goes (cProfile, top functions by own time).

    flock /tmp/losslab-bench.lock python benchmarks/train_ensemble_speed.py [--width 16 --n 256 --repeats 3]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import statistics
import time

import torch

from losslab import Problem
from losslab import data as D
from losslab.fit import train, train_ensemble
from losslab.models import MLP

LR, STEPS, SEEDS, BATCH = 0.05, 300, 64, 32


def problem(width: int, n: int) -> Problem:
    X, y = D.teacher(n, d_in=4, width=8, activation="tanh", seed=0)
    return Problem(MLP([4, width, 1], "tanh"), X, y)


def runners(prob: Problem) -> dict[str, object]:
    seeds = range(SEEDS)
    return {
        "GD: loop of train": lambda: [train(prob, lr=LR, steps=STEPS, seed=s).theta for s in seeds],
        "GD: train_ensemble": lambda: train_ensemble(prob, seeds=seeds, lr=LR, steps=STEPS).theta,
        "SGD: loop of train": lambda: [train(prob, optimizer="sgd", lr=LR, steps=STEPS, batch_size=BATCH, seed=s).theta
                                       for s in seeds],
        "SGD: train_ensemble": lambda: train_ensemble(prob, seeds=seeds, optimizer="sgd", lr=LR, steps=STEPS,
                                                      batch_size=BATCH).theta,
    }


def floor(width: int, n: int):
    """The arithmetic floor of a GD ensemble step: the same forward and backward of all K starts written by hand.

    One batched matmul chain (K, width, 4) @ (4, n) → tanh → (K, 1, width) @ … and one ``autograd.grad``, no vmap,
    no losslab; 300 steps of θ ← θ − lr·g. No ensemble implementation in torch can do less arithmetic per step, so
    loop / floor bounds the ratio any ensemble could reach on this machine.
    """
    X, y = D.teacher(n, d_in=4, width=8, activation="tanh", seed=0)
    g = torch.Generator().manual_seed(0)
    shapes = [(SEEDS, width, 4), (SEEDS, width, 1), (SEEDS, 1, width), (SEEDS, 1, 1)]
    Xt = X.T.unsqueeze(0)

    def run():
        W0, b0, W1, b1 = (torch.randn(s, generator=g, dtype=torch.float64).mul_(0.5).requires_grad_(True) for s in shapes)
        for _ in range(STEPS):
            out = (W1 @ torch.tanh(W0 @ Xt + b0) + b1).squeeze(1)
            grads = torch.autograd.grad(((out - y) ** 2).mean(1).sum(), (W0, b0, W1, b1))
            with torch.no_grad():
                for t, gr in zip((W0, b0, W1, b1), grads):
                    t.sub_(gr, alpha=LR)
        return W0

    return run


def agreement(results: dict[str, object]) -> str:
    """The largest |θ_ensemble − θ_train| over the starts, GD and SGD (from the warm-up runs): the same runs."""
    out = []
    for kind in ("GD", "SGD"):
        alone, ens = torch.stack(results[f"{kind}: loop of train"]), results[f"{kind}: train_ensemble"]
        out.append(f"{kind} {float((ens - alone).abs().max()):.1e}")
    return "max |θ_ensemble − θ_train|: " + ", ".join(out)


def profile(fn, label: str, top: int = 12) -> None:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    print(f"\nprofile of {label} (own time, top {top}):")
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    prob = problem(args.width, args.n)
    print(f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, torch threads {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; {prob.describe()}; K = {SEEDS} seeds, "
          f"{STEPS} steps, SGD batch {BATCH}")
    fns = runners(prob)
    print(agreement({name: fn() for name, fn in fns.items()}), flush=True)  # the warm-up
    one = torch.get_num_threads()
    torch.set_num_threads(1)  # the ensemble runs on one thread here (the thread policy, losslab/_threads.py)
    try:
        floor_run = floor(args.width, args.n)
        floor_run()
        floors = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            floor_run()
            floors.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(one)
    times = {name: [] for name in fns}
    for r in range(args.repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
        print(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items())
              + f"; load average {os.getloadavg()[0]:.1f}", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print("\n| | loop of train | train_ensemble | ratio (best round) |\n|---|---|---|---|")
    for kind in ("GD", "SGD"):
        loop, ens = times[f"{kind}: loop of train"], times[f"{kind}: train_ensemble"]
        print(f"| {kind}, width {args.width}, n = {args.n} | {med[f'{kind}: loop of train']:.2f} s | "
              f"{med[f'{kind}: train_ensemble']:.3f} s | **{statistics.median(loop) / statistics.median(ens):.1f}×** "
              f"({min(loop) / min(ens):.1f}×) |")
    best = statistics.median(floors)
    print(f"\nGD arithmetic floor (hand-batched forward + backward of the {SEEDS} starts, one thread, no vmap): "
          f"{best:.3f} s, so no ensemble can beat the loop of train by more than "
          f"{med['GD: loop of train'] / best:.1f}× here")
    if args.profile:
        profile(lambda: train(prob, lr=LR, steps=STEPS, seed=0), "one train (GD)")
        profile(fns["GD: train_ensemble"], "train_ensemble (GD)")
        profile(fns["SGD: train_ensemble"], "train_ensemble (SGD)")


if __name__ == "__main__":
    main()
