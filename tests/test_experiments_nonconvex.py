"""Experiments 7–10 (two-layer, depth, sigmoid-loss, relu-surface): where non-convexity appears.

Each experiment's quick run at seed 0 is computed once (the ``quick_result`` fixture). Its claims must
hold (theory predicts them), and the numbers behind them are recomputed here independently: witness
gaps from hand-written forwards (plain torch, NumPy or Python ``max(0, ·)``), Hessians and Gauss–Newton
matrices from ``torch.func.hessian``/``jacrev`` of a hand-written loss, least squares with NumPy,
second differences and dead-relu counts by brute force.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from losslab import LosslabError, data
from losslab.experiments import get_experiment, run_experiment
from losslab.experiments.base import jsonable
from losslab.experiments.relu_surface import largest_grid_chord
from losslab.models import MLP, RandomFeatures, TwoLayer

from _helpers import assert_evidence_shows_values
from references import dense_hessian, dense_jacobian

DT = torch.float64
NAMES = ("two-layer", "depth", "sigmoid-loss", "relu-surface")
FIGURES = {
    "two-layer": {"slices", "surface"},
    "depth": {"spectrum"},
    "sigmoid-loss": {"planes", "chord"},
    "relu-surface": {"contour", "surface-3d"},
}


def chord_gap_by_hand(loss, a, b, lam: float) -> tuple[float, float, float, float]:
    """(gap, L(a), L(b), L(middle)) of a loss written by hand, in float64."""
    a, b = torch.as_tensor(a, dtype=DT), torch.as_tensor(b, dtype=DT)
    la, lb, lm = float(loss(a)), float(loss(b)), float(loss(lam * a + (1 - lam) * b))
    return lm - lam * la - (1 - lam) * lb, la, lb, lm


# ---- every experiment -------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_claim_holds_with_numbers_in_its_evidence(quick_result, name):
    r = quick_result(name)
    assert r.claims
    for c in r.claims:
        assert c.holds, f"{name}: {c.statement}: {c.evidence}"
        assert_evidence_shows_values(c)
    json.dumps(r.to_dict())  # JSON-able


@pytest.mark.parametrize("name", NAMES)
def test_figures_are_small_and_well_formed(quick_result, name):
    r = quick_result(name)
    assert {f.name for f in r.figures} == FIGURES[name]
    for f in r.figures:
        assert f.caption
        if f.png is not None:
            assert f.png.startswith(b"\x89PNG") and len(f.png) <= 150_000
        else:
            assert json.loads(f.plotly_json)["data"]


BAD_SETTINGS = [
    ("two-layer", {"width": 0}, "width"),
    ("two-layer", {"activation": "softplus"}, "activation"),
    ("two-layer", {"steps": 200}, "expected steps to be an integer >= 5 and <= 81"),
    ("two-layer", {"lr": "-1"}, "lr"),
    ("two-layer", {"budget": 10}, "budget"),
    ("depth", {"widths": "2,16,2"}, "expected widths to end with 1 (one output unit), got widths=(2, 16, 2)"),
    ("depth", {"widths": "2,1"}, "expected widths to be 3 or more integers >= 1 (comma-separated) (the MLP's layer widths: d_in, hidden"),
    ("depth", {"linear_widths": "3,4,1"}, "expected linear_widths[0] == widths[0] (the same d_in), got linear_widths=(3, 4, 1)"),
    ("depth", {"probes": 0}, "expected probes to be an integer >= 1"),
    ("sigmoid-loss", {"span": 0}, "span"),
    ("sigmoid-loss", {"n": 1}, "n"),
    ("sigmoid-loss", {"scale": "nan"}, "scale"),
    ("relu-surface", {"x": 0}, "x != 0"),
    ("relu-surface", {"y": -1}, "expected y to be a finite number > 0"),
    ("relu-surface", {"steps": 3}, "steps"),
    ("relu-surface", {"unknown": 1}, "unknown setting"),
]


@pytest.mark.parametrize(("name", "overrides", "match"), BAD_SETTINGS)
def test_bad_settings_are_clear_errors(name, overrides, match):
    with pytest.raises(LosslabError, match=re.escape(match)):
        get_experiment(name).make_settings(overrides=overrides)


def test_same_seed_same_numbers(quick_result):
    again = run_experiment(get_experiment("relu-surface"), seed=0, quick=True)
    assert jsonable(again.numbers) == jsonable(quick_result("relu-surface").numbers)


# ---- 7. two-layer -----------------------------------------------------------------------------


def test_two_layer_witness_recomputed_by_hand(quick_result):
    r = quick_result("two-layer")
    s, w = r.settings, r.numbers["witness"]
    X, y = data.cubic(s["n"], noise=s["noise"], seed=0)
    h = s["width"]

    def loss(theta):  # v·tanh(Wx + b), groups W (h, 1), b (h,), v (h,) in that order
        W, b, v = theta[:h].reshape(h, 1), theta[h : 2 * h], theta[2 * h :]
        return ((torch.tanh(X @ W.T + b) @ v - y) ** 2).mean()

    gap, *_ = chord_gap_by_hand(loss, w["a"], w["b"], w["lam"])
    assert gap == pytest.approx(w["gap"], rel=1e-9)
    assert gap > w["bound"] > 0
    joint = r.claim("not-convex-jointly")
    assert joint.holds and joint.values["gap"] == pytest.approx(gap, rel=1e-9) and joint.values["lam"] == w["lam"]
    assert r.claim("convex-in-v").values["rule"] == r.numbers["proof_rule"] == "affine model ∘ loss convex in the output"
    a, b = np.array(w["a"]), np.array(w["b"])
    assert not np.array_equal(a[: 2 * h], b[: 2 * h])  # the chord moves the hidden layer, not only v
    assert r.numbers["by_group"] == {"W": "non-convex", "b": "non-convex", "v": "convex"}


def test_two_layer_random_features_minimum_matches_numpy_lstsq(quick_result):
    r = quick_result("two-layer")
    s = r.settings
    X, y = data.cubic(s["n"], noise=s["noise"], seed=0)
    init = TwoLayer(1, s["width"], s["activation"]).init(seed=0)
    phi = np.tanh(X.numpy() @ init["W"].numpy().T + init["b"].numpy())
    coef, *_ = np.linalg.lstsq(phi, y.numpy(), rcond=None)
    # tanh features of a 1-D input are nearly collinear (κ(Φ) ≈ 2e11): two float64 solvers agree on the minimum to ~1e-6
    assert r.numbers["rf_least_squares_loss"] == pytest.approx(np.mean((phi @ coef - y.numpy()) ** 2), rel=1e-5)
    start = np.mean((phi @ init["v"].numpy() - y.numpy()) ** 2)  # both runs start at the net's initial point
    assert r.numbers["net_initial_loss"] == pytest.approx(start, rel=1e-12)
    assert r.numbers["rf_least_squares_loss"] <= r.numbers["rf_trained_loss"]  # convex: the closed form is the global minimum
    h11, h12, h22 = r.numbers["rf_slice"]["coefficients"][3:]
    assert h11 >= 0 and h22 >= 0 and h11 * h22 - h12**2 >= -1e-12 * max(h11, h22) ** 2
    bowl = r.claim("random-features-slice-convex")
    assert bowl.values["hmin"] == pytest.approx(np.linalg.eigvalsh([[h11, h12], [h12, h22]])[0], rel=1e-12)


def test_two_layer_slices_hold_their_grids_and_violations(quick_result):
    r = quick_result("two-layer")
    s, m = r.settings, r.measured
    for grid, key in ((m.net_plane, "net_slice"), (m.rf_plane, "rf_slice")):
        assert grid.losses.shape == (s["steps"], s["steps"])
        assert torch.allclose(grid.alphas, torch.linspace(-s["span"], s["span"], s["steps"], dtype=DT), rtol=0, atol=1e-15)
        assert len(grid.locations) == r.numbers[key]["violations"]
    assert m.net_trained_loss == pytest.approx(float(m.net_plane.losses[s["steps"] // 2, s["steps"] // 2]), rel=1e-12)  # the centre
    net = r.claim("net-slice-not-convex")
    assert net.values["violations"] == len(m.net_plane.locations) > 0
    a, b = net.values["a"], net.values["b"]
    assert float(m.net_plane.locations.sub(torch.tensor([a, b], dtype=DT)).abs().sum(1).min()) <= 1e-12  # the worst is a red dot


# ---- 8. depth ---------------------------------------------------------------------------------


def _mlp_loss(widths, activation, X, y):
    """A hand-written MLP loss of a flat θ (groups W0, b0, W1, b1, … in order) and its output function."""
    act = {"tanh": torch.tanh, "identity": lambda z: z}[activation]
    shapes = [s for i in range(len(widths) - 1) for s in ((widths[i + 1], widths[i]), (widths[i + 1],))]

    def output(theta):
        h, k = X, 0
        for layer in range(len(widths) - 1):
            (o, i), _ = shapes[2 * layer], shapes[2 * layer + 1]
            W = theta[k : k + o * i].reshape(o, i)
            b = theta[k + o * i : k + o * i + o]
            k += o * i + o
            h = h @ W.T + b
            if layer < len(widths) - 2:
                h = act(h)
        return h[:, 0]

    return (lambda theta: ((output(theta) - y) ** 2).mean()), output


def test_depth_curvature_against_dense_torch_func_hessian(quick_result):
    r = quick_result("depth")
    s = r.settings
    X, y = data.teacher(s["n"], d_in=s["widths"][0], width=s["teacher_width"], noise=s["noise"], seed=0)
    loss, output = _mlp_loss(list(s["widths"]), s["activation"], X, y)
    init = MLP(list(s["widths"]), s["activation"]).init(seed=0)
    theta = torch.cat([init[g].reshape(-1) for g in init])
    H = dense_hessian(loss, theta)
    J = dense_jacobian(output, theta)
    G = 2 / len(y) * J.T @ J  # Gauss–Newton of the mean squared error
    ratio = float(torch.linalg.norm(H - G) / torch.linalg.norm(H))
    at_init = r.numbers["mlp_init"]
    assert at_init["ratio"] == pytest.approx(ratio, rel=1e-8)
    assert r.claim("curvature-term-sizeable").values["ratio"] == pytest.approx(ratio, rel=1e-8)
    eig = torch.linalg.eigvalsh(H)
    assert float(eig[0]) < 0 and r.claim("negative-curvature-at-init").holds
    assert abs(float(eig[0]) - at_init["min"]) <= at_init["min_bound"] + 1e-10 * float(eig.abs().max())
    assert abs(float(eig[-1]) - at_init["max"]) <= at_init["max_bound"] + 1e-10 * float(eig.abs().max())
    assert float(torch.linalg.eigvalsh(G)[0]) >= -1e-12 * float(eig.abs().max())  # the GGN part is PSD


def test_depth_witnesses_recomputed_by_hand(quick_result):
    r = quick_result("depth")
    s = r.settings
    X, y = data.teacher(s["n"], d_in=s["widths"][0], width=s["teacher_width"], noise=s["noise"], seed=0)
    for key, widths, act in (("mlp_witness", s["widths"], s["activation"]), ("deep_linear_witness", s["linear_widths"], "identity")):
        w = r.numbers[key]
        loss, _ = _mlp_loss(list(widths), act, X, y)
        gap, la, lb, lm = chord_gap_by_hand(loss, w["a"], w["b"], w["lam"])
        assert gap == pytest.approx(w["gap"], rel=1e-9)
        assert [la, lb, lm] == pytest.approx(w["losses"], rel=1e-12)
        assert gap > w["bound"]


def test_depth_deep_linear_net_is_linear_in_x_and_fixed_features_have_h_equal_ggn(quick_result):
    r = quick_result("depth")
    s = r.settings
    X, y = data.teacher(s["n"], d_in=s["widths"][0], width=s["teacher_width"], noise=s["noise"], seed=0)
    init = MLP(list(s["linear_widths"]), "identity").init(seed=0)
    layers = len(s["linear_widths"]) - 1
    A, c = np.eye(s["widths"][0]), np.zeros(s["widths"][0])
    for i in range(layers):
        W, b = init[f"W{i}"].numpy(), init[f"b{i}"].numpy()
        A, c = W @ A, W @ c + b
    _, output = _mlp_loss(list(s["linear_widths"]), "identity", X, y)
    f = output(torch.cat([init[g].reshape(-1) for g in init])).numpy()
    assert np.max(np.abs(f - (X.numpy() @ A.T + c)[:, 0])) <= 1e-12 * np.max(np.abs(f))
    assert r.numbers["deep_linear_defect"] <= 1e-12

    features = RandomFeatures(s["widths"][0], s["widths"][1], s["activation"], seed=0)  # RandomFeatures(seed=seed), as the experiment
    phi = features.features(X)
    H = dense_hessian(lambda v: ((phi @ v - y) ** 2).mean(), features.init(seed=0)["v"])
    G = 2 / len(y) * phi.T @ phi
    assert torch.allclose(H, G, rtol=0, atol=1e-12 * float(G.abs().max()))
    rf = r.numbers["fixed_features"]["random features"]
    assert rf["nonlinear_fro"] == 0.0
    assert abs(float(torch.linalg.eigvalsh(G)[0]) - rf["min"]) <= rf["min_bound"] + 1e-10 * float(G.abs().max())


# ---- 9. sigmoid-loss --------------------------------------------------------------------------


def _sigmoid_data(r):
    s = r.settings
    return data.logistic_labels(s["n"], d_in=s["d_in"], scale=s["scale"], seed=0)


def test_sigmoid_mse_witness_recomputed_with_plain_torch(quick_result):
    r = quick_result("sigmoid-loss")
    X, y = _sigmoid_data(r)
    w = r.numbers["witness"]

    def mse(theta):  # σ(w·x + c), squared error averaged by hand
        p = torch.sigmoid(X @ theta[:-1] + theta[-1])
        return ((p - y) ** 2).sum() / len(y)

    gap, la, lb, lm = chord_gap_by_hand(mse, w["a"], w["b"], w["lam"])
    assert gap == pytest.approx(w["gap"], rel=1e-9)
    assert [la, lb, lm] == pytest.approx(w["losses"], rel=1e-12)
    assert gap > w["bound"] > 0
    assert lm > w["lam"] * la + (1 - w["lam"]) * lb


def test_sigmoid_plateau_gradients_by_hand(quick_result):
    r = quick_result("sigmoid-loss")
    X, y = _sigmoid_data(r)
    theta = torch.tensor(r.numbers["far_point"], dtype=DT)
    Z = torch.cat([X, torch.ones(len(y), 1, dtype=DT)], dim=1)  # d/dθ of z = w·x + c is (x, 1)
    p = torch.sigmoid(Z @ theta)
    grad_bce = ((p - y)[:, None] * Z).mean(0)
    grad_mse = (2 * (p - y) * p * (1 - p))[:, None].mul(Z).mean(0)
    got = r.numbers["far_grad_norm"]
    assert got["bce"] == pytest.approx(float(grad_bce.norm()), rel=1e-10)
    assert got["mse"] == pytest.approx(float(grad_mse.norm()), rel=1e-10)
    assert got["mse"] < 0.1 * got["bce"]
    plateau = r.claim("squared-loss-plateau")
    assert plateau.values["gm"] == got["mse"] and plateau.values["gb"] == got["bce"]
    assert plateau.values["lm"] == pytest.approx(float(((p - y) ** 2).mean()), rel=1e-12)


def test_sigmoid_plane_second_differences_by_hand(quick_result):
    r = quick_result("sigmoid-loss")
    s = r.settings
    X, y = _sigmoid_data(r)
    x = X.numpy()[:, 0]
    grid = s["span"] * np.linspace(-1, 1, s["steps"])
    W, C = np.meshgrid(grid, grid, indexing="ij")
    z = W[..., None] * x + C[..., None]  # d_in = 1: the plane is the whole (w, c) space
    mse = ((1 / (1 + np.exp(-z)) - y.numpy()) ** 2).mean(-1)
    bce = (np.logaddexp(0.0, z) - y.numpy() * z).mean(-1)  # −y log σ(z) − (1 − y) log(1 − σ(z)), stably
    step = grid[1] - grid[0]

    def second_differences(L):
        along_w = (L[:-2] - 2 * L[1:-1] + L[2:]) / step**2
        along_c = (L[:, :-2] - 2 * L[:, 1:-1] + L[:, 2:]) / step**2
        return np.concatenate([along_w.ravel(), along_c.ravel()])

    assert second_differences(mse).min() == pytest.approx(r.numbers["mse_most_negative"], rel=1e-6)
    assert second_differences(bce).min() >= -1e-9
    assert r.numbers["plane_violations"]["bce"] == 0 < r.numbers["plane_violations"]["mse"]
    planes = r.measured.planes  # the drawn grids are the losses by hand; the red dots are the violations
    np.testing.assert_allclose(planes["mse"].losses.numpy(), mse, rtol=1e-12)
    np.testing.assert_allclose(planes["bce"].losses.numpy(), bce, rtol=1e-9)  # σ then log: ~1e-11 from the stable form
    assert [len(planes[k].locations) for k in ("bce", "mse")] == [0, r.numbers["plane_violations"]["mse"]]
    claim = r.claim("plane-second-differences")
    assert (claim.values["bv"], claim.values["mv"]) == (0, r.numbers["plane_violations"]["mse"])
    assert claim.values["worst"] == pytest.approx(second_differences(mse).min(), rel=1e-6)


# ---- 10. relu-surface -------------------------------------------------------------------------


def _relu_loss(w0, b0, w1, b1, x, y):
    """(relu(w1·relu(w0·x + b0) + b1) − y)² in plain Python."""
    return (max(0.0, w1 * max(0.0, w0 * x + b0) + b1) - y) ** 2


def test_relu_witnesses_recomputed_by_hand(quick_result):
    r = quick_result("relu-surface")
    s = r.settings
    grid = r.numbers["grid_witness"]  # (w0, w1), λ = 1/2, biases fixed
    (a0, a1), (b0_, b1_) = grid["a"], grid["b"]
    la = _relu_loss(a0, s["b0"], a1, s["b1"], s["x"], s["y"])
    lb = _relu_loss(b0_, s["b0"], b1_, s["b1"], s["x"], s["y"])
    lm = _relu_loss((a0 + b0_) / 2, s["b0"], (a1 + b1_) / 2, s["b1"], s["x"], s["y"])
    assert [la, lb, lm] == pytest.approx(grid["losses"], rel=1e-12, abs=1e-30)
    assert lm - (la + lb) / 2 == pytest.approx(grid["gap"], rel=1e-12) and grid["gap"] > grid["bound"]
    on_grid = r.claim("grid-chord").values
    assert [on_grid["la"], on_grid["lb"], on_grid["lm"]] == pytest.approx([la, lb, lm], rel=1e-12, abs=1e-30)

    engine = r.numbers["engine_witness"]  # every parameter: (w0, b0, w1, b1)
    lam = engine["lam"]
    ends = [_relu_loss(*p, s["x"], s["y"]) for p in (engine["a"], engine["b"])]
    mid = [lam * u + (1 - lam) * v for u, v in zip(engine["a"], engine["b"])]
    gap = _relu_loss(*mid, s["x"], s["y"]) - lam * ends[0] - (1 - lam) * ends[1]
    assert gap == pytest.approx(engine["gap"], rel=1e-12) and gap > engine["bound"]
    assert r.claim("engine-chord").values["gap"] == pytest.approx(gap, rel=1e-12)
    assert engine["a"][1] == engine["b"][1] == s["b0"] and engine["a"][3] == engine["b"][3] == s["b1"]  # biases held fixed


def test_relu_dead_regions_and_valley_by_brute_force(quick_result):
    r = quick_result("relu-surface")
    s = r.settings
    k = s["steps"]
    coords = [s["span"] * (2 * i - (k - 1)) / (k - 1) for i in range(k)]
    dead = 0
    for da in coords:
        for db in coords:
            w0, w1 = s["w0"] + da, s["w1"] + db
            h = w0 * s["x"] + s["b0"]
            out = w1 * max(0.0, h) + s["b1"]
            if h <= 0 or out <= 0:
                dead += 1
            if h < -1e-3 or out < -1e-3:  # strictly inside a dead region: moving (w0, w1) a little changes nothing
                here = _relu_loss(w0, s["b0"], w1, s["b1"], s["x"], s["y"])
                for e0, e1 in ((1e-6, 0.0), (0.0, 1e-6), (-1e-6, 0.0), (0.0, -1e-6)):
                    assert _relu_loss(w0 + e0, s["b0"], w1 + e1, s["b1"], s["x"], s["y"]) == here
    assert r.numbers["dead_points"] == dead and r.numbers["grid_points"] == k * k
    assert r.claim("dead-relu-flat").values["dead"] == dead and r.claim("dead-relu-flat").values["total"] == k * k
    losses = r.measured.surface.losses  # the drawn grid, by hand (offsets from the centre)
    assert losses[0, 0] == _relu_loss(s["w0"] + coords[0], s["b0"], s["w1"] + coords[0], s["b1"], s["x"], s["y"])
    assert r.numbers["dead_max_grad"] == 0.0
    w0 = s["w0"] + s["span"] * 0.5
    w1 = (s["y"] - s["b1"]) / (w0 * s["x"] + s["b0"])
    assert _relu_loss(w0, s["b0"], w1, s["b1"], s["x"], s["y"]) <= 1e-28  # on the valley
    assert r.numbers["valley_max_loss"] <= 1e-28
    valley = r.measured.valley
    assert max(_relu_loss(float(a), s["b0"], float(b), s["b1"], s["x"], s["y"]) for a, b in valley) <= 1e-28
    curve = r.claim("zero-loss-curve").values
    (a0, a1), (b0, b1) = valley[0].tolist(), valley[-1].tolist()
    assert curve["count"] == len(valley) and curve["mid"] == _relu_loss((a0 + b0) / 2, s["b0"], (a1 + b1) / 2, s["b1"], s["x"], s["y"])


def test_largest_grid_chord_matches_brute_force():
    g = torch.Generator().manual_seed(5)
    L = torch.rand(7, 7, generator=g, dtype=DT) ** 3
    L[2, 3] = L[4, 5] = 0.0  # a pair of zero-loss ends: the relative gap 1 is reached
    top, a, b, m = largest_grid_chord(L)
    Ln = L.numpy()
    best_rel, best_gap = -math.inf, -math.inf
    pts = [(i, j) for i in range(7) for j in range(7)]
    rels = {}
    for p in pts:
        for q in pts:
            if p < q and (p[0] + q[0]) % 2 == 0 and (p[1] + q[1]) % 2 == 0:
                mid = Ln[(p[0] + q[0]) // 2, (p[1] + q[1]) // 2]
                ends = (Ln[p] + Ln[q]) / 2
                if mid + ends > 0:
                    rels[p, q] = ((mid - ends) / (mid + ends), mid - ends)
                    best_rel = max(best_rel, rels[p, q][0])
    best_gap = max(gap for rel, gap in rels.values() if rel >= best_rel - 1e-9)
    assert top == pytest.approx(best_rel, abs=1e-15)
    assert m == ((a[0] + b[0]) // 2, (a[1] + b[1]) // 2)
    assert Ln[m] - (Ln[a] + Ln[b]) / 2 == pytest.approx(best_gap, abs=1e-15)
