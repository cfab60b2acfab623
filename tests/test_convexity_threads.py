"""check_convexity's scoped thread policy, and a user's digits MLP analysed as the issue describes.

The policy must leave the caller's torch setting as it found it (also after an exception), run a
small problem single-threaded while the analysis runs, and change no number: verdicts and
witnesses are the same with and without it. Witnesses are re-checked independently in float64.
"""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits

from losslab import LosslabError, Problem, check_convexity, data
from losslab._threads import SMALL_WORK, analysis_threads, resolve_threads, scoped_threads
from losslab.convexity.chords import random_pairs, symmetric_pairs
from losslab.models import Module, TwoLayer

from references import module_outputs

DT = torch.float64


@pytest.fixture
def three_threads():
    """torch set to 3 threads (not the default, not the policy's 1) for the test, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield 3
    torch.set_num_threads(before)


def small_problem() -> Problem:
    return Problem(TwoLayer(1, 8, "relu"), *data.cubic(60, seed=0))


def test_the_callers_threads_are_restored_and_the_analysis_ran_single_threaded(three_threads):
    seen = []
    report = check_convexity(small_problem(), budget=300, train_steps=0, progress=lambda m: seen.append(torch.get_num_threads()))
    assert report.verdict == "non-convex"
    assert seen and set(seen) == {1}  # a small CPU problem runs on one thread while analysed
    assert torch.get_num_threads() == three_threads


def test_the_callers_threads_are_restored_after_an_exception_inside(three_threads):
    def fail(message):
        assert torch.get_num_threads() == 1
        raise KeyboardInterrupt  # e.g. the user pressing Ctrl-C during the search

    with pytest.raises(KeyboardInterrupt):
        check_convexity(small_problem(), budget=300, progress=fail)
    assert torch.get_num_threads() == three_threads


def test_scoped_threads_restores_on_exceptions_and_none_changes_nothing(three_threads):
    with pytest.raises(ValueError), scoped_threads(1):
        assert torch.get_num_threads() == 1
        raise ValueError
    assert torch.get_num_threads() == three_threads
    with scoped_threads(None):
        assert torch.get_num_threads() == three_threads
    assert torch.get_num_threads() == three_threads


@pytest.mark.parametrize("threads", [None, 2, "auto"])
def test_verdicts_and_witnesses_are_identical_with_and_without_the_policy(threads, three_threads):
    problem = small_problem()
    reference = check_convexity(problem, budget=400, train_steps=20, threads=1)
    other = check_convexity(problem, budget=400, train_steps=20, threads=threads)
    assert other.to_dict() == reference.to_dict()  # verdicts, witnesses (a, b, λ, gap), search logs
    assert reference.witness.verify(problem).holds
    assert torch.get_num_threads() == three_threads


BAD_THREADS = [
    (0, "got threads=0"), (-1, "got threads=-1"), ("many", "got threads='many'"), (True, "got threads=True"), (1.5, "got threads=1.5")
]


@pytest.mark.parametrize(("threads", "match"), BAD_THREADS)
def test_bad_threads_are_one_line_errors(threads, match):
    with pytest.raises(LosslabError, match=match):
        check_convexity(small_problem(), threads=threads)
    with pytest.raises(LosslabError, match="expected threads='auto'"):
        resolve_threads(threads, small_problem())


def test_auto_keeps_the_callers_threads_for_a_large_problem():
    n, width = 8192, 4096
    x = torch.linspace(-1, 1, n).reshape(n, 1)
    net = torch.nn.Sequential(torch.nn.Linear(1, width), torch.nn.Tanh(), torch.nn.Linear(width, 1))
    big = Problem(Module(net), x, torch.sin(3 * x).reshape(-1), memory_budget=2**31)  # one forward's graph: 1.5 GiB estimated
    assert n * big.n_params >= SMALL_WORK
    assert analysis_threads(big) is None and resolve_threads("auto", big) is None
    assert analysis_threads(small_problem()) == 1
    # a DataLoader of small batches: one forward is one batch, so small again
    loader = [(x[i : i + 256], torch.sin(3 * x[i : i + 256]).reshape(-1)) for i in range(0, n, 256)]
    assert analysis_threads(Problem(Module(net), loader)) == 1


def test_random_draws_are_the_same_numbers_as_plain_cpu_draws():
    """The device-following draws change nothing on the CPU: the same seed gives the same numbers."""
    center = torch.linspace(-1, 2, 7, dtype=torch.float32)
    a, b = random_pairs(center, (0.1, 1.0), 3, torch.Generator().manual_seed(5))
    g = torch.randn(2, 6, 7, generator=torch.Generator().manual_seed(5), dtype=DT).to(torch.float32)
    s = torch.tensor((0.1, 1.0), dtype=torch.float32).repeat_interleave(3)[:, None] * max(float(center.pow(2).mean().sqrt()), 1.0)
    assert torch.equal(a, center + s * g[0]) and torch.equal(b, center + s * g[1])
    c, d = symmetric_pairs(center, (0.1,), 4, torch.Generator().manual_seed(5))
    g = torch.randn(4, 7, generator=torch.Generator().manual_seed(5), dtype=DT).to(torch.float32)
    s = torch.tensor((0.1,), dtype=torch.float32).repeat_interleave(4)[:, None] * max(float(center.pow(2).mean().sqrt()), 1.0)
    assert torch.equal(c, center + s * g) and torch.equal(d, center - s * g)
    assert a.device == center.device and a.dtype == center.dtype


def digits_mlp(n: int = 300, steps: int = 30) -> Problem:
    """The issue's example at a smaller n: the user's float32 MLP, briefly trained by their own loop."""
    torch.manual_seed(0)
    digits = load_digits()
    X = torch.tensor(digits.data[:n] / 16, dtype=torch.float32)
    y = torch.tensor(digits.target[:n])
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(X), y).backward()
        opt.step()
    return Problem(Module(net), X, y, loss="cross_entropy")


def independent_gap(problem: Problem, witness) -> float:
    """The chord gap recomputed in float64 by the user's own module and torch's cross-entropy."""
    out = module_outputs(problem.model.module.double(), problem.X.to(DT))  # θ in the module's parameter order

    def loss(theta):
        return float(torch.nn.functional.cross_entropy(out(theta), problem.y))

    a, b, lam = witness.a, witness.b, witness.lam
    return loss(lam * a + (1 - lam) * b) - lam * loss(a) - (1 - lam) * loss(b)


def test_the_digits_mlp_is_non_convex_jointly_and_its_last_layer_is_proven_convex():
    problem = digits_mlp()
    assert problem.n_params == 6570 and problem.dtype == torch.float32
    report = check_convexity(problem, budget=800, train_steps=30)
    assert report.verdict == "non-convex"
    check = report.witness.verify(problem)
    assert check.holds and check.gap > check.bound > 0
    assert independent_gap(problem, report.witness) == pytest.approx(report.witness.gap, rel=1e-6)
    assert set(report.by_group) == set(problem.groups)
    assert report.by_group["4.weight"].verdict == report.by_group["4.bias"].verdict == "convex"
    for g in ("0.weight", "2.weight"):  # the hidden layers learn features: non-convex, re-checked
        assert report.by_group[g].verdict == "non-convex"
        assert independent_gap(problem, report.by_group[g].witness) > 0
    last = check_convexity(problem, groups=["4.weight", "4.bias"])
    assert last.verdict == "convex" and "traced graph" in last.proof.statement


def test_the_decorated_functions_show_threads_as_a_keyword_only_parameter_in_their_signature():
    import inspect

    from losslab._threads import with_analysis_threads
    from losslab.curvature import eigs
    from losslab.fit import train, train_ensemble

    for fn in (train, train_ensemble, eigs):
        sig = inspect.signature(fn)
        param = sig.parameters["threads"]
        assert param.kind is inspect.Parameter.KEYWORD_ONLY and param.default == "auto", fn.__name__

    def plain(problem, x, *, scale=1.0, **extra):
        return torch.get_num_threads()

    wrapped = with_analysis_threads(plain)
    assert list(inspect.signature(wrapped).parameters) == ["problem", "x", "scale", "threads", "extra"]
    assert wrapped(None, 1, threads=2) == 2  # the parameter the signature shows is the one the wrapper takes
