"""Every analysis works within ``memory_budget`` or refuses before allocating (issue #10, section 4).

How memory is measured. tracemalloc sees Python and NumPy allocations but not torch's (torch's CPU
allocator calls malloc directly). Torch's are read from the profiler: ``torch.profiler.profile(
profile_memory=True)`` records every CPU tensor allocation (on the op that allocates it) and every
free (a ``[memory]`` event), each with its size; replaying them in time order gives the peak of live
torch bytes allocated during the call (:func:`torch_peak`; checked against known allocations in
:func:`test_torch_peak_measures_torch_allocations`). RSS is too coarse (the process's high-water mark
never goes down) to isolate one call.

Three kinds of tests: a table of refusals (budget too small for the unavoidable allocation: a
MemoryBudgetError naming the bytes and the setting, and a peak far below what was refused); chunked
results equal the unchunked ones (a tiny budget against the default); and peaks within the budget
plus a stated slack on problems where the code before this change allocated several budgets.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tracemalloc

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from losslab import LosslabError, MemoryBudgetError, Problem, check_convexity
from losslab.curvature import HessianOperator, MatrixOperator, eigs, frobenius_norm, hutchinson, hutchpp, spectral_density, xtrace
from losslab.fit import least_squares_result, train_ensemble
from losslab.fit.kernel_ridge import kernel_ridge
from losslab.landscape import evaluate_combinations, evaluate_points
from losslab.memory import lanczos_bytes, mib, probe_bytes, require, sketch_bytes, slq_probe_bytes, xtrace_bytes
from losslab.models import MLP, Linear, TwoLayer

from _helpers import DT, gen, rand_X

MiB = 2**20
SLACK = 4 * MiB  # beyond the budget: the operator's own product (one batched backward) and a few p-vectors


def torch_peak(fn) -> tuple[object, int]:
    """(fn(), the peak of torch CPU bytes allocated and not yet freed during the call), from the profiler's memory events."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
    events = sorted((e.time_range.start, e.self_cpu_memory_usage) for e in prof.events() if e.self_cpu_memory_usage)
    live = peak = 0
    for _, size in events:
        live += size
        peak = max(peak, live)
    return out, peak


def python_peak(fn) -> int:
    """The peak of Python/NumPy bytes (tracemalloc) allocated during ``fn()``."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_torch_peak_measures_torch_allocations():
    def work():
        a = torch.zeros(1000, 1000, dtype=DT)  # 8 MB
        b = torch.zeros(2000, 1000, dtype=DT)  # 16 MB, 24 MB live
        del a
        d = b @ b.T  # 32 MB, 48 MB live at the peak
        return float(d[0, 0])

    _, peak = torch_peak(work)
    assert 47e6 <= peak <= 49e6


# ---- a table of refusals -------------------------------------------------------------------------
BUDGET = 8 * MiB
P_WIDE = 50 * 1002  # TwoLayer(1000, 50): p = 50,100


def _wide() -> tuple[Problem, torch.Tensor]:
    X = rand_X(4, 1000, 0)
    prob = Problem(TwoLayer(1000, 50, "tanh"), X, X[:, 0], memory_budget=BUDGET)
    return prob, prob.init(0)


def _operator():
    prob, theta = _wide()
    return HessianOperator(prob, theta)


def _linear_wide() -> Problem:
    X = rand_X(3, 50_000, 1)
    return Problem(Linear(50_000), X, X[:, 0], memory_budget=BUDGET)


REFUSALS = [  # (name, set-up (untimed), the call, the setting the message names)
    ("problem forward", lambda: rand_X(200, 1, 0), lambda X: Problem(TwoLayer(1, 20_000), X, X[:, 0], memory_budget=BUDGET),
     r"Problem\(\.\.\.\)'s batch_size \(at most \d+ rows per batch fit\)"),
    ("spectral_density", _operator, lambda H: spectral_density(H, probes=10, steps=40), "steps"),
    ("eigs", _operator, lambda H: eigs(H, k=5), "k"),
    ("eigs max_basis", _operator, lambda H: eigs(H, k=2, max_basis=40), "max_basis"),
    ("hutchinson", _operator, lambda H: hutchinson(H, samples=200), "samples"),
    ("hutchpp", _operator, lambda H: hutchpp(H, samples=99), "samples"),
    ("xtrace", _operator, lambda H: xtrace(H, samples=48), "samples"),
    ("frobenius_norm", _operator, lambda H: frobenius_norm(H, samples=200), "samples"),
    ("to_dense", _operator, lambda H: H.to_dense(), r"p \(restrict the problem to fewer groups\)"),
    ("dense eigs of a matrix", lambda: MatrixOperator(torch.eye(600, dtype=DT), memory_budget=MiB), lambda A: eigs(A, k=2, max_basis=600),
     "max_basis"),
    ("train_ensemble", _wide, lambda pt: train_ensemble(pt[0], seeds=range(10), steps=1), r"the number of starts \(seeds\)"),
    ("check_convexity chords", _wide, lambda pt: check_convexity(pt[0], train_steps=0, by_group=False),
     r"budget \(fewer chords per scale\)"),
    ("least_squares", _linear_wide, least_squares_result, "the number of samples or parameters"),
    ("kernel_ridge", lambda: rand_X(2000, 3, 2), lambda X: kernel_ridge(X, X[:, 0], degree=2, ridge=1e-3, memory_budget=BUDGET),
     r"the number of samples n \(subsample the data\)"),
]


@pytest.mark.parametrize(("name", "setup", "call", "setting"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refused_before_allocating_with_bytes_and_setting(name, setup, call, setting):
    arg = setup()
    holder = {}

    def attempt():
        with pytest.raises(MemoryBudgetError) as info:
            call(arg)
        holder["message"] = str(info.value)

    _, peak = torch_peak(attempt)
    message = holder["message"]
    match = re.search(r"needs ([\d,.]+) (MiB|GiB), over memory_budget ([\d,.]+) MiB: lower (.+) \(or raise memory_budget\)$", message)
    assert match, message
    needed = float(match.group(1).replace(",", "")) * (2**30 if match.group(2) == "GiB" else MiB)
    assert needed > BUDGET or name == "dense eigs of a matrix", message
    assert re.fullmatch(setting, match.group(4)), message
    assert issubclass(MemoryBudgetError, LosslabError)
    # what is allocated before the refusal: a few p-vectors (θ, the search's centres: 0.4 MB each), never the refused block
    assert peak < min(needed / 4, 4 * MiB), f"{name}: {mib(peak)} allocated before refusing {mib(needed)}"
    assert python_peak(attempt) < MiB  # nor Python / NumPy memory


def test_require_message():
    expected = r"^a thing needs 2\.0 MiB, over memory_budget 1\.0 MiB: lower size \(or raise memory_budget\)$"
    with pytest.raises(MemoryBudgetError, match=expected):
        require(2 * MiB, MiB, "a thing", "size")
    require(MiB, MiB, "a thing", "size")


# ---- chunked results equal the unchunked ones ----------------------------------------------------
def _small() -> tuple[Problem, torch.Tensor]:
    X = rand_X(30, 2, 3)
    prob = Problem(TwoLayer(2, 12, "tanh"), X, torch.sin(3 * X[:, 0]) * X[:, 1])
    return prob, prob.init(1)


def test_slq_in_blocks_of_one_probe_equals_all_probes_at_once():
    prob, theta = _small()
    p, probes, steps = prob.n_params, 5, 12
    whole = spectral_density(HessianOperator(prob, theta), probes=probes, steps=steps, seed=4)
    H = HessianOperator(prob, theta)
    H.memory_budget = p * probes + slq_probe_bytes(p, steps)  # room for one probe's basis
    blocked = spectral_density(H, probes=probes, steps=steps, seed=4)
    torch.testing.assert_close(blocked.nodes, whole.nodes, rtol=0, atol=1e-12 * float(whole.nodes.abs().max()))
    torch.testing.assert_close(blocked.weights, whole.weights, rtol=0, atol=1e-12)
    assert blocked.matvecs == whole.matvecs
    H.memory_budget -= 1
    with pytest.raises(MemoryBudgetError, match="lower steps"):
        spectral_density(H, probes=probes, steps=steps, seed=4)


TIGHT = {  # a budget that leaves room for one or a few probes next to what each estimator holds whole (p = 48, 30 samples)
    hutchinson: lambda p: 30 * p + 3 * probe_bytes(p),
    frobenius_norm: lambda p: 30 * p + 3 * probe_bytes(p),
    hutchpp: lambda p: sketch_bytes(p, 10) + 30 * p + probe_bytes(p),
    xtrace: lambda p: xtrace_bytes(p, 15) + probe_bytes(p),
}


@pytest.mark.parametrize("estimator", list(TIGHT), ids=lambda f: f.__name__)
def test_trace_estimators_in_blocks_equal_one_block(estimator):
    prob, theta = _small()
    whole = estimator(HessianOperator(prob, theta), samples=30, seed=5)
    H = HessianOperator(prob, theta)
    H.memory_budget = TIGHT[estimator](prob.n_params)
    calls = []
    apply_rows = H._apply_rows
    H._apply_rows = lambda V: calls.append(len(V)) or apply_rows(V)
    blocked = estimator(H, samples=30, seed=5)
    assert abs(blocked.estimate - whole.estimate) <= 1e-12 * max(abs(whole.estimate), 1.0)
    assert abs(blocked.stderr - whole.stderr) <= 1e-10 * max(whole.stderr, 1.0)
    assert blocked.matvecs == whole.matvecs
    assert max(calls) < 10, calls  # in blocks (unblocked, every call had 10 to 30 vectors)


def test_eigs_with_a_basis_cut_to_the_budget_finds_the_same_eigenvalues():
    prob, theta = _small()
    p, k = prob.n_params, 3
    dense = torch.linalg.eigvalsh(HessianOperator(prob, theta).to_dense())
    H = HessianOperator(prob, theta)
    H.memory_budget = lanczos_bytes(p, k + 4, k)  # default basis min(p, 30) = 30 vectors; the budget allows k + 4
    res = eigs(H, k=k, which="both", seed=2, max_iter=3000)
    assert res.all_converged and res.method == "lanczos"
    expected = torch.cat([dense[:1], dense[-2:]])
    torch.testing.assert_close(res.values, expected, rtol=0, atol=1e-8 * float(dense.abs().max()))
    H.memory_budget = lanczos_bytes(p, k + 2, k) - 1
    with pytest.raises(MemoryBudgetError, match="lower k"):
        eigs(H, k=k, which="both")


@pytest.mark.parametrize("implementation", ["layers", "layers per point", "vmap", "per point"])
def test_slices_with_a_tiny_budget_equal_the_default(implementation):
    X = rand_X(40, 2, 6)
    whole = Problem(MLP([2, 8, 6, 1], "tanh"), X, X[:, 0] * X[:, 1], l2=0.01)
    tiny = Problem(MLP([2, 8, 6, 1], "tanh"), X, X[:, 0] * X[:, 1], l2=0.01)
    tiny = tiny.with_memory_budget(tiny.point_bytes)  # one point per chunk, and the outputs of each chunk turned into losses at once
    V = torch.randn(2, whole.n_params, generator=gen(7), dtype=DT)
    C = torch.randn(50, 2, generator=gen(8), dtype=DT)
    base = whole.init(0)
    one = evaluate_combinations(whole, C, V, base, implementation=implementation)
    many = evaluate_combinations(tiny, C, V, base, implementation=implementation)
    torch.testing.assert_close(many, one, rtol=1e-13, atol=0)
    Theta = base + C @ V
    torch.testing.assert_close(evaluate_points(tiny, Theta, implementation=implementation),
                               evaluate_points(whole, Theta, implementation=implementation), rtol=1e-13, atol=0)


def test_ensemble_in_chunks_of_starts_equals_all_starts_at_once():
    prob, _ = _small()
    whole = train_ensemble(prob, seeds=range(6), lr=0.05, steps=20, optimizer="sgd", batch_size=8)
    prob = prob.with_memory_budget(4 * 6 * prob.n_params * 8 + 2 * prob.point_bytes)  # rows plus two starts' graphs
    chunked = train_ensemble(prob, seeds=range(6), lr=0.05, steps=20, optimizer="sgd", batch_size=8)
    torch.testing.assert_close(chunked.theta, whole.theta, rtol=0, atol=1e-12)
    torch.testing.assert_close(chunked.losses, whole.losses, rtol=1e-12, atol=0)


def test_least_squares_features_in_column_blocks_equal_jacfwd():
    X = rand_X(50, 3, 9)
    prob = Problem(TwoLayer(3, 10, "tanh"), X, X[:, 0] ** 2).restrict(["v"])
    whole = least_squares_result(prob, ridge=1e-3)
    prob = prob.with_memory_budget(3 * prob.point_bytes)  # the Jacobian a column or two at a time
    blocked = least_squares_result(prob, ridge=1e-3)
    torch.testing.assert_close(blocked.features, whole.features, rtol=0, atol=1e-14)
    torch.testing.assert_close(blocked.theta, whole.theta, rtol=1e-10, atol=1e-12)


# ---- peaks within the budget where the earlier code allocated several ----------------------------
def test_slq_peak_stays_within_the_budget():
    prob, theta = _wide()
    prob = prob.with_memory_budget(16 * MiB)
    H = HessianOperator(prob, theta)
    p, probes, steps = prob.n_params, 10, 20
    before = probes * steps * p * 8  # the earlier code's basis of all probes at once: 80 MB
    assert before > 4 * prob.memory_budget
    result, peak = torch_peak(lambda: spectral_density(H, probes=probes, steps=steps, seed=0))
    assert result.matvecs <= probes * steps
    assert peak <= prob.memory_budget + SLACK, mib(peak)


def test_hutchinson_peak_stays_within_the_budget():
    prob, theta = _wide()
    H = HessianOperator(prob, theta)
    samples = 100
    before = 3 * samples * P_WIDE * 8  # int64 draws, float64 probes, products: 120 MB
    assert before > 10 * BUDGET
    _, peak = torch_peak(lambda: hutchinson(H, samples=samples, seed=0))
    assert peak <= BUDGET + SLACK, mib(peak)


def test_plane_of_many_points_peak_stays_within_the_budget():
    X = rand_X(64, 2, 10)
    prob = Problem(MLP([2, 64, 64, 1], "tanh"), X, X[:, 0] * X[:, 1], memory_budget=16 * MiB)
    K = 4000
    later = prob.n_params - 64 * 3  # the weights after the first layer, for every point at once: 135 MB before
    assert K * later * 8 > 8 * prob.memory_budget
    V = torch.randn(2, prob.n_params, generator=gen(11), dtype=DT)
    C = torch.randn(K, 2, generator=gen(12), dtype=DT)
    losses, peak = torch_peak(lambda: evaluate_combinations(prob, C, V, prob.init(0), implementation="layers"))
    assert losses.shape == (K,) and bool(torch.isfinite(losses).all())
    assert peak <= prob.memory_budget + SLACK, mib(peak)


def test_ensemble_peak_stays_within_the_budget():
    X = rand_X(100, 1, 13)
    prob = Problem(TwoLayer(1, 2000, "tanh"), X, X[:, 0] ** 2, memory_budget=48 * MiB)
    K = 32
    assert K * prob.point_bytes > 8 * prob.memory_budget  # all starts' graphs at once, as before: 460 MB by the estimate
    runs, peak = torch_peak(lambda: train_ensemble(prob, seeds=range(K), steps=2, lr=0.01))
    assert runs.theta.shape == (K, prob.n_params)
    assert peak <= prob.memory_budget + SLACK, mib(peak)


# ---- the CLI: estimates, --yes, --memory-budget ---------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "losslab.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_refuses_a_large_landscape_without_yes_and_says_the_estimate(tmp_path):
    # sizes decide, not the timing (the same command is refused on every machine): over 250,000 points
    result = _cli("landscape", "--model", "mlp", "--hidden", "16,16", "--steps", "1001", "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line
    pattern = r"the slice: 1,002,001 points > 250,000 \(estimated [\d.]+ (s|min) and 22\.9 MiB of intermediates .*pass --yes"
    assert re.search(pattern, line), line
    assert not (tmp_path / "out").exists()
    # and by memory: the grid's 22.9 MiB over an 8 MiB budget, at 1,002,001 points
    result = _cli("landscape", "--model", "mlp", "--hidden", "16,16", "--steps", "1001", "--memory-budget", "8",
                  "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "22.9 MiB > --memory-budget 8.0 MiB" in result.stderr, result.stderr
    small = _cli("landscape", "--model", "mlp", "--hidden", "16,16", "--steps", "500", "--train-steps", "2",
                 "--out", str(tmp_path / "small"), "--json")  # 250,000 points: runs without --yes
    assert small.returncode == 0, small.stderr


def test_cli_names_its_own_options_when_the_problem_does_not_fit():
    result = _cli("check", "--model", "two-layer", "--width", "100000", "--memory-budget", "64")
    assert result.returncode == 2
    assert re.fullmatch(r"error: the forward and gradient graph of TwoLayer\(d_in=1, width=100000, activation=relu\) at one θ on a "
                        r"batch of 200 examples needs 1,373\.3 MiB, over --memory-budget 64\.0 MiB: lower --batch-size \(at most 9 "
                        r"rows per batch fit\) \(or raise --memory-budget\)", result.stderr.strip()), result.stderr


def test_the_cli_times_a_request_only_when_it_is_large():
    """Bytes and sizes decide; the seconds (a few timed products) are measured only to be reported in a refusal."""
    from losslab.cli.common import LARGE, confirm_large
    from losslab.cli.estimate import Cost

    timed = []

    def timer() -> float:
        timed.append(1)
        return 7200.0

    confirm_large("the slice", size=LARGE["points"], unit="points", cost=Cost(100, timer), budget=100, yes=False)
    assert timed == []  # at the limits, not over them: nothing timed, nothing said
    with pytest.raises(LosslabError, match=r"the slice: 250,001 points > 250,000 \(estimated 120\.0 min and .*pass --yes"):
        confirm_large("the slice", size=LARGE["points"] + 1, unit="points", cost=Cost(100, timer), budget=100, yes=False)
    with pytest.raises(LosslabError, match=r"3\.0 MiB > --memory-budget 1\.0 MiB"):
        confirm_large("the slice", size=1, unit="points", cost=Cost(3 * 2**20, timer), budget=2**20, yes=False)
    assert timed == [1, 1]
