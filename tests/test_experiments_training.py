"""Tests for experiments 11–13 (sigmoid-mlp, regularization, gd-vs-sgd) and fit.ensemble.

The experiments' numbers are checked against references that share no code with them: losses
written out by hand in float64, dense Hessians from ``torch.func.hessian`` of those losses with
NumPy's ``eigvalsh``, finite differences, exact expectations over every dropout mask, brute force
over the symmetries of a small network, and single ``fit.train`` runs.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from losslab import LosslabError, Problem
from losslab import data as D
from losslab.experiments import get_experiment
from losslab.experiments._minima import canonical_two_layer, cluster_values
from losslab.experiments.gd_vs_sgd import mcnemar_z
from losslab.experiments.regularization import dropout_closed_form
from losslab.experiments.sigmoid_mlp import backprop, well_data
from losslab.fit import train
from losslab.fit.ensemble import train_ensemble
from losslab.models import MLP, TwoLayer

from _helpers import assert_evidence_shows_values
from references import dense_eigenvalues, dense_gradient

F64 = torch.float64
NAMES = ("sigmoid-mlp", "regularization", "gd-vs-sgd")
# Claims the theory predicts (all but gd-vs-sgd's last two, empirical questions decided by their numbers).
PREDICTED = {
    "sigmoid-mlp": ("backprop-equals-autograd", "minima-at-different-heights", "tied-starts-reach-saddles"),
    "regularization": ("l2-shifts-eigenvalues-by-2-lambda", "large-lambda-locally-convex", "no-lambda-globally-convex",
                       "dropout-is-l2-penalty"),
    "gd-vs-sgd": ("several-minima", "best-level-one-network-up-to-symmetry"),
}


# ---- hand-written losses (no Problem, no model classes) ---------------------------------------------
def sigmoid_mlp_loss(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, h: int, l2: float) -> torch.Tensor:
    """mean (W1·σ(W0x + b0) + b1 − y)² + l2‖θ‖², θ = [W0 (h), b0 (h), W1 (h), b1 (1)] for d_in = 1."""
    W0, b0, W1, b1 = theta[:h], theta[h:2 * h], theta[2 * h:3 * h], theta[3 * h]
    out = torch.sigmoid(X[:, :1] * W0 + b0) @ W1 + b1
    return ((out - y) ** 2).mean() + l2 * (theta**2).sum()


def tanh_net_loss(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, h: int, l2: float) -> torch.Tensor:
    """mean (v·tanh(wx + b) − y)² + l2‖θ‖², θ = [w (h), b (h), v (h)] for d_in = 1."""
    w, b, v = theta[:h], theta[h:2 * h], theta[2 * h:3 * h]
    return ((torch.tanh(X[:, :1] * w + b) @ v - y) ** 2).mean() + l2 * (theta**2).sum()


# ---- every experiment ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_predicted_claims_hold_and_evidence_has_numbers(quick_result, name):
    result = quick_result(name)
    for key in PREDICTED[name]:
        assert result.claim(key).holds, result.claim(key).evidence
    for c in result.claims:
        assert_evidence_shows_values(c)
        if any(word in c.evidence for word in ("Lanczos", "McNemar", "bound")):  # specialist evidence comes with a plain sentence
            assert c.plain, c.key
    assert result.figures and all(f.png is None or len(f.png) < 150_000 for f in result.figures)


BAD_SETTINGS = [
    ("sigmoid-mlp", {"width": 1}, r"expected width to be an integer >= 2 \(hidden units h\), got width=1"),
    ("sigmoid-mlp", {"l2": 0.0}, r"expected l2 to be a finite number > 0 .*, got l2=0.0"),
    ("sigmoid-mlp", {"lr": "-1"}, r"expected lr to be a finite number > 0 .*, got lr=-1.0"),
    ("sigmoid-mlp", {"starts": "many"}, r"expected starts to be an integer >= 2 .*, got starts='many'"),
    ("regularization", {"keep_prob": 1.0}, r"expected keep_prob to be a finite number > 0 and < 1 .*, got keep_prob=1.0"),
    ("regularization", {"lambdas": (0.1,)}, r"expected lambdas to be 2 or more finite numbers >= 0 .*, got lambdas=\(0.1,\)"),
    ("regularization", {"lambdas": "0,-1"}, r"expected lambdas to be .*, got lambdas=\(0.0, -1.0\)"),
    ("regularization", {"masks": 10}, r"expected masks to be an integer >= 100 .*, got masks=10"),
    ("gd-vs-sgd", {"batch_size": 32}, r"expected batch_size < n \(else SGD is GD\), got batch_size=32, n=32"),
    ("gd-vs-sgd", {"starts": 5}, r"expected starts to be an integer >= 10 .*, got starts=5"),
    ("gd-vs-sgd", {"lr": "nan"}, r"expected lr to be a finite number > 0 .*, got lr=nan"),
]


@pytest.mark.parametrize(("name", "overrides", "match"), BAD_SETTINGS)
def test_bad_settings_are_rejected(name, overrides, match):
    with pytest.raises(LosslabError, match=match):
        get_experiment(name).make_settings(overrides=overrides)


# ---- sigmoid-mlp ----------------------------------------------------------------------------------
def test_backprop_matches_central_differences():
    X, y = well_data(10)
    model, l2 = MLP([1, 3, 1], "sigmoid"), 0.01
    params = {k: v + 0.5 for k, v in model.init(seed=4).items()}
    hand = torch.cat([g.reshape(-1) for g in backprop(params, X, y, l2).values()])
    theta = torch.cat([p.reshape(-1) for p in params.values()])  # W0, b0, W1, b1: the order of the hand loss
    h, eps = 3, 1e-6
    fd = torch.stack([
        (sigmoid_mlp_loss(theta + eps * e, X, y, h, l2) - sigmoid_mlp_loss(theta - eps * e, X, y, h, l2)) / (2 * eps)
        for e in torch.eye(len(theta), dtype=F64)
    ])
    torch.testing.assert_close(hand, fd, rtol=0, atol=1e-8)


def test_the_mlp_is_the_two_layer_net_with_output_bias():
    X, _ = well_data(9)
    mlp, net = MLP([1, 3, 1], "sigmoid"), TwoLayer(1, 3, "sigmoid", out_bias=True)
    p = mlp.init(seed=2)
    q = {"W": p["W0"], "b": p["b0"], "v": p["W1"][0], "c": p["b1"][0]}
    torch.testing.assert_close(mlp.apply(p, X), net.apply(q, X), rtol=0, atol=1e-15)


def test_critical_points_are_what_the_dense_hessian_says(quick_result):
    result = quick_result("sigmoid-mlp")
    s = result.settings
    X, y = well_data(s["n"])
    points = result.numbers["critical_points"]
    kinds = {p["kind"] for p in points}
    assert {"minimum", "saddle"} <= kinds
    for p in points:
        theta = torch.as_tensor(p["theta"], dtype=F64)

        def loss(t):
            return sigmoid_mlp_loss(t, X, y, s["width"], s["l2"])

        assert float(loss(theta)) == pytest.approx(p["loss"], rel=1e-12)
        assert float(dense_gradient(loss, theta).norm()) <= 10 * s["grad_tol"]
        ev = dense_eigenvalues(loss, theta)
        if p["kind"] == "minimum":
            assert ev[0] > 1e-6 * abs(ev[-1])
        if p["kind"] == "saddle":
            assert ev[0] < -1e-6 * abs(ev[-1]) and ev[-1] > 0
    values = [p["loss"] for p in points]
    assert values == sorted(values) and all(b > a * (1 + 1e-6) for a, b in itertools.pairwise(values))


# ---- regularization -------------------------------------------------------------------------------
def _regularization_problem(result):
    s = result.settings
    X, y = D.cubic(s["n"], noise=s["noise"], seed=result.seed)
    theta0 = TwoLayer(1, s["width"], "tanh").init(seed=result.seed)
    return s, X, y, torch.cat([theta0["W"][:, 0], theta0["b"], theta0["v"]])


def test_lambda_min_against_a_dense_hessian(quick_result):
    result = quick_result("regularization")
    s, X, y, theta0 = _regularization_problem(result)
    assert len(s["lambdas"]) == len(result.numbers["lambda_min_init"]) > 0
    for lam, reported in zip(s["lambdas"], result.numbers["lambda_min_init"]):
        ev = dense_eigenvalues(lambda t, lam=lam: tanh_net_loss(t, X, y, s["width"], lam), theta0)
        assert reported == pytest.approx(float(ev[0]), abs=1e-10 * (abs(float(ev[-1])) + 1))


def test_constructed_chord_is_recomputed_and_the_curvature_formula_is_negative(quick_result):
    result = quick_result("regularization")
    s, X, y, _ = _regularization_problem(result)
    h, beta, ybar = s["width"], math.atanh(math.sqrt(2 / 3)), float(y.mean())
    assert len(s["lambdas"]) == len(result.numbers["witnesses"]) > 0
    for lam, w in zip(s["lambdas"], result.numbers["witnesses"]):
        t = -math.copysign(max(1.0, 2 * math.sqrt(3 * lam)), ybar)
        center = torch.zeros(3 * h, dtype=F64)
        center[h], center[2 * h] = beta, t
        step = torch.zeros(3 * h, dtype=F64)
        step[h] = s["chord_half_width"]
        L = [float(tanh_net_loss(c, X, y, h, lam)) for c in (center + step, center - step, center)]
        gap = L[2] - (L[0] + L[1]) / 2
        assert gap == pytest.approx(w["gap"], rel=1e-9)
        assert gap > 0 and w["holds"]
        # d²L/db₀² at the centre, in closed form: t²(tanh²)'' − 2tȳ·tanh'' + 2λ with (tanh²)''(β) = −2/3
        T = math.tanh(beta)
        second = t * t * 2 * (1 - T * T) * (1 - 3 * T * T) - 2 * t * ybar * (-2 * T * (1 - T * T)) + 2 * lam
        assert second < 0


def test_dropout_closed_form_is_the_exact_expectation_over_all_masks():
    g = torch.Generator().manual_seed(0)
    n, h, p = 3, 2, 0.7
    phi, v, y = (torch.randn(*shape, generator=g, dtype=F64) for shape in ((n, h), (h,), (n,)))
    expected = 0.0
    for bits in itertools.product((0.0, 1.0), repeat=n * h):
        M = torch.tensor(bits, dtype=F64).reshape(n, h)
        weight = p ** M.sum().item() * (1 - p) ** (n * h - M.sum().item())
        expected += weight * float(((y - (M * phi / p) @ v) ** 2).mean())
    plain, closed = dropout_closed_form(phi, v, y, p)
    assert closed == pytest.approx(expected, rel=1e-12)
    assert plain == pytest.approx(float(((y - phi @ v) ** 2).mean()), rel=1e-14)


# ---- gd-vs-sgd ------------------------------------------------------------------------------------
def test_canonical_form_identifies_every_permuted_and_sign_flipped_copy():
    net = TwoLayer(2, 3, "tanh")
    base = net.init(seed=7)
    X = torch.randn(5, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    copies = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            sgn = torch.tensor(signs, dtype=F64)
            idx = list(perm)
            copy = {"W": base["W"][idx] * sgn[:, None], "b": base["b"][idx] * sgn, "v": base["v"][idx] * sgn}
            torch.testing.assert_close(net.apply(copy, X), net.apply(base, X), rtol=0, atol=1e-14)
            copies.append(copy)
    assert len(copies) == 48
    batched = {k: torch.stack([c[k] for c in copies]) for k in base}
    canon = canonical_two_layer(net, batched)
    assert torch.equal(canon, canon[:1].expand_as(canon))
    assert len({tuple(torch.cat([c["W"].reshape(-1), c["b"], c["v"]]).tolist()) for c in copies}) == 48
    other = {k: v[None] for k, v in net.init(seed=8).items()}
    assert float((canonical_two_layer(net, other)[0] - canon[0]).norm()) > 0.1


@pytest.mark.parametrize(
    ("optimizer", "batch_size", "minibatches"), [("gd", None, "per-start"), ("sgd", 5, "per-start"), ("sgd", 5, "shared")]
)
def test_an_ensemble_run_is_fit_train_alone(optimizer, batch_size, minibatches):
    X, y = D.sine(17, seed=3)
    problem = Problem(TwoLayer(1, 3, "tanh"), X, y, l2=1e-3)
    seeds = [4, 9, 13]
    runs = train_ensemble(problem, seeds=seeds, optimizer=optimizer, lr=0.1, steps=60, batch_size=batch_size,
                          minibatches=minibatches, record_every=20)
    for k, seed in enumerate(seeds):
        alone = train(problem, optimizer=optimizer, lr=0.1, steps=60, batch_size=batch_size,
                      seed=seed if minibatches == "per-start" else seeds[0], theta0=problem.init(seed))
        torch.testing.assert_close(runs.theta[k], alone.theta, rtol=0, atol=1e-12)
        at = torch.searchsorted(alone.loss_steps, runs.steps)  # train records sgd's full-batch loss on its schedule only
        assert torch.equal(alone.loss_steps[at], runs.steps)
        torch.testing.assert_close(runs.losses[:, k], alone.losses[at], rtol=1e-12, atol=0)
    assert runs.steps.tolist() == [0, 20, 40, 60] and not runs.diverged.any()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"optimizer": "adam", "seeds": [0]}, "optimizer"),
    ({"seeds": []}, "seeds"),
    ({}, "seeds"),
    ({"theta0": torch.zeros(2, 5, dtype=F64)}, "theta0"),
    ({"theta0": torch.zeros(2, 9, dtype=F64), "seeds": [1]}, "one seed per start"),
    ({"seeds": [0], "optimizer": "gd", "batch_size": 4}, "full-batch"),
])
def test_train_ensemble_rejects_bad_input(kwargs, match):
    X, y = D.sine(10, seed=0)
    with pytest.raises(LosslabError, match=match):
        train_ensemble(Problem(TwoLayer(1, 3, "tanh"), X, y), **kwargs)


def test_loss_levels_are_minima_of_the_dense_hessian(quick_result):
    result = quick_result("gd-vs-sgd")
    s = result.settings
    X, y = D.sine(s["n"], noise=s["noise"], frequency=s["frequency"], seed=result.seed)

    def loss(t):
        return tanh_net_loss(t, X, y, s["width"], s["l2"])

    nums = result.numbers
    assert len(nums["levels"]) == len(nums["level_kinds"]) == len(nums["level_points"]) >= 2
    for value, kind, theta in zip(nums["levels"], nums["level_kinds"], nums["level_points"]):
        theta = torch.as_tensor(theta, dtype=F64)
        assert float(loss(theta)) == pytest.approx(value, rel=1e-12)
        if kind == "minimum":
            assert dense_eigenvalues(loss, theta)[0] > 0


def test_sgd_claims_are_decided_by_their_numbers(quick_result):
    result = quick_result("gd-vs-sgd")
    nums = result.numbers
    crit = {m: torch.as_tensor(v) for m, v in nums["critical"].items()}
    pol = {m: torch.as_tensor(v, dtype=F64) for m, v in nums["polished_losses"].items()}
    best = min(float(pol[m][crit[m]].min()) for m in pol)
    assert best == pytest.approx(nums["best_loss"], rel=0)
    reach = {m: pol[m] <= 1.01 * best for m in pol}
    for claim_key, other, key in (("optimiser-decides-minimum", "GD", "mcnemar"),
                                  ("sgd-noise-not-extra-steps", "GD, SGD's step count", "mcnemar_control")):
        decided = result.claim(claim_key)
        b = int((reach["SGD"] & ~reach[other]).sum())
        c = int((~reach["SGD"] & reach[other]).sum())
        z = (b - c) / math.sqrt(b + c) if b + c else 0.0
        assert z == pytest.approx(nums[key]["z"], abs=1e-12)
        assert decided.holds == (b + c >= 0.05 * s_starts(result))  # discordant starts, no direction
        assert f"z = {z:.2f}" in decided.evidence and f"{b + c} of " in decided.evidence
    assert nums["per_method"]["SGD"]["fraction_best"] == pytest.approx(float(reach["SGD"].double().mean()))


def s_starts(result) -> int:
    return int(result.settings["starts"])


def test_mcnemar_and_value_clusters_small_cases():
    assert mcnemar_z(torch.tensor([False, False]), torch.tensor([False, False])) == (0.0, 0, 0)
    z, b, c = mcnemar_z(torch.tensor([True] * 9 + [False]), torch.tensor([False] * 9 + [True]))
    assert (b, c) == (9, 1) and z == pytest.approx(8 / math.sqrt(10))
    labels, lows = cluster_values(torch.tensor([3.0, 1.0, 3.0 * (1 + 1e-9), 2.0], dtype=F64), 1e-6)
    assert labels.tolist() == [2, 0, 2, 1] and lows.tolist() == [1.0, 2.0, 3.0]
