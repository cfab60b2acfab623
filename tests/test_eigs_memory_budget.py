"""``eigs`` within ``memory_budget``: the basis it picks, the bytes it refuses, and the eigenvalues it still finds.

The promise (:mod:`losslab.memory`, :func:`losslab.curvature.eigs`): the dense path (max_basis ≥ p)
holds 5·p² float64 values and is used only when they fit; otherwise a restarted Lanczos holds
(2·m + max(k + ⌊(m − k)/2⌋, 3·k) + 4)·p float64 values at its peak (a restart's rotated copy, or the Ritz
vectors, their products and a sorted copy) and 3·m² values (T, its eigenvectors, their kept columns), with the
default basis m lowered to the largest that fits (down to k + 2); a basis the caller gives is kept or refused,
and a refusal comes before anything is allocated, naming the bytes and the setting to lower. The byte counts
here are written out by hand from those formulas, the basis sizes found by brute force, and the eigenvalues
compared with dense ``eigvalsh``.
"""

from __future__ import annotations

import importlib

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from losslab import MemoryBudgetError
from losslab.curvature import MatrixOperator, eigs

from _helpers import with_spectrum

DT = torch.float64
basis_within_budget = importlib.import_module("losslab.curvature.eigs")._basis_within_budget


def lanczos_needs(p: int, m: int, k: int) -> int:
    """Bytes of a Lanczos basis of m vectors for k pairs at its peak: V and AV, the larger of a restart's rotated copy
    (k + (m − k)//2 vectors) and the Ritz vectors with their products and a sorted copy (3k), 4 work vectors; and the
    m × m tridiagonal T, its eigenvectors S and S's kept columns."""
    return (2 * m + max(k + (m - k) // 2, 3 * k) + 4) * p * 8 + 3 * m * m * 8


def dense_needs(p: int) -> int:
    """Bytes of the dense path: the identity, A, its eigenvectors, A·S and one temporary, p × p float64 each."""
    return 5 * p * p * 8


def largest_basis(p: int, k: int, default: int, budget: int) -> int:
    """The largest m ≤ default whose basis fits, by trying every m (k + 2 when even that one does not fit)."""
    fitting = [m for m in range(k + 2, default + 1) if lanczos_needs(p, m, k) <= budget]
    return max(fitting, default=k + 2)


def operator(p: int, budget: int, seed: int = 0) -> MatrixOperator:
    """A p × p matrix with eigenvalues 1, 2, …, p (well separated: every method finds them to ~1e-12)."""
    return MatrixOperator(with_spectrum([float(i) for i in range(1, p + 1)], seed), memory_budget=budget)


def assert_true_eigenvalues(res, A: torch.Tensor, k: int, which: str) -> None:
    """Every wanted value within its rigorous bound (and 1e-8·‖A‖) of the eigenvalue it stands for."""
    exact = torch.linalg.eigvalsh(A)
    wanted = {"largest": exact[-k:], "smallest": exact[:k], "both": torch.cat([exact[: k // 2], exact[len(exact) - (k - k // 2):]])}
    error = (res.values - wanted[which]).abs()
    assert res.all_converged
    assert bool((error <= res.bounds).all()), (error, res.bounds)
    assert float(error.max()) <= 1e-8 * float(exact.abs().max())


# ---- the default basis is cut to the largest that fits -------------------------------------------
P, K, DEFAULT = 40, 3, 30  # the default basis min(p, max(30, 2k + 10)) = 30 vectors
SIZES = [  # (budget, why): the bytes of a basis of m vectors and what lies around them
    (lanczos_needs(P, K + 4, K), "exactly a basis of k + 4"),
    (lanczos_needs(P, K + 4, K) + P * 8, "one vector more: an odd count of vectors, still k + 4"),
    (lanczos_needs(P, 11, K) - 1, "a byte short of 11 vectors: 10"),
    (lanczos_needs(P, K + 2, K), "exactly the smallest basis, k + 2"),
    (lanczos_needs(P, DEFAULT, K) - 1, "a byte short of the default: 29"),
    (lanczos_needs(P, DEFAULT, K), "the default fits exactly: kept"),
]


@pytest.mark.parametrize(("budget", "why"), SIZES, ids=[s[1] for s in SIZES])
def test_the_default_basis_is_the_largest_that_fits(budget, why):
    m = basis_within_budget(operator(P, budget), K, DEFAULT, given=False)
    assert m == largest_basis(P, K, DEFAULT, budget), why
    assert type(m) is int  # a basis size, not 7.0 or 7.5 vectors


def test_a_basis_cut_to_an_uneven_budget_finds_the_eigenvalues_of_the_default():
    # 7 vectors and a bit: the cut basis must still be a whole number of vectors, and restarts must not change the answer
    budget = lanczos_needs(P, K + 4, K) + 100
    op = operator(P, budget, seed=1)
    res = eigs(op, k=K, which="both", seed=3, max_iter=3000)
    assert res.method == "lanczos"
    assert_true_eigenvalues(res, op.A, K, "both")


@pytest.mark.parametrize(("p", "k", "which", "fits"), [(400, 2, "largest", 8), (400, 5, "both", 30), (300, 4, "largest", 9)])
def test_a_shrunk_basis_stays_within_the_budget_when_measured(p, k, which, fits):
    # The budget holds a basis of `fits` vectors (the default 30 when fits = 30: restarts at the default size). The peak
    # of torch's live bytes during eigs, from its profiler's allocation events (tracemalloc does not see torch's
    # allocator; the operator's own matrix and its products' temporaries are not counted, as memory_budget says: the
    # budget is the bytes eigs keeps, so the peak may exceed it by at most one product's temporaries, p·8 bytes here).
    budget = lanczos_needs(p, fits, k)
    values = [i / p for i in range(p - 4)] + [2.0, 3.0, 4.0, 5.0]
    op = MatrixOperator(with_spectrum(values, seed=2), memory_budget=budget)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        res = eigs(op, k=k, which=which, seed=0)
    events = sorted((e.time_range.start, e.self_cpu_memory_usage) for e in prof.events() if e.self_cpu_memory_usage)
    live = peak = 0
    for _, size in events:
        live += size
        peak = max(peak, live)
    assert res.matvecs > fits  # it restarted
    assert peak <= budget + p * 8, (peak, budget)
    assert_true_eigenvalues(res, op.A, k, which)


def test_a_budget_below_the_smallest_basis_is_refused_naming_k():
    budget = lanczos_needs(P, K + 2, K) - 1
    op = operator(P, budget)
    with pytest.raises(MemoryBudgetError) as info:
        basis_within_budget(op, K, DEFAULT, given=False)
    assert str(info.value) == (
        "Lanczos for 3 eigenpair(s) with a basis of 5 vectors of p = 40 needs 7.8 KiB, over memory_budget 7.8 KiB: "
        "lower k (or raise memory_budget)"
    )
    with pytest.raises(MemoryBudgetError, match="lower k "):
        eigs(op, k=K)


def test_a_given_basis_is_kept_or_refused_naming_max_basis():
    budget = lanczos_needs(P, 10, K)
    op = operator(P, budget)
    assert basis_within_budget(op, K, 10, given=True) == 10
    assert basis_within_budget(op, K, 6, given=True) == 6  # never raised to what would fit
    with pytest.raises(MemoryBudgetError) as info:
        eigs(op, k=K, max_basis=20)  # 20 vectors need (40 + 11 + 4)·320 + 3·400·8 = 27,200 bytes: not cut to the 10 that fit
    assert str(info.value) == (
        "Lanczos for 3 eigenpair(s) with a basis of 20 vectors of p = 40 needs 26.6 KiB, over memory_budget 12.7 KiB: "
        "lower max_basis (or raise memory_budget)"
    )


# ---- the dense path (max_basis ≥ p) only when 5·p² values fit -------------------------------------
def test_the_dense_path_is_used_when_it_fits_exactly():
    p, k = 20, 2  # the default basis min(p, 30) = p: the dense path
    op = operator(p, dense_needs(p))
    assert basis_within_budget(op, k, p, given=False) == p
    res = eigs(op, k=k, which="both")
    assert res.method == "dense" and res.matvecs == p
    assert_true_eigenvalues(res, op.A, k, "both")


def test_a_dense_path_over_the_budget_becomes_lanczos_with_the_largest_basis_that_fits():
    p, k = 20, 2
    op = operator(p, dense_needs(p) - 1)  # 15,999 bytes: 19 vectors need 16,984 (T and S are 19 × 19), 18 fit
    assert basis_within_budget(op, k, p, given=False) == largest_basis(p, k, p - 1, dense_needs(p) - 1) == 18
    res = eigs(op, k=k, which="both", seed=1)
    assert res.method == "lanczos"
    assert_true_eigenvalues(res, op.A, k, "both")


def test_p_equal_to_k_plus_3_tries_the_smallest_restarted_basis_then_refuses_naming_k():
    p, k = 5, 2  # p − 1 = k + 2 vectors: the smallest basis that restarts, (8 + 6 + 4)·40 + 3·16·8 = 1,104 bytes
    op = operator(p, dense_needs(p) - 1)  # 999 bytes: neither the dense matrix nor that basis fits
    with pytest.raises(MemoryBudgetError) as info:
        basis_within_budget(op, k, p, given=False)
    assert str(info.value) == (
        "Lanczos for 2 eigenpair(s) with a basis of 4 vectors of p = 5 needs 1.1 KiB, over memory_budget 999 bytes: "
        "lower k (or raise memory_budget)"
    )
    op = operator(p, lanczos_needs(p, k + 2, k))  # room for that basis is room for the dense matrix, the cheaper here
    assert lanczos_needs(p, k + 2, k) > dense_needs(p) and basis_within_budget(op, k, p, given=False) == p
    res = eigs(op, k=k, which="largest", seed=0, max_basis=k + 2)  # a basis the caller gives: Lanczos
    assert res.method == "lanczos"
    assert_true_eigenvalues(res, op.A, k, "largest")


def test_too_few_vectors_for_lanczos_and_no_room_for_the_dense_matrix_is_refused_naming_k():
    p, k = 4, 3  # p − 1 < k + 2: only the dense path is left, and it needs 640 bytes
    op = operator(p, dense_needs(p) - 1)
    with pytest.raises(MemoryBudgetError) as info:
        eigs(op, k=k)
    assert str(info.value) == (
        "the dense 4 × 4 matrix (used when max_basis >= p) needs 640 bytes, over memory_budget 639 bytes: lower k (or raise memory_budget)"
    )


def test_a_given_basis_of_p_or_more_over_the_budget_is_refused_naming_max_basis():
    p, k = 20, 2
    op = operator(p, dense_needs(p) - 1)
    for max_basis in (p, p + 5):  # never silently a Lanczos run the caller did not ask for
        with pytest.raises(MemoryBudgetError) as info:
            eigs(op, k=k, max_basis=max_basis)
        assert str(info.value) == (
            "the dense 20 × 20 matrix (used when max_basis >= p) needs 15.6 KiB, over memory_budget 15.6 KiB: "
            "lower max_basis (or raise memory_budget)"
        )
