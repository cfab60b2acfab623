"""One small training run, quiet and beside a competing load, with torch's threads and with train's scoped policy.

The issue (#12, §7): on a busy 2-core machine small-tensor training got 10–200× slower with torch's default
of 2 threads, and 1 thread removed the slowdown. ``train`` runs under ``losslab._threads``' scoped policy
(``threads="auto"``: one thread for a problem this small, the caller's count restored afterwards). This
measures it: ``train(problem, lr=0.05, steps=300)`` (full-batch GD) on a tanh MLP [4, 16, 1] fitted to
n = 256 examples of a random tanh teacher (float64), with

* ``threads=None``: torch's threads as the user has them (the default: one per core);
* ``threads="auto"``: the scoped policy,

each timed in interleaved rounds, quiet and then beside ``--load`` busy processes (default: one per core;
``--load-kind python`` spins a pure-Python loop, ``torch`` a 512 × 512 matmul loop), which this script
starts and always kills. Medians of the rounds, the loaded / quiet ratio, and torch's thread count after
the benchmark (it must be the caller's). Run in the users' environment: no OMP_WAIT_POLICY, torch's
default threads.

    flock /tmp/losslab-bench.lock python benchmarks/train_threads_load.py [--rounds 7 --loaded-rounds 5]
"""

from __future__ import annotations

import os
import platform
import time

import torch
from check_convexity_load import load_arguments, print_load_table, start_load, stop_load

from losslab import Problem
from losslab import data as D
from losslab.fit import train
from losslab.models import MLP

SETTINGS = {"threads=None (torch's default)": None, 'threads="auto" (scoped)': "auto"}


def problem() -> Problem:
    X, y = D.teacher(256, d_in=4, width=8, activation="tanh", seed=0)
    return Problem(MLP([4, 16, 1], "tanh"), X, y)


def rounds(prob: Problem, count: int) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds of one train per setting per round, interleaved."""
    times = {name: [] for name in SETTINGS}
    for _ in range(count):
        for name, threads in SETTINGS.items():
            start, cpu = time.perf_counter(), time.process_time()
            train(prob, lr=0.05, steps=300, threads=threads)
            times[name].append((time.perf_counter() - start, time.process_time() - cpu))
        print("  " + ", ".join(f"{k}: {v[-1][0] * 1e3:.0f} ms" for k, v in times.items())
              + f"; load average {os.getloadavg()[0]:.1f}", flush=True)
    return times


def main() -> None:
    args = load_arguments(__doc__, rounds=7, loaded_rounds=5)

    prob = problem()
    threads_before = torch.get_num_threads()
    print(f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, torch threads {threads_before}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; {prob.describe()}; 300 GD steps")
    for threads in SETTINGS.values():
        train(prob, lr=0.05, steps=300, threads=threads)  # warm-up
    print("quiet:")
    quiet = rounds(prob, args.rounds)
    print(f"loaded ({args.load} × {args.load_kind} spin):")
    procs = start_load(args.load, args.load_kind)
    try:
        loaded = rounds(prob, args.loaded_rounds)
    finally:
        stop_load(procs)
    print_load_table(quiet, loaded, SETTINGS, unit="ms")
    print(f"torch threads after the benchmark: {torch.get_num_threads()} (before: {threads_before})")


if __name__ == "__main__":
    main()
