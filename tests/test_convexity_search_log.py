"""What check_convexity reports after a search that finds nothing: the log, the JSON and the explanation.

The problem is logistic regression behind a forward torch.fx cannot trace: convex (so no chord may
certify), yet without a proof, so every stage of the search runs. Each reported number is checked
against an independent reference: the smallest Hessian eigenvalues against a dense
``torch.func.hessian`` of a hand-written float64 loss, at points rebuilt here (the trained ones with
plain ``torch.optim.Adam``); the counts against each other and the budget; the text against the log.
"""

from __future__ import annotations

import json
import re

import pytest
import torch

from losslab import LosslabError, Problem, check_convexity, data
from losslab._checks import NonFiniteError
from losslab.convexity.chords import LAMBDAS, SCALES
from losslab.models import MLP, Module, TwoLayer
from losslab.random_streams import child_seed

from _helpers import Untraced
from references import dense_hessian, linear_bce, two_layer_tanh_mse

DT = torch.float64
X, Y = data.logistic_labels(40, seed=0)
AT = {"lin.weight": torch.tensor([[0.7, -0.4]], dtype=DT), "lin.bias": torch.tensor([0.3], dtype=DT)}
AT_THETA = torch.tensor([0.7, -0.4, 0.3], dtype=DT)  # θ = (weight, bias), the order of the groups
SEED, BUDGET, TRAIN_STEPS = 2, 864, 6


def logistic_problem(**kw) -> Problem:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Problem(Module(Untraced(2)), X, Y, loss="bce", **kw)


def bce(theta: torch.Tensor) -> torch.Tensor:
    """The loss written out: mean(softplus(f) − y·f), f = x·w + b."""
    return linear_bce(theta, X, Y)


def smallest_eigenvalue(theta: torch.Tensor, block: slice = slice(None)) -> float:
    return float(torch.linalg.eigvalsh(dense_hessian(bce, theta)[block, block])[0])


def adam(start: torch.Tensor, steps: int) -> torch.Tensor:
    """Full-batch Adam, lr 1e-2, PyTorch's default betas: the search's training, written out."""
    theta = start.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        bce(theta).backward()
        opt.step()
    return theta.detach()


@pytest.fixture  # per test, not per module: mutmut credits a test with the calls its own fixtures make
def fruitless():
    """The report of a search of the whole budget (and of each group's own), with its progress lines."""
    messages: list[str] = []
    report = check_convexity(logistic_problem(), at=AT, seed=SEED, budget=BUDGET, train_steps=TRAIN_STEPS, progress=messages.append)
    return report, messages


def test_every_documented_starting_point_is_searched_at_every_scale(fruitless):
    report, _ = fruitless
    s = report.search
    restarts = [child_seed(SEED, "restarts", k) for k in (1, 2)]
    assert report.verdict == "no violation found" and report.witness is None and report.proof is None
    assert s.centers == (
        "the analysis point", "θ = 0", f"init seed {restarts[0]}", f"init seed {restarts[1]}",
        "trained from the analysis point", f"trained from init seed {restarts[0]}",
    )
    # the random and symmetric chords at λ = 1/4, 1/2, 3/4; the chord between the two trained points at 0.1 … 0.9
    assert s.scales == SCALES and s.lambdas == tuple(sorted({*LAMBDAS, 0.1, 0.25, 0.5, 0.75, 0.9}))


def test_the_counts_add_up_and_a_fruitless_search_spends_its_budget(fruitless):
    s = fruitless[0].search
    assert set(s.by_strategy) == {"random chords", "symmetric chords", "chords between trained points"}  # λ_min > 0: no curvature chords
    assert s.chords == sum(s.by_strategy.values())
    assert 0.7 * BUDGET <= s.chords <= BUDGET  # half around the starting points, a quarter around the trained ones
    assert s.nonfinite_chords == 0
    assert s.best_relative_gap < 0  # a strictly convex loss: every chord lies above it, none is extrapolated
    assert re.fullmatch(r"(random|symmetric) chords at scale [0-9.]+ around .+", s.best_where)


def test_the_smallest_hessian_eigenvalues_are_the_dense_hessians_at_the_named_points(fruitless):
    s = fruitless[0].search
    s1 = child_seed(SEED, "restarts", 1)
    start_1 = logistic_problem().init(s1)
    points = {
        "the analysis point": AT_THETA,
        "trained from the analysis point": adam(AT_THETA, TRAIN_STEPS),
        f"trained from init seed {s1}": adam(start_1, TRAIN_STEPS),
    }
    assert [name for name, _ in s.curvature] == list(points)
    for name, value in s.curvature:
        assert value == pytest.approx(smallest_eigenvalue(points[name]), rel=1e-9), name
    assert s.hvps == 3 * len(s.curvature)  # p = 3 ≤ 30: each Hessian is assembled from p products


def test_each_group_is_searched_at_the_same_point_with_a_quarter_of_the_budget(fruitless):
    report, messages = fruitless
    assert set(report.by_group) == {"lin.weight", "lin.bias"}
    for g, block in (("lin.weight", slice(0, 2)), ("lin.bias", slice(2, 3))):
        part = report.by_group[g]
        assert part.groups == (g,) and part.seed == SEED and part.by_group == {}
        assert part.verdict == "no violation found"
        assert 0.7 * (BUDGET // 4) <= part.search.chords <= BUDGET // 4
        where, value = part.search.curvature[0]
        assert where == "the analysis point" and value == pytest.approx(smallest_eigenvalue(AT_THETA, block), rel=1e-9)
        assert f"group {g}: chords at scale 0.01 around the analysis point (0 of {BUDGET // 4} tried)" in messages
        assert f"group {g}: training from the analysis point ({TRAIN_STEPS // 3} Adam steps)" in messages
    assert messages[0] == f"chords at scale 0.01 around the analysis point (0 of {BUDGET} tried)"
    assert f"training from the analysis point ({TRAIN_STEPS} Adam steps)" in messages


def test_the_chord_between_two_nearby_trained_points_is_named_where_it_is_the_largest_gap():
    """After 1000 Adam steps both starts are near the minimiser: the short chord between them lies closest to the loss."""
    s = check_convexity(logistic_problem(), at=AT, seed=SEED, budget=360, train_steps=1000, by_group=False).search
    assert s.best_where == "chords between trained points"  # no trailing space from the empty place
    assert s.by_strategy["chords between trained points"] > 0 and s.chords == sum(s.by_strategy.values()) <= 360


def test_a_small_budget_gives_each_group_thirty_chords_at_most():
    messages: list[str] = []
    report = check_convexity(logistic_problem(), at=AT, budget=120, train_steps=0, progress=messages.append)
    for g, part in report.by_group.items():
        assert part.search.chords <= 30
        assert f"group {g}: chords at scale 0.01 around the analysis point (0 of 30 tried)" in messages


def test_the_json_and_the_explanation_say_what_the_log_holds(fruitless):
    report, _ = fruitless
    s = report.search
    payload = json.loads(json.dumps(report.to_dict()))
    assert set(payload) == {"verdict", "problem", "groups", "explanation", "proof", "witness", "search", "seed", "by_group"}
    assert payload["verdict"] == "no violation found" and payload["proof"] is None and payload["witness"] is None
    assert payload["problem"] == logistic_problem().describe() and payload["problem"].startswith("Module(Untraced")
    assert payload["groups"] == ["lin.weight", "lin.bias"] and payload["seed"] == SEED
    assert payload["explanation"] == report.explanation()
    assert payload["search"] == {
        "chords": s.chords,
        "nonfinite_chords": 0,
        "by_strategy": dict(s.by_strategy),
        "centers": list(s.centers),
        "scales": list(SCALES),
        "lambdas": [0.1, 0.25, 0.5, 0.75, 0.9],
        "smallest_hessian_eigenvalues": [{"where": w, "value": v} for w, v in s.curvature],
        "hessian_vector_products": s.hvps,
        "largest_relative_gap": s.best_relative_gap,
        "largest_gap_where": s.best_where,
    }
    assert set(payload["by_group"]) == {"lin.weight", "lin.bias"}
    assert payload["by_group"]["lin.bias"]["seed"] == SEED and payload["by_group"]["lin.bias"]["by_group"] == {}
    counts = ", ".join(f"{k}: {v}" for k, v in s.by_strategy.items())
    assert report.explanation() == (
        f"no violation found in {{lin.weight, lin.bias}}: {s.chords} chords ({counts}) around 6 points at scales 0.01–100; "
        f"the largest relative gap seen was {s.best_relative_gap:.2g}. This is not a proof of convexity."
    )


def test_a_witness_is_explained_with_its_own_numbers():
    x, y = data.cubic(60, seed=0)
    problem = Problem(TwoLayer(1, 8, "tanh"), x, y)
    report = check_convexity(problem, budget=300, train_steps=0, by_group=False)
    w = report.witness
    assert report.verdict == "non-convex" and report.by_group == {}
    assert re.fullmatch(r"(random|symmetric) chords at scale [0-9.]+ around (the analysis point|θ = 0|init seed \d+)", w.source)
    la, lb, lm = (float(two_layer_tanh_mse(t, x, y, 8)) for t in (w.a, w.b, w.lam * w.a + (1 - w.lam) * w.b))
    chord = w.lam * la + (1 - w.lam) * lb
    found = re.fullmatch(
        r"non-convex in \{W, b, v\} \(certified\): at λ=(\S+) between two points found by (.+), L\(λa\+\(1−λ\)b\) = (\S+) exceeds "
        r"the chord λL\(a\)\+\(1−λ\)L\(b\) = (\S+) by (\S+) \(rounding bound (\S+)\); witness\.verify\(problem\) re-checks it in float64\.",
        report.explanation(),
    )
    assert found, report.explanation()
    assert float(found[1]) == w.lam and found[2] == w.source
    assert float(found[3]) == pytest.approx(lm, rel=1e-5) and float(found[4]) == pytest.approx(chord, rel=1e-5)
    assert float(found[5]) == pytest.approx(lm - chord, rel=1e-2) and float(found[6]) == pytest.approx(w.bound, rel=0.05)
    payload = report.to_dict()
    assert payload["witness"] == w.to_dict() and payload["search"]["chords"] == report.search.chords


def test_a_proof_is_in_the_json_and_the_explanation():
    x, y = data.cubic(60, seed=0)
    report = check_convexity(Problem(TwoLayer(1, 8, "tanh"), x, y), groups=["v"])
    payload = report.to_dict()
    assert report.verdict == "convex" and payload["proof"] == report.proof.to_dict() and payload["proof"]["rule"]
    assert payload["search"] is None and payload["by_group"] == {}
    assert report.explanation() == f"convex in {{v}} (proven by {report.proof.rule}): {report.proof.statement}."


def test_the_documented_defaults_budget_4000_and_300_training_steps():
    messages: list[str] = []

    class Enough(Exception):
        pass

    def stop_at_training(message: str) -> None:
        messages.append(message)
        if message.startswith("training from"):
            raise Enough

    with pytest.raises(Enough):
        check_convexity(logistic_problem(), at=AT, progress=stop_at_training)
    assert messages[0] == "chords at scale 0.01 around the analysis point (0 of 4000 tried)"
    assert messages[-1] == "training from the analysis point (300 Adam steps)"


def test_one_group_or_by_group_false_gives_no_parts():
    problem = logistic_problem()
    one = check_convexity(problem, "lin.bias", at=AT, budget=30, train_steps=0)  # a single name as a str
    assert one.groups == ("lin.bias",) and one.by_group == {}
    assert check_convexity(problem, at=AT, budget=30, train_steps=0, by_group=False).by_group == {}
    mlp = Problem(MLP([2, 3, 3], "tanh"), *data.gaussian_classes(20), loss="cross_entropy")
    assert check_convexity(mlp, "W1").groups == ("W1",)  # a name of two characters is one name


@pytest.fixture
def three_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield
    torch.set_num_threads(before)


def test_threads_cover_the_whole_analysis_and_every_group(three_threads):
    seen: list[tuple[str, int]] = []
    check_convexity(logistic_problem(), at=AT, budget=120, train_steps=0, threads=2,
                    progress=lambda m: seen.append((m, torch.get_num_threads())))
    assert any(m.startswith("group ") for m, _ in seen) and any(not m.startswith("group ") for m, _ in seen)
    assert {n for _, n in seen} == {2}
    assert torch.get_num_threads() == 3


@pytest.mark.parametrize("groups", [torch.zeros(3), [0, 1]])
def test_a_point_in_place_of_the_groups_is_refused_with_the_fix(groups):
    kind = type(groups).__name__
    with pytest.raises(LosslabError) as info:
        check_convexity(logistic_problem(), groups)
    assert str(info.value) == (
        f"expected groups as names among ['lin.weight', 'lin.bias'] (or None for all), got {kind}; pass the point as at=θ"
    )


def test_an_overflowing_analysis_point_is_refused_before_the_search():
    big = torch.tensor([1e308, 1e308, 0.0], dtype=DT)
    with pytest.raises(LosslabError) as info:
        check_convexity(logistic_problem(), at=big, budget=30)
    assert isinstance(info.value, NonFiniteError)  # the one kind every overflow raises
    message = str(info.value)
    assert re.match(r"expected a finite loss at the analysis point, got (inf|nan) at θ with ‖θ‖ = 1\.41e\+308, max \|θ_i\| = 1e\+308: ",
                    message), message
    assert message.endswith("the model or loss overflows there; pass a smaller at= (evaluate at a smaller θ, or rescale the model or "
                            "data so the loss stays below 1e308)")
