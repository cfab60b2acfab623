"""What an analysis allocates, in bytes, and one refusal when that is over the memory budget.

Every analysis of a :class:`~losslab.Problem` (or of a curvature operator, which carries its
problem's budget) works within ``memory_budget`` bytes of *intermediates*: what it allocates
beyond the problem's own data and parameters and the inputs its caller passes (a Θ given to
``loss_batch``). Where it can, it works in blocks that fit (probes of SLQ, Hutchinson and
Hutch++ a block at a time, points of a slice a chunk at a time, a Lanczos basis restarted
within the budget); where the smallest block does not fit (one probe's Lanczos basis, the
dense p × p matrix, Hutch++'s sketch, the n × n kernel matrix, a least-squares Jacobian), it
refuses *before allocating anything*, with :func:`require`'s one-line error naming the bytes
needed and the setting to lower.

The estimates below are upper bounds of the live tensors an analysis holds at its peak (each
with a small constant for the temporaries of one vector operation), in bytes. They are the
numbers checked, and tests compare them with the peak that torch's profiler records.
"""

from __future__ import annotations

from ._checks import LosslabError

__all__ = [
    "DEFAULT_MEMORY_BUDGET", "F64_BYTES", "MemoryBudgetError", "blocks", "chord_bytes", "dense_bytes", "ensemble_bytes", "fits",
    "kernel_ridge_bytes", "lanczos_bytes", "least_squares_bytes", "mib", "probe_bytes", "require", "sketch_bytes",
    "slq_probe_bytes", "xtrace_bytes",
]

DEFAULT_MEMORY_BUDGET = 256 * 2**20
"""256 MiB: the default ``memory_budget`` of a Problem (and of an operator built from a matrix)."""

F64_BYTES = 8


class MemoryBudgetError(LosslabError):
    """An analysis that would allocate more than ``memory_budget``, refused before it allocates (a LosslabError)."""


def mib(size: float) -> str:
    """``size`` bytes in MiB (GiB from 10 GiB, KiB or bytes below 0.1 MiB), for messages: ``"37.4 MiB"``."""
    if size < 0.1 * 2**20:  # "0.0 MiB" says nothing
        return f"{size / 2**10:,.1f} KiB" if size >= 2**10 else f"{int(size):,} bytes"
    return f"{size / 2**30:,.1f} GiB" if size >= 10 * 2**30 else f"{size / 2**20:,.1f} MiB"


def require(needed: int, budget: int, what: str, setting: str) -> None:
    """Raise a one-line LosslabError unless ``needed`` bytes fit in ``budget``.

    The message: "``what`` needs N MiB, over memory_budget M MiB: lower ``setting`` (or raise
    memory_budget)". Called before the allocation it is about.

    Raises:
        MemoryBudgetError: ``needed > budget`` (a :class:`~losslab.LosslabError`).

    Example:
        >>> require(2**20, 2**30, "a thing", "size")  # fits: nothing happens
    """
    if needed > budget:
        raise MemoryBudgetError(
            f"{what} needs {mib(needed)}, over memory_budget {mib(budget)}: lower {setting} (or raise memory_budget)"
        )


def fits(per_item: int, budget: int, fixed: int = 0) -> int:
    """How many items of ``per_item`` bytes fit in ``budget`` next to ``fixed`` bytes (0 when not one)."""
    return max(0, (budget - fixed) // max(per_item, 1))


def blocks(count: int, size: int) -> list[slice]:
    """``count`` items as consecutive slices of at most ``size`` (≥ 1) items."""
    size = max(1, size)
    return [slice(start, min(start + size, count)) for start in range(0, count, size)]


def probe_bytes(p: int) -> int:
    """One Rademacher probe in a block of a trace estimator: its float64 column (and its deflation), the copy
    ``matmat`` makes, the product A z (in the operator's dtype and in float64) and one elementwise temporary:
    6·p float64 values."""
    return 6 * p * F64_BYTES


def slq_probe_bytes(p: int, steps: int) -> int:
    """One probe of stochastic Lanczos quadrature: its basis (steps × p float64) and six work vectors."""
    return (steps + 6) * p * F64_BYTES


def lanczos_bytes(p: int, basis: int, k: int) -> int:
    """Thick-restart Lanczos with ``basis`` vectors kept, at its peak: V and AV (2·basis × p), the larger of a restart's
    rotated copy (k + ⌊(basis − k)/2⌋ vectors kept) and the k Ritz vectors, their products and the result's sorted copy
    (3k), and the work vectors (4); and the basis × basis tridiagonal matrix, its eigenvectors and their kept columns
    (3·basis²). Measured against torch's allocator in tests/test_eigs_memory_budget.py."""
    return ((2 * basis + max(k + (basis - k) // 2, 3 * k) + 4) * p + 3 * basis * basis) * F64_BYTES


def dense_bytes(p: int) -> int:
    """The dense p × p path of :func:`~losslab.curvature.eigs`: the identity, A, its eigenvectors and A·S."""
    return 5 * p * p * F64_BYTES


def sketch_bytes(p: int, m: int) -> int:
    """Hutch++'s sketch: A S, the QR factorisation's working copy and the basis Q (3·m × p float64), and one probe block."""
    return 3 * m * p * F64_BYTES + probe_bytes(p)


def xtrace_bytes(p: int, m: int) -> int:
    """XTrace with m probes: Ω, Y = AΩ, its SVD, Q, Z = AQ and the leave-one-out columns, 7·m·p float64 values."""
    return 7 * m * p * F64_BYTES


def chord_bytes(pairs: int, p: int, itemsize: int) -> int:
    """A block of chords: the float64 normal draws (2 × pairs × p), the endpoints A, B and one λ's middle points
    (3 × pairs × p in the problem's dtype) and one temporary."""
    return pairs * p * (2 * F64_BYTES + 4 * itemsize)


def ensemble_bytes(starts: int, p: int, itemsize: int) -> int:
    """An ensemble's parameter rows: the starts, the current points, their gradients and one update temporary."""
    return 4 * starts * p * itemsize


def kernel_ridge_bytes(n: int) -> int:
    """Kernel ridge regression: the n × n float64 kernel matrix and its Cholesky factor."""
    return 2 * n * n * F64_BYTES


def least_squares_bytes(outputs: int, p: int, ridge: bool) -> int:
    """Closed-form least squares on the N × p Jacobian Φ (float64): Φ, the Jacobian's own copy while it is built,
    and the solver's: a copy of Φ (ridge 0), the augmented (N + p) × p system, or the dual N × N matrix and its factor."""
    N = outputs
    if not ridge:
        solve = N * p + N
    elif p > N:
        solve = 2 * N * N
    else:
        solve = 2 * (N + p) * p
    return (2 * N * p + solve) * F64_BYTES

