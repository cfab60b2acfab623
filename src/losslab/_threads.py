"""A scoped intra-op thread policy: small problems run single-threaded, then the caller's setting returns.

Why. An analysis such as ``check_convexity`` is thousands of small torch operations (Adam steps,
Hessian-vector products in Lanczos, float64 re-checks). With torch's default of one thread per
core, each operation on the CPU wakes an OpenMP thread team and waits at its barrier for every
thread. On a quiet machine that costs little; when other processes keep the cores busy, a
team thread is often descheduled and every barrier waits for its next time slice (milliseconds),
so a 0.1 ms operation takes several: on a 2-core machine ``check_convexity`` on a 6,570-parameter
MLP went from 1.5 s quiet to 1–2 minutes under load. A single thread has no barrier to wait at, and
a problem whose operations are small gains almost nothing from a second thread even when quiet.

The policy. :func:`analysis_threads` picks a count from the work in one operation: the model's
parameter count P times the largest batch n_b (a forward costs ≈ 2·n_b·P FLOPs). Below
:data:`SMALL_WORK` it is 1; above, the caller's setting is kept. :func:`scoped_threads` applies
a count for the duration of a ``with`` block and restores ``torch.get_num_threads()`` afterwards,
also when the block raises; it never changes the caller's setting permanently. Only intra-op
threads are touched (inter-op threads cannot change once torch has started them). Accelerator
problems are left alone: their operations do not run on CPU thread teams.

``torch.set_num_threads`` is process-wide: another Python thread running torch at the same
time sees the scoped count while the block runs.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from ._checks import LosslabError

__all__ = ["SMALL_WORK", "analysis_threads", "resolve_threads", "scoped_threads", "with_analysis_threads"]

SMALL_WORK = 2**24
"""n_b·P (≈ 17 M, a forward of ≈ 34 MFLOP) below which one thread is used.

A 512-row batch of a 71k-parameter MLP (36 M) keeps the caller's threads for its large products;
the digits MLP (1797 × 6570 = 12 M) runs on one.
"""


def analysis_threads(problem) -> int | None:
    """1 for a CPU problem whose forward on one batch is small (n_b·P < :data:`SMALL_WORK`), else None (keep).

    Args:
        problem: a :class:`~losslab.Problem`; P counts every parameter of the model (fixed groups
            cost as much to evaluate as free ones), n_b is the largest batch.
    """
    if torch.device(problem.device).type != "cpu":
        return None
    data = problem.data
    batch = max(b.size for b in data.cached) if data.cached else -(-data.n // data.count)
    return 1 if batch * problem.full().n_params < SMALL_WORK else None


def resolve_threads(threads: int | str | None, problem) -> int | None:
    """The count to scope to for a public ``threads=`` argument: ``"auto"``, None (keep) or an int ≥ 1.

    Raises:
        LosslabError: anything else ("expected threads='auto', None or an int ≥ 1, got ...").
    """
    if threads == "auto":
        return analysis_threads(problem)
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise LosslabError(
            f"expected threads='auto', None (keep torch's setting) or an int ≥ 1, got threads={threads!r}"
        )
    return threads


@contextmanager
def scoped_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(count)``; restore the previous count afterwards.

    ``count=None`` (or the current count) changes nothing. Restored on exceptions too.

    Example:
        >>> before = torch.get_num_threads()
        >>> with scoped_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    before = torch.get_num_threads()
    if count is None or count == before:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def with_analysis_threads(fn: Callable) -> Callable:
    """Run a public analysis under :func:`analysis_threads` of its problem (its first argument).

    The first argument is a :class:`~losslab.Problem`, a slice's problem or an operator holding one
    (``.problem``); anything else runs unchanged. The decorated function takes one more keyword,
    ``threads="auto" | int | None``, as :func:`~losslab.check_convexity` does; the wrapper's
    ``__signature__`` lists it as a keyword-only parameter (default ``"auto"``), so ``help()`` and
    :func:`inspect.signature` show it. A function that already declares ``threads`` keeps its own.
    """

    @functools.wraps(fn)
    def run(*args, threads: int | str | None = "auto", **kwargs):
        first = args[0] if args else kwargs.get("problem", kwargs.get("problem_or_operator"))
        problem = first if hasattr(first, "data") and hasattr(first, "n_params") else getattr(first, "problem", None)
        if problem is None or not hasattr(problem, "data"):
            count = None if threads == "auto" else resolve_threads(threads, None)
        else:
            count = resolve_threads(threads, problem)
        with scoped_threads(count):
            return fn(*args, **kwargs)

    run.__signature__ = _with_threads_parameter(inspect.signature(fn))
    return run


def _with_threads_parameter(sig: inspect.Signature) -> inspect.Signature:
    """``sig`` with a keyword-only ``threads: int | str | None = "auto"`` added before any ``**kwargs``."""
    params = list(sig.parameters.values())
    if "threads" in sig.parameters:
        return sig
    extra = inspect.Parameter("threads", inspect.Parameter.KEYWORD_ONLY, default="auto", annotation="int | str | None")
    at = len(params) - (1 if params and params[-1].kind is inspect.Parameter.VAR_KEYWORD else 0)
    return sig.replace(parameters=[*params[:at], extra, *params[at:]])
