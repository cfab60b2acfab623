"""The K-point layer kernel's chunk size and the per-point threshold, measured (sets the constants of landscape/fast.py).

Run by hand: ``flock /tmp/losslab-bench.lock python benchmarks/landscape_kernels.py``. For MLPs of
4 inputs and one tanh hidden layer, float32, 1,681 points (a 41×41 plane), it prints the median
time of ``evaluate_points`` with ``implementation="layers"`` at several chunk sizes
(n × width × K values per chunk, ``fast.BATCH_ACTIVATIONS``), and with ``"layers per point"``,
in interleaved rounds.
"""

from __future__ import annotations

import statistics
import time

import torch

from losslab import Problem
from losslab.landscape import evaluate_points, fast
from losslab.models import MLP

SIZES = (2**16, 2**17, 2**18, 2**19, 2**20, 2**21)


def main(rounds: int = 9) -> None:
    print(f"{torch.get_num_threads()} threads, torch {torch.__version__}, float32, 1681 points; ms (median of {rounds} rounds)")
    for width, n in ((16, 100), (32, 256), (64, 1024), (256, 1024), (256, 4096)):
        g = torch.Generator().manual_seed(0)
        X = torch.rand(n, 4, generator=g) * 2 - 1
        prob = Problem(MLP([4, width, 1], "tanh"), X, X[:, 0])
        Theta = prob.init(0) + 0.1 * torch.randn(1681, prob.n_params, generator=g)
        fns = {}
        for size in SIZES:
            def run(size=size):
                fast.BATCH_ACTIVATIONS = size
                evaluate_points(prob, Theta, implementation="layers")
            fns[f"layers, chunk 2^{size.bit_length() - 1}"] = run
        fns["layers per point"] = lambda: evaluate_points(prob, Theta, implementation="layers per point")
        times = {k: [] for k in fns}
        for f in fns.values():
            f()
        for _ in range(rounds):
            for k, f in fns.items():
                start = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - start)
        line = "  ".join(f"{k.replace('layers, ', '')}: {statistics.median(v) * 1e3:.1f}" for k, v in times.items())
        print(f"width {width}, n={n} (n·width = 2^{(n * width).bit_length() - 1}): {line}")


if __name__ == "__main__":
    main()
