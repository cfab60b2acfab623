"""Batched evaluation: every implementation equals Problem.loss_batch / Problem.loss; chunking changes nothing."""

from __future__ import annotations

import pytest
import torch

from losslab import LosslabError, Problem
from losslab.landscape import backend, combine, evaluate_combinations, evaluate_points, fast
from losslab.models import MLP, Polynomial, TwoLayer, layers

DT = torch.float64
NETWORK_CASES = [
    *(f"two-layer-{act}{c}" for act in ("relu", "tanh", "sigmoid", "identity") for c in ("", "-c")),
    "mlp-relu",
    "mlp-seed-relu-relu",
    "mlp-cross-entropy",
    "mlp-deep-linear",
]


def points(prob: Problem, K: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (prob.to(DT).init(0) + torch.randn(K, prob.n_params, generator=g, dtype=DT)).to(prob.dtype)


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    return float(((got.to(DT) - want.to(DT)).abs() / want.to(DT).abs()).max())


def test_evaluate_points_equals_loss(case):
    prob = case.problem()
    Theta = points(prob, 7)
    got = evaluate_points(prob, Theta)
    want = torch.stack([prob.loss(t) for t in Theta])
    assert got.shape == (7,) and got.dtype == DT and not got.requires_grad
    assert rel_err(got, want) <= 1e-12
    assert evaluate_points(prob, Theta[:0]).shape == (0,)


@pytest.mark.parametrize("name", NETWORK_CASES)
@pytest.mark.parametrize("how", ["layers", "layers per point", "per point"])
def test_implementations_equal_loss_batch(make_case, monkeypatch, name, how):
    monkeypatch.setattr(fast, "BATCH_ACTIVATIONS", 200)  # several chunks
    case = make_case(name)
    full = case.problem(l2=0.05)
    groups = full.groups
    problems = [full, full.restrict(groups[:1], at=case.params(1)), full.restrict(groups[-2:], at=case.params(1))]
    for prob in problems:
        assert fast.layer_spec(prob) is not None
        for dtype, tol in ((DT, 1e-12), (torch.float32, 1e-6)):
            p = prob.to(dtype)
            Theta = points(p, 23)
            got = evaluate_points(p, Theta, implementation=how)
            assert got.dtype == dtype and got.shape == (23,)
            assert rel_err(got, p.loss_batch(Theta)) <= tol, (prob.groups, dtype)


def test_backend_is_chosen_by_size(make_case, monkeypatch):
    assert backend(make_case("two-layer-tanh").problem()) == "layers"
    assert backend(make_case("mlp-relu").problem()) == "layers"
    assert backend(make_case("torch-module").problem()) == "layers"
    assert backend(make_case("poly-2d-deg2").problem()) == "vmap"
    assert backend(make_case("linearized-two-layer").problem()) == "vmap"
    X = torch.rand(300, 1, dtype=DT)
    assert backend(Problem(TwoLayer(1, 1000), X, X[:, 0])) == "layers per point"
    monkeypatch.setattr(fast, "PER_POINT_MIN_ACTIVATIONS", 10)
    prob = make_case("mlp-relu").problem()
    assert backend(prob) == "layers per point"
    Theta = points(prob, 5)
    assert rel_err(evaluate_points(prob, Theta), prob.loss_batch(Theta)) <= 1e-12


def test_explicit_implementations_are_validated(make_case):
    poly = make_case("poly-2d-deg2").problem()
    assert backend(poly, "vmap") == "vmap" and backend(poly, "per point") == "per point"
    with pytest.raises(LosslabError, match=r"unknown implementation 'fast': expected one of 'auto', 'layers'"):
        backend(poly, "fast")
    with pytest.raises(LosslabError, match=r"expected a model that declares a layer spec .* for implementation='layers', got Polynomial"):
        evaluate_points(poly, points(poly, 2), implementation="layers")
    Theta = points(poly, 6)
    assert rel_err(evaluate_points(poly, Theta, implementation="per point"), poly.loss_batch(Theta)) <= 1e-12


def test_combine_is_the_elementwise_formula():
    g = torch.Generator().manual_seed(0)
    base, V, C = torch.randn(6, generator=g, dtype=DT), torch.randn(2, 6, generator=g, dtype=DT), torch.randn(4, 2, generator=g, dtype=DT)
    out = combine(C, V, base)
    for k in range(4):
        assert torch.equal(out[k], base + C[k, 0] * V[0] + C[k, 1] * V[1])
        assert torch.equal(combine(C, V)[k], C[k, 0] * V[0] + C[k, 1] * V[1])


@pytest.mark.parametrize("model", [TwoLayer(2, 5, "tanh"), Polynomial(2, 3), MLP([2, 4, 1], "relu")])
def test_evaluate_combinations_is_independent_of_chunking(model):
    g = torch.Generator().manual_seed(1)
    X = torch.rand(20, 2, generator=g, dtype=DT)
    big, small = Problem(model, X, X[:, 0]), Problem(model, X, X[:, 0])
    small = small.with_memory_budget(1)  # one point per chunk (a Problem refuses a budget below one point at construction)
    center = big.init(0)
    V = torch.randn(2, big.n_params, generator=g, dtype=DT)
    C = torch.randn(37, 2, generator=g, dtype=DT)
    one = evaluate_combinations(big, C, V, center)
    many = evaluate_combinations(small, C, V, center)
    assert rel_err(many, one) <= 1e-12
    assert rel_err(one, torch.stack([big.loss(p) for p in combine(C, V, center)])) <= 1e-12


def test_evaluate_points_bad_shape(make_case):
    prob = make_case("two-layer-tanh").problem()
    with pytest.raises(LosslabError, match=r"expected Theta of shape \(\*, 16\), got shape \(3, 15\)"):
        evaluate_points(prob, torch.zeros(3, 15))


@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("how", ["layers", "layers per point"])
def test_layer_kernels_with_a_sigmoid_link(loss, how):
    g = torch.Generator().manual_seed(2)
    X = torch.rand(15, 2, generator=g, dtype=DT) * 2 - 1
    y = (X[:, 0] > 0).to(DT)
    prob = Problem(MLP([2, 4, 3, 1], "tanh", out_activation="sigmoid"), X, y, loss, l2=0.01)
    Theta = 3 * points(prob, 9)  # large logits: bce must use the logit, not log σ
    assert rel_err(evaluate_points(prob, Theta, implementation=how), prob.loss_batch(Theta)) <= 1e-12


@pytest.mark.parametrize("d_in", [1, 3, 6])
def test_layer_kernels_for_any_input_width(d_in):
    g = torch.Generator().manual_seed(3)
    X = torch.rand(31, d_in, generator=g, dtype=DT) * 2 - 1
    y = torch.sin(3 * X.sum(1))
    for model in (TwoLayer(d_in, 7, "tanh", out_bias=True), MLP([d_in, 5, 4, 1], "tanh"), MLP([d_in, 1], "tanh")):
        for dtype, tol in ((DT, 1e-12), (torch.float32, 1e-6)):
            prob = Problem(model, X, y, l2=0.01).to(dtype)
            Theta = points(prob, 19)
            want = prob.loss_batch(Theta)
            for how in ("layers", "layers per point"):
                assert rel_err(evaluate_points(prob, Theta, implementation=how), want) <= tol, (model, dtype, how)


def test_numpy_tanh_matches_torch_tanh():
    special = torch.tensor([0.0, -0.0, float("inf"), -float("inf")], dtype=DT)
    x = torch.cat([torch.randn(1000, dtype=DT) * s for s in (1e-30, 1e-3, 1, 10, 1e3)] + [special])
    for dtype, ulps in ((DT, 2), (torch.float32, 2)):
        h = x.to(dtype).clone()
        layers._tanh_(h)
        want = torch.tanh(x.to(dtype))
        assert torch.equal(h[-4:], want[-4:])
        assert bool(((h - want).abs() <= ulps * torch.finfo(dtype).eps * want.abs()).all())
    nan = torch.tensor([float("nan")])
    layers._tanh_(nan)
    assert bool(nan.isnan().all())
