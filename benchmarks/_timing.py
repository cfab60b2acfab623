"""Helpers shared by the benchmarks: medians of repeats after a warm-up, the matmul peak, and a log kept for the results file."""

from __future__ import annotations

import statistics
import time

import torch


def median_seconds(fn, repeats: int = 5) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_peak_gflops(dtype: torch.dtype = torch.float32, size: int = 2048) -> float:
    """This machine's achieved GFLOP/s on a square matrix product (the peak to compare against)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    return 2 * size**3 / median_seconds(lambda: a @ b, 5) / 1e9


class Log:
    """Print each line and keep it for the results file."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)
