"""The verdict engine: proofs where theory has them, float64 witnesses where it does not.

Every witness is re-checked here by an independent recomputation of the chord gap in float64
(not through ``chord_gap``); every proof is cross-checked by a chord search that must find no
violation; numerical curvature is checked against the dense ``torch.func.hessian``.
"""

from __future__ import annotations

import json

import pytest
import torch

from losslab import LosslabError, Problem, check_convexity, data
from losslab.convexity import chord_gap, prove_convex
from losslab.convexity.chords import ChordSearch, random_pairs, symmetric_pairs
from losslab.convexity.hessian import smallest_eigenpair
from losslab.convexity.symmetry import symmetry_pairs
from losslab.fit import train
from losslab.models import MLP, Linear, Linearized, Module, Polynomial, RandomFeatures, TwoLayer

from _helpers import Untraced, assert_certified
from references import dense_eigenvalues, dense_hessian

DT = torch.float64


def cubic(n=60, seed=0):
    return data.cubic(n, seed=seed)


def labels(n=60, seed=0):
    return data.logistic_labels(n, seed=seed)


def independent_gap(problem: Problem, a: torch.Tensor, b: torch.Tensor, lam: float) -> float:
    full = problem.full().to(DT)
    with torch.no_grad():
        la, lb, lm = (float(full.loss(t)) for t in (a, b, lam * a + (1 - lam) * b))
    return lm - lam * la - (1 - lam) * lb


def assert_outputs_affine(problem: Problem, seed: int = 0) -> None:
    """The model's outputs are affine in the analysed groups, checked here along far-apart chords (the proof's premise)."""
    g = torch.Generator().manual_seed(seed)
    p64 = problem.to(DT)
    batch = next(iter(p64.batches()))

    def logit(theta):
        return p64.model.logit(p64.unflatten(theta), batch.inputs)

    for scale in (1.0, 100.0):
        a, b = (scale * torch.randn(p64.n_params, generator=g, dtype=DT) for _ in range(2))
        fa, fb, fm = logit(a), logit(b), logit(0.3 * a + 0.7 * b)
        size = 1 + max(float(fa.abs().max()), float(fb.abs().max()))
        assert float((fm - 0.3 * fa - 0.7 * fb).abs().max()) <= 1e-12 * size


CONVEX = {
    "polynomial + mse": lambda: (Problem(Polynomial(1, 3), *cubic()), None),
    "polynomial 2-D + mse + l2": lambda: (
        Problem(Polynomial(2, 2), torch.rand(30, 2, dtype=DT), torch.rand(30, dtype=DT), l2=0.1), None
    ),
    "random features + mse": lambda: (Problem(RandomFeatures(1, 16, "tanh"), *cubic()), None),
    "linear + bce on logits": lambda: (Problem(Linear(2), *labels(), loss="bce"), None),
    "logistic regression (sigmoid + bce)": lambda: (Problem(Linear(2, "sigmoid"), *labels(), loss="bce"), None),
    "two-layer relu in v": lambda: (Problem(TwoLayer(1, 8, "relu"), *cubic()), ["v"]),
    "two-layer tanh in v": lambda: (Problem(TwoLayer(1, 8, "tanh"), *cubic()), ["v"]),
    "two-layer tanh in (v, c)": lambda: (Problem(TwoLayer(1, 6, "tanh", out_bias=True), *cubic()), ["v", "c"]),
    "MLP last layer + cross-entropy": lambda: (
        Problem(MLP([2, 4, 3], "tanh"), *data.gaussian_classes(40), loss="cross_entropy"), ["W1", "b1"]
    ),
    "linearized two-layer": lambda: (Problem(Linearized(TwoLayer(1, 6, "tanh"), TwoLayer(1, 6, "tanh").init(seed=3)), *cubic()), None),
}

NONCONVEX = {
    "sigmoid + mse": lambda: (Problem(Linear(2, "sigmoid"), *labels(), loss="mse"), None),
    "two-layer relu": lambda: (Problem(TwoLayer(1, 8, "relu"), *cubic()), None),
    "two-layer tanh": lambda: (Problem(TwoLayer(1, 8, "tanh"), *cubic()), None),
    "seed relu(w1·relu(w0x+b0)+b1)": lambda: (Problem(MLP([1, 1, 1], "relu", out_activation="relu"), [[1.0]], [1.0]), None),
    "deep linear": lambda: (Problem(MLP([1, 2, 2, 1], "identity"), *cubic()), None),
    "two-layer tanh in W": lambda: (Problem(TwoLayer(1, 8, "tanh"), *cubic()), ["W"]),
}


@pytest.mark.parametrize("name", CONVEX)
def test_convex_cases_are_proven_and_no_chord_contradicts_the_proof(name):
    problem, groups = CONVEX[name]()
    report = check_convexity(problem, groups=groups, budget=200)
    assert report.verdict == "convex"
    assert report.proof is not None and report.witness is None
    analysed = problem if groups is None else problem.restrict(groups, at=problem.init(0))
    assert_outputs_affine(analysed)  # the proof's premise, checked here (prove_convex raises on its own check)
    search = ChordSearch(analysed.to(DT), budget=3000)
    g = torch.Generator().manual_seed(1)
    for center in (analysed.init(0), torch.zeros(analysed.n_params, dtype=DT)):
        assert search.evaluate(*random_pairs(center, (0.1, 1.0, 10.0), 60, g), "random", "") is None
        assert search.evaluate(*symmetric_pairs(center, (0.01, 1.0), 60, g), "symmetric", "") is None
    assert search.tried > 1000
    assert search.best_relative_gap < 1e-9  # a convex function's chords lie above it, to rounding


@pytest.mark.parametrize("name", NONCONVEX)
def test_nonconvex_cases_have_witnesses_that_reverify_in_float64(name):
    problem, groups = NONCONVEX[name]()
    report = check_convexity(problem, groups=groups, budget=1000, train_steps=50)
    assert report.verdict == "non-convex"
    w = report.witness
    assert report.proof is None and w is not None
    check = w.verify(problem)
    assert check.holds and check.gap > check.bound > 0
    assert_certified(problem, w)
    assert independent_gap(problem, w.a, w.b, w.lam) == pytest.approx(w.gap, rel=1e-9)
    assert independent_gap(problem, w.a, w.b, w.lam) > 0
    if groups is not None:  # a and b differ only in the analysed groups
        pa, pb = w.params(problem)
        for g in problem.model.groups:
            assert torch.equal(pa[g], pb[g]) == (g not in groups)


def test_two_layer_is_convex_in_v_alone_and_non_convex_jointly():
    problem = Problem(TwoLayer(1, 8, "relu"), *cubic())
    report = check_convexity(problem, budget=600, train_steps=0)
    assert report.verdict == "non-convex"
    assert set(report.by_group) == {"W", "b", "v"}
    assert report.by_group["v"].verdict == "convex" and report.by_group["W"].verdict == "non-convex"
    assert_certified(problem, report.by_group["W"].witness)


def test_a_traced_affine_module_is_proven_convex():
    problem = Problem(Module(torch.nn.Linear(2, 1).double()), torch.rand(20, 2, dtype=DT), torch.rand(20, dtype=DT))
    report = check_convexity(problem, budget=300, train_steps=20)
    assert report.verdict == "convex" and "traced graph" in report.proof.statement


def test_a_module_without_a_proof_is_never_called_convex_even_when_it_is_affine():
    problem = Problem(Module(Untraced(2)), torch.rand(20, 2, dtype=DT), torch.rand(20, dtype=DT))
    assert problem.model.trace_note
    report = check_convexity(problem, budget=300, train_steps=20)
    assert report.verdict == "no violation found"
    assert report.proof is None and report.witness is None
    s = report.search
    assert s.chords > 0 and s.chords <= 300 + 5 * 2
    assert {"random chords", "symmetric chords"} <= set(s.by_strategy)
    assert s.curvature and all(v > -1e-8 for _, v in s.curvature)  # a convex quadratic: no negative curvature
    assert s.hvps > 0
    assert "not a proof" in report.explanation()


def test_piecewise_linear_model_with_zero_second_derivative_is_not_proven_convex():
    """relu(w)·x has d²f/dw² = 0 almost everywhere, yet (relu(w) − 1)² is not convex."""

    class ReluWeight(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor([0.5], dtype=DT))

        def forward(self, x):
            return torch.relu(self.w) * x

    problem = Problem(Module(ReluWeight(), d_in=1), [[1.0]], [1.0])
    assert prove_convex(problem) is None
    report = check_convexity(problem, budget=300)
    assert report.verdict == "non-convex"
    assert_certified(problem, report.witness)


def test_chord_gap_never_certifies_a_convex_quadratic_or_rounding_noise():
    problem = Problem(Polynomial(1, 3), *cubic())
    a, b = problem.init(1), problem.init(2)
    for lam in (0.1, 0.5, 0.9):
        check = chord_gap(problem, a, b, lam)
        assert not check.holds and check.gap <= 0
    same = chord_gap(problem, a, a.clone(), 0.5)
    assert not same.holds and abs(same.gap) <= same.bound


def test_chord_gap_certifies_a_double_well():
    """L(w) = (w² − 1)²: a = −1, b = 1 are minima with L = 0, the midpoint w = 0 has L = 1."""

    class Square(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor(0.3, dtype=DT))

        def forward(self, x):
            return self.w**2 * x[:, 0]

    problem = Problem(Module(Square(), d_in=1), [[1.0]], [1.0])
    check = chord_gap(problem, torch.tensor([-1.0], dtype=DT), torch.tensor([1.0], dtype=DT), 0.5)
    assert check.holds and check.gap == pytest.approx(1.0, abs=1e-15)
    value, direction, _ = smallest_eigenpair(problem, torch.tensor([0.0], dtype=DT))
    assert value == pytest.approx(-4.0, abs=1e-12)  # L''(0) = −4
    assert abs(float(direction[0])) == pytest.approx(1.0)


def test_smallest_eigenpair_matches_dense_hessian():
    problem = Problem(TwoLayer(2, 5, "tanh"), torch.rand(30, 2, dtype=DT), torch.rand(30, dtype=DT))
    theta = problem.init(4)
    value, vector, count = smallest_eigenpair(problem, theta)
    H = dense_hessian(problem.loss, theta)
    assert value == pytest.approx(float(torch.linalg.eigvalsh(H)[0]), abs=1e-8)
    assert torch.allclose(H @ vector, value * vector, atol=1e-6)
    assert 0 < count < 10 * problem.n_params


def test_negative_curvature_at_the_deep_linear_saddle_gives_a_witness():
    """At θ = 0 the deep linear net has a saddle (the product of weights is bilinear)."""
    X, y = cubic()
    problem = Problem(MLP([1, 1, 1], "identity"), X, y)
    zero = torch.zeros(problem.n_params, dtype=DT)
    value, direction, _ = smallest_eigenpair(problem, zero)
    assert value < 0
    assert value == pytest.approx(float(dense_eigenvalues(problem.loss, zero)[0]), abs=1e-10)
    h = 1e-2
    check = chord_gap(problem, zero + h * direction, zero - h * direction, 0.5)
    assert check.holds
    assert check.gap == pytest.approx(-value * h**2 / 2, rel=1e-2)  # second difference ≈ λ_min h² / 2 below the chord


def test_symmetry_pairs_have_equal_loss_and_their_midpoint_is_worse_at_a_trained_net():
    X, y = cubic()
    problem = Problem(TwoLayer(1, 6, "tanh"), X, y)
    theta = train(problem, optimizer="adam", lr=1e-2, steps=400, seed=0).theta
    pairs = symmetry_pairs(problem, theta, torch.Generator().manual_seed(0))
    names = [n for n, _, _ in pairs]
    assert any("permute" in n for n in names) and any("flip" in n for n in names)
    certified = 0
    for _name, a, b in pairs:
        assert float(problem.loss(a)) == pytest.approx(float(problem.loss(b)), rel=1e-12)
        assert not torch.equal(a, b)
        certified += chord_gap(problem, a, b, 0.5).holds
    assert certified >= 1


def test_symmetries_that_move_fixed_groups_are_skipped_in_a_restricted_problem():
    problem = Problem(TwoLayer(1, 6, "tanh"), *cubic()).restrict(["v"])
    assert symmetry_pairs(problem, problem.init(0), torch.Generator().manual_seed(0)) == []


def test_same_seed_same_witness_and_json_round_trip():
    problem = Problem(TwoLayer(1, 8, "tanh"), *cubic())
    r1 = check_convexity(problem, seed=3, budget=400)
    r2 = check_convexity(problem, seed=3, budget=400)
    assert torch.equal(r1.witness.a, r2.witness.a) and r1.witness.gap == r2.witness.gap
    payload = json.loads(json.dumps(r1.to_dict()))
    a, b = (torch.tensor(payload["witness"][k], dtype=DT) for k in ("a", "b"))
    assert chord_gap(problem, a, b, payload["witness"]["lam"]).holds
    assert payload["verdict"] == "non-convex" and payload["by_group"]["v"]["verdict"] == "convex"


def test_l2_penalty_is_part_of_the_proof():
    report = check_convexity(Problem(Polynomial(1, 2), *cubic(), l2=0.5))
    assert report.verdict == "convex" and "0.5·‖θ‖²" in report.proof.statement


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"groups": ["Q"]}, r"expected groups among \['W', 'b', 'v'\], got \['Q'\]"),
        ({"groups": []}, r"expected groups among"),
        ({"budget": 5}, r"expected budget to be an integer >= 30, got budget=5"),
        ({"train_steps": -1}, r"expected train_steps to be an integer >= 0"),
        ({"at": torch.zeros(3)}, r"expected at of shape \(24,\), got shape \(3,\)"),
    ],
)
def test_bad_input_to_check_convexity(kwargs, match):
    problem = Problem(TwoLayer(1, 8), *cubic())
    with pytest.raises(LosslabError, match=match):
        check_convexity(problem, **kwargs)


def test_check_convexity_rejects_a_non_problem():
    with pytest.raises(LosslabError, match=r"expected a losslab\.Problem, got TwoLayer"):
        check_convexity(TwoLayer(1, 4))


def test_a_wrapped_module_is_analysed_at_its_own_weights():
    net = torch.nn.Sequential(torch.nn.Linear(1, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)).double()
    problem = Problem(Module(net), *cubic())
    own = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    assert torch.equal(problem.default_theta(), own)
    assert not torch.equal(problem.init(0), own)  # init(seed) re-initialises a copy
    report = check_convexity(problem, groups=["2.weight"])  # the last layer: affine, proven from the traced graph
    assert report.verdict == "convex" and report.proof.groups == ("2.weight",)
    assert_outputs_affine(problem.restrict(["2.weight"]))


def test_a_float32_problem_is_searched_in_float32_and_certified_in_float64():
    X, y = cubic()
    problem = Problem(TwoLayer(1, 8, "tanh"), X.float(), y.float())
    messages = []
    report = check_convexity(problem, budget=400, train_steps=20, progress=messages.append)
    assert problem.dtype == torch.float32 and report.verdict == "non-convex"
    assert report.witness.a.dtype == DT
    assert_certified(problem, report.witness)
    assert independent_gap(problem, report.witness.a, report.witness.b, report.witness.lam) > report.witness.bound
    assert any("chords at scale" in m and not m.startswith("group ") for m in messages)


def test_progress_reports_every_stage_of_an_exhaustive_search():
    problem = Problem(Module(Untraced(2)), torch.rand(20, 2, dtype=DT), torch.rand(20, dtype=DT))
    messages = []
    check_convexity(problem, budget=120, train_steps=5, progress=messages.append)
    text = "\n".join(messages)
    for stage in ("chords at scale", "training from", "smallest Hessian eigenvalue", "group lin.weight:", "group lin.bias:"):
        assert stage in text, stage


def test_a_flat_direction_does_not_crash_the_search():
    """A zero-initialised output layer makes the loss flat in the first layer: Lanczos sees H·v = 0."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    torch.nn.init.zeros_(net[2].weight)
    problem = Problem(Module(net), *cubic(30))
    report = check_convexity(problem, budget=200, train_steps=5)
    assert report.verdict == "non-convex"
    assert_certified(problem, report.witness)
    assert report.by_group["0.weight"].verdict in ("no violation found", "non-convex")


def test_a_small_budget_is_reported_honestly():
    problem = Problem(TwoLayer(1, 8, "tanh"), *cubic())
    report = check_convexity(problem, budget=30, train_steps=0, by_group=False)
    s = report.search if report.search else None
    if report.verdict == "no violation found":
        assert s.chords <= 30
    else:
        assert_certified(problem, report.witness)
    full = check_convexity(Problem(Module(Untraced(1)), *cubic()), budget=30, train_steps=0, by_group=False)
    s = full.search
    assert s.chords <= 30
    assert s.centers == ("the analysis point",)  # only where chords were evaluated
    assert len(s.scales) < 9  # the scales actually tried, not all of them


def test_chord_gap_certifies_nothing_from_overflow_or_subnormal_losses():
    problem = Problem(Linear(2), [[1.0, 1.0]], [0.0])
    a = torch.tensor([1e39, -1e39, 0.0], dtype=DT)
    b = a.clone()
    b[1] = torch.nextafter(b[1], torch.tensor(0.0, dtype=DT))
    assert not chord_gap(problem, a, b, 0.5).holds  # float32 overflows: the bound is unknown, so infinite
    tiny = Problem(Linear(1), [[1.0]], [0.0])
    check = chord_gap(tiny, torch.tensor([1.54e-162, 0.0], dtype=DT), torch.tensor([3.17e-162, 0.0], dtype=DT), 0.75)
    assert not check.holds  # subnormal losses: relative rounding means nothing


def test_verify_refuses_chords_outside_the_problem():
    problem = Problem(TwoLayer(1, 6, "tanh"), *cubic())
    w = check_convexity(problem, budget=300, train_steps=0, by_group=False).witness
    assert_certified(problem, w)
    import dataclasses

    assert not dataclasses.replace(w, lam=2.0).verify(problem).holds
    assert not dataclasses.replace(w, lam=0.0).verify(problem).holds
    restricted = problem.restrict(["v"], at=w.a)
    refused = w.verify(restricted)  # the joint witness moves W and b, which the restricted problem holds fixed
    assert not refused.holds and "hold" in refused.reason
    v_only = check_convexity(problem, groups=["v"])
    assert v_only.verdict == "convex"


def test_a_wrong_affine_declaration_on_a_piecewise_linear_model_is_caught():
    """relu(W1·h + b1) is not affine in (W1, b1) although its second derivative is 0 almost everywhere."""

    class WronglyDeclared(MLP):
        def __init__(self):
            super().__init__([1, 4, 1], "relu", out_activation="relu")
            self.affine_sets = (frozenset({"W1", "b1"}),)

    problem = Problem(WronglyDeclared(), *cubic())
    with pytest.raises(RuntimeError, match="declaration is wrong"):
        check_convexity(problem, groups=["W1", "b1"])


def test_bad_seed_is_an_error_not_a_silently_skipped_stage():
    problem = Problem(TwoLayer(1, 4), *cubic())
    for seed in (-1, 2**64):
        with pytest.raises(LosslabError, match=r"expected seed to be an integer in \[0, 2\*\*63 - 1\]"):
            check_convexity(problem, seed=seed)


@pytest.mark.parametrize("l2", [10.0, 100.0])
def test_l2_hides_no_violation_from_the_scaled_group_stage(l2):
    """L2 adds 2·l2 to every Hessian eigenvalue near θ0, but scaling v by ~√l2 makes the net's own curvature win."""
    from losslab.models import TwoLayer

    X, y = data.cubic(64, seed=0)
    problem = Problem(TwoLayer(1, 3, "tanh"), X, y, l2=l2)
    report = check_convexity(problem, seed=0, budget=1000, by_group=False, train_steps=0)
    assert report.verdict == "non-convex"
    assert_certified(problem, report.witness)
    assert "with v ×" in report.witness.source
    a, b, lam = report.witness.a.double(), report.witness.b.double(), report.witness.lam
    p64 = problem.to(torch.float64)
    mid = p64.loss(lam * a + (1 - lam) * b)
    assert float(mid - lam * p64.loss(a) - (1 - lam) * p64.loss(b)) > 0  # recomputed by hand
