"""check_convexity on a user's digits MLP, quiet and beside a competing load (issue #9, section 3).

The problem is what a new user writes: scikit-learn's digits (n = 1797, 64 features scaled to
[0, 1], float32), ``nn.Sequential(Linear(64, 64), ReLU(), Linear(64, 32), ReLU(), Linear(32, 10))``
(6,570 parameters) trained for 100 Adam steps by the user's own loop, wrapped in ``Module`` with
cross-entropy; ``check_convexity(problem)`` analyses it jointly and every group on its own.

Two settings, interleaved round by round:

* ``threads=None``: torch's threads as the user has them (the default of one per core) — the
  behaviour before the scoped thread policy;
* ``threads="auto"``: the scoped policy (one thread for this small problem, restored after).

Each is timed quiet, then beside a competing load that this script starts and stops: ``--load``
processes (default: one per core) spinning in a pure-Python loop, or a torch matmul loop
(``--load-kind torch``), always killed in a ``finally``. Run in the users' environment: no
OMP_WAIT_POLICY, torch's default threads. Reports medians, the loaded/quiet ratio and the verdicts.

    flock /tmp/losslab-bench.lock python benchmarks/check_convexity_load.py [--rounds 5] [--loaded-rounds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

import torch
from sklearn.datasets import load_digits

from losslab import Problem, check_convexity
from losslab.models import Module

SPIN = {
    "python": "while True: pass",
    "torch": "import torch\na = torch.randn(512, 512)\nwhile True: a @ a",
}


def digits_problem(seed: int = 0, steps: int = 100) -> Problem:
    """The digits MLP at weights from the user's own short training loop."""
    torch.manual_seed(seed)
    digits = load_digits()
    X = torch.tensor(digits.data / 16, dtype=torch.float32)
    y = torch.tensor(digits.target)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(X), y).backward()
        opt.step()
    return Problem(Module(net), X, y, loss="cross_entropy")


def start_load(count: int, kind: str) -> list[subprocess.Popen]:
    procs = []
    try:
        for _ in range(count):
            procs.append(subprocess.Popen([sys.executable, "-c", SPIN[kind]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    except BaseException:
        stop_load(procs)
        raise
    time.sleep(1.0)  # let the load reach the cores
    return procs


def load_arguments(doc: str, *, rounds: int, loaded_rounds: int) -> argparse.Namespace:
    """The command line of a quiet-vs-loaded benchmark: --rounds, --loaded-rounds, --load and --load-kind."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=rounds, help="quiet rounds (each setting once per round)")
    parser.add_argument("--loaded-rounds", type=int, default=loaded_rounds, help="rounds beside the load")
    parser.add_argument("--load", type=int, default=os.cpu_count(), help="competing processes (default: one per core)")
    parser.add_argument("--load-kind", choices=sorted(SPIN), default="python")
    return parser.parse_args()


def stop_load(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def timed(problem: Problem, threads) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process, report) of one check_convexity."""
    start, cpu = time.perf_counter(), time.process_time()
    report = check_convexity(problem, threads=threads)
    return time.perf_counter() - start, time.process_time() - cpu, report


def rounds(problem: Problem, settings: dict, count: int) -> dict[str, list[tuple[float, float]]]:
    times = {name: [] for name in settings}
    for _ in range(count):
        for name, threads in settings.items():
            seconds, cpu, _ = timed(problem, threads)
            times[name].append((seconds, cpu))
            print(f"  {name}: {seconds:.2f} s wall, {cpu:.2f} s CPU; load average {os.getloadavg()[0]:.1f}", flush=True)
    return times


def print_load_table(quiet: dict, loaded: dict, names, *, unit: str) -> None:
    """The quiet/loaded table of median wall (CPU) times per setting (in s, or ms with ``unit="ms"``), and the ratio of the
    first two settings' loaded walls (threads=None over threads="auto")."""
    scale, digits = (1e3, 0) if unit == "ms" else (1.0, 2)
    print(f"\n| setting | quiet: wall (CPU) {unit} | loaded: wall (CPU) {unit} | loaded / quiet |\n|---|---|---|---|")
    for name in names:
        q, qc = (statistics.median(v) * scale for v in zip(*quiet[name]))
        lo, lc = (statistics.median(v) * scale for v in zip(*loaded[name]))
        print(f"| {name} | {q:.{digits}f} ({qc:.{digits}f}) | {lo:.{digits}f} ({lc:.{digits}f}) | {lo / q:.1f}× |")
    before, after = (statistics.median(w for w, _ in loaded[n]) for n in names)
    print(f"loaded: threads=None / threads=\"auto\" = {before / after:.1f}×; medians of interleaved rounds")


def verdicts(report) -> str:
    parts = ", ".join(f"{g} {r.verdict}" for g, r in report.by_group.items())
    return f"joint {report.verdict}; {parts}"


def main() -> None:
    args = load_arguments(__doc__, rounds=5, loaded_rounds=3)

    problem = digits_problem()
    settings = {"threads=None (before)": None, 'threads="auto"': "auto"}
    print(f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, torch threads {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; {problem.describe()}")
    for name, threads in settings.items():  # warm-up, and the verdicts of each setting
        *_, report = timed(problem, threads)
        print(f"{name}: {verdicts(report)}")
    print("quiet:")
    quiet = rounds(problem, settings, args.rounds)
    print(f"loaded ({args.load} × {args.load_kind} spin):")
    procs = start_load(args.load, args.load_kind)
    try:
        loaded = rounds(problem, settings, args.loaded_rounds)
    finally:
        stop_load(procs)
    print_load_table(quiet, loaded, settings, unit="s")
    print(f"torch threads after the benchmark: {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
