"""Problem: the loss against hand-written references, flattening, batching, derivatives, dtypes.

Restriction to parameter groups is in test_problem_restrict.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from losslab import Problem
from losslab.models import Linear, Module, Polynomial, TwoLayer

from _helpers import gen, relclose
from references import dense_hessian

DT = torch.float64


def split(model, theta):
    """θ → params by hand: consecutive blocks in the model's group order."""
    out, start = {}, 0
    for g, s in model.shapes.items():
        size = math.prod(s)
        out[g] = theta[start : start + size].reshape(s)
        start += size
    assert start == len(theta)
    return out


def reference_loss(case, theta, l2=0.0, rows=slice(None)):
    """The training loss written with torch.nn.functional, independently of losslab.losses."""
    params = split(case.model, theta)
    out, y = case.model.apply(params, case.X[rows]), case.y[rows]
    if case.loss == "mse":
        data = F.mse_loss(out, y)
    elif case.loss == "bce" and case.model.link == "sigmoid":
        data = F.binary_cross_entropy(out, y)  # cross-entropy of the probabilities
    elif case.loss == "bce":
        data = F.binary_cross_entropy_with_logits(out, y)
    else:
        data = F.cross_entropy(out, y)
    return data + l2 * sum((p**2).sum() for p in params.values())


# ---- the loss ------------------------------------------------------------------------------------


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_loss_equals_the_reference(case, l2):
    prob = case.problem(l2=l2)
    for seed in range(2):
        theta = case.theta(prob, seed)
        got, ref = prob.loss(theta), reference_loss(case, theta, l2)
        assert got.shape == () and got.dtype == DT
        assert relclose(got, ref, 1e-12), (case.name, got.item(), ref.item())


def test_l2_adds_the_squared_norm_of_all_parameters(case):
    theta = case.theta(case.problem(), 0)
    gap = case.problem(l2=0.25).loss(theta) - case.problem().loss(theta)
    assert relclose(gap, 0.25 * (theta**2).sum(), 1e-12)


def test_loss_on_a_minibatch(case):
    prob = case.problem()
    theta = case.theta(prob, 0)
    idx = torch.tensor([0, 2, 3, 5])
    assert relclose(prob.loss(theta, indices=idx), reference_loss(case, theta, rows=idx), 1e-12)
    assert not relclose(prob.loss(theta, indices=idx), prob.loss(theta), 1e-6)


def test_zero_loss_at_an_interpolating_point():
    x = torch.linspace(-1, 1, 7, dtype=DT)
    prob = Problem(Polynomial(1, 2), x, 1 - 2 * x + 3 * x**2)
    assert prob.loss(torch.tensor([1.0, -2.0, 3.0], dtype=DT)).item() == pytest.approx(0.0, abs=1e-28)
    assert prob.loss(torch.tensor([1.0, -2.0, 2.0], dtype=DT)).item() == pytest.approx(float(((x**2) ** 2).mean()), rel=1e-14)


def test_output_is_the_model_output(case):
    prob = case.problem()
    theta = case.theta(prob, 1)
    torch.testing.assert_close(prob.output(theta), case.model.apply(split(case.model, theta), case.X), rtol=0, atol=0)
    X2 = case.X[:3] * 0.5
    torch.testing.assert_close(prob.output(theta, X2), case.model.apply(split(case.model, theta), X2), rtol=0, atol=0)


# ---- flat vectors ----------------------------------------------------------------------------------


def test_flatten_unflatten_round_trip(case):
    prob = case.problem()
    params = case.params(0)
    theta = prob.flatten(params)
    assert theta.shape == (prob.n_params,) == (case.model.n_params,)
    assert prob.groups == case.model.groups
    assert torch.equal(theta, torch.cat([params[g].reshape(-1) for g in case.model.groups]))
    back = prob.unflatten(theta)
    assert set(back) == set(params) and all(torch.equal(back[g], params[g]) for g in params)
    assert torch.equal(prob.flatten(back), theta)
    slices = prob.slices()
    assert [s.start for s in slices.values()] == sorted(s.start for s in slices.values())
    assert sum(s.stop - s.start for s in slices.values()) == prob.n_params
    for g, s in slices.items():
        assert torch.equal(theta[s], params[g].reshape(-1))
    assert torch.equal(prob.as_theta(params), theta) and torch.equal(prob.as_theta(theta.tolist()), theta)


def test_init_is_the_flattened_model_init(case):
    prob = case.problem()
    assert torch.equal(prob.init(3), prob.flatten(case.model.init(seed=3)))
    assert torch.equal(prob.init(3), prob.init(3))


# ---- the batched loss ------------------------------------------------------------------------------


def _thetas(case, prob, K, dtype):
    base = torch.stack([case.theta(prob, s) for s in range(K)])
    return base.to(dtype)


def test_loss_batch_equals_a_loop_in_float64(case):
    prob = case.problem()
    Theta = _thetas(case, prob, 7, DT)
    batch = prob.loss_batch(Theta)
    assert batch.shape == (7,) and batch.dtype == DT
    loop = torch.stack([prob.loss(t) for t in Theta])
    assert relclose(batch, loop, 1e-12), (batch - loop).abs().max()


@pytest.mark.parametrize("how", ["constructor", "to"])
def test_loss_batch_equals_a_loop_in_float32(case, how):
    prob = case.problem(dtype=torch.float32) if how == "constructor" else case.problem().to(torch.float32)
    assert prob.dtype == torch.float32 and prob.X.dtype == torch.float32
    Theta = _thetas(case, prob, 7, torch.float32)
    batch = prob.loss_batch(Theta)
    assert batch.dtype == torch.float32
    loop = torch.stack([prob.loss(t) for t in Theta])
    assert relclose(batch, loop, 1e-6), (batch - loop).abs().max()
    # and float32 is float64 to float32 accuracy
    ref = case.problem().loss_batch(Theta.to(DT))
    assert relclose(batch, ref, 1e-4)


def test_chunking_does_not_change_the_batched_loss(case, monkeypatch):
    whole = case.problem()
    K = 10
    Theta = _thetas(case, whole, K, DT)
    assert whole.chunk_size() >= K  # the default budget holds these tiny cases in one chunk
    expected = whole.loss_batch(Theta)
    per_point = case.problem().with_memory_budget(1)  # below one point (a Problem refuses that at construction)
    assert per_point.chunk_size() == 1
    for budget_points in (1, 3):
        prob = case.problem()
        prob = prob.with_memory_budget(budget_points * _bytes_per_point(prob))
        size = prob.chunk_size()
        assert 1 <= size < K
        calls = []
        monkeypatch.setattr(Problem, "_point_term", _counting(Problem._point_term, calls))  # a Problem is immutable
        got = prob.loss_batch(Theta)
        assert len(calls) == math.ceil(K / size), "loss_batch must evaluate one vmapped call per chunk"
        assert relclose(got, expected, 1e-12)


def _counting(fn, calls):
    def wrapped(*args, **kwargs):
        calls.append(1)
        return fn(*args, **kwargs)

    return wrapped


def _bytes_per_point(prob: Problem) -> int:
    """Find the smallest budget that admits 2 points, by bisection on chunk_size() (no formula assumed)."""
    lo, hi = 1, 2**40
    while lo < hi:
        mid = (lo + hi) // 2
        if prob.with_memory_budget(mid).chunk_size() >= 2:
            hi = mid
        else:
            lo = mid + 1
    return lo // 2


def test_loss_batch_of_no_points_and_of_lists():
    prob = Problem(Linear(2), torch.ones(3, 2, dtype=DT), torch.zeros(3, dtype=DT))
    assert prob.loss_batch(torch.zeros(0, 3, dtype=DT)).shape == (0,)
    got = prob.loss_batch([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    np.testing.assert_allclose(got.numpy(), [1.0, 4.0], rtol=1e-15)


# ---- derivatives -----------------------------------------------------------------------------------


def test_grad_equals_autograd_on_the_reference(case):
    prob = case.problem(l2=0.1)
    theta = case.theta(prob, 0)
    leaf = theta.clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(reference_loss(case, leaf, 0.1), leaf)
    got = prob.grad(theta)
    assert got.shape == theta.shape
    torch.testing.assert_close(got, ref, rtol=1e-11, atol=1e-13)


def test_hvp_equals_the_dense_hessian(case):
    prob = case.problem(l2=0.05)
    theta = case.theta(prob, 0)
    H = dense_hessian(prob.loss, theta)
    assert H.shape == (prob.n_params, prob.n_params)
    scale = H.abs().max().item()
    assert scale > 0
    torch.testing.assert_close(H, H.T, rtol=0, atol=1e-12 * scale)
    for seed in range(3):
        v = torch.randn(prob.n_params, generator=gen(seed), dtype=DT)
        torch.testing.assert_close(prob.hvp(theta, v), H @ v, rtol=1e-10, atol=1e-10 * scale)


def test_hvp_matches_finite_differences_of_the_reference_gradient(smooth_case):
    """Independent of torch.func: central differences of autograd's gradient of the reference loss."""
    case = smooth_case
    prob = case.problem()
    theta = case.theta(prob, 0)
    v = torch.randn(prob.n_params, generator=gen(7), dtype=DT)

    def ref_grad(t):
        leaf = t.clone().requires_grad_(True)
        return torch.autograd.grad(reference_loss(case, leaf), leaf)[0]

    h = 1e-4
    fd = (ref_grad(theta + h * v) - ref_grad(theta - h * v)) / (2 * h)
    torch.testing.assert_close(prob.hvp(theta, v), fd, rtol=1e-6, atol=1e-7)


def test_convex_quadratic_has_the_closed_form_hessian():
    """For least squares on fixed features Φ, ∇²L = (2/n) ΦᵀΦ + 2·l2·I exactly."""
    model = Polynomial(2, 2)
    X = 2 * torch.rand(15, 2, generator=gen(0), dtype=DT) - 1
    prob = Problem(model, X, torch.randn(15, generator=gen(1), dtype=DT), l2=0.2)
    Phi = model.features(X)
    H = 2 / 15 * Phi.T @ Phi + 0.4 * torch.eye(6, dtype=DT)
    theta = torch.randn(6, generator=gen(2), dtype=DT)
    for seed in range(3):
        v = torch.randn(6, generator=gen(10 + seed), dtype=DT)
        torch.testing.assert_close(prob.hvp(theta, v), H @ v, rtol=1e-12, atol=1e-13)


# ---- dtypes -------------------------------------------------------------------------------------


def test_to_float32_and_back(case):
    prob = case.problem(l2=0.1)
    theta = case.theta(prob, 0)
    p32 = prob.to(torch.float32)
    assert p32.dtype == torch.float32 and p32.X.dtype == torch.float32
    assert prob.dtype == DT and prob.X.dtype == DT, "to() must return a copy"
    got = p32.loss(theta.to(torch.float32))
    assert got.dtype == torch.float32
    assert relclose(got, prob.loss(theta), 1e-4)
    assert p32.grad(theta.to(torch.float32)).dtype == torch.float32
    assert prob.to("float64").loss(theta) == prob.loss(theta)


def test_dtype_defaults_to_the_data():
    model = Linear(1)
    assert Problem(model, torch.zeros(4, 1, dtype=torch.float32), torch.zeros(4)).dtype == torch.float32
    assert Problem(model, np.zeros((4, 1)), np.zeros(4)).dtype == DT
    assert Problem(model, [[0], [1], [2]], [0, 1, 2]).dtype == DT
    assert Problem(model, torch.zeros(4, 1, dtype=torch.float32), torch.zeros(4), dtype="float64").X.dtype == DT


def test_data_shapes_are_normalised():
    model = Linear(1)
    x = torch.linspace(0, 1, 5, dtype=DT)
    prob = Problem(model, x, x[:, None])  # (n,) inputs for d_in == 1, (n, 1) targets for a scalar model
    assert prob.X.shape == (5, 1) and prob.y.shape == (5,)
    assert prob.loss(torch.tensor([1.0, 0.0], dtype=DT)).item() == 0.0


def test_cross_entropy_accepts_integer_valued_float_labels(make_case):
    case = make_case("mlp-cross-entropy")
    prob = Problem(case.model, case.X, case.y.to(DT), "cross_entropy")
    assert prob.y.dtype == torch.int64 and torch.equal(prob.y, case.y)
    theta = case.theta(prob, 0)
    assert prob.loss(theta) == case.problem().loss(theta)


def test_describe_names_the_parts(make_case):
    case = make_case("two-layer-tanh")
    prob = case.problem(l2=0.5)
    text = prob.describe()
    assert "TwoLayer" in text and "mse" in text and "n=9" in text and f"p={prob.n_params}" in text and "0.5" in text
    assert "fixed ['W', 'b']" in prob.restrict(["v"]).describe()
    assert repr(prob).startswith("Problem(")


def test_problem_with_a_two_layer_model_reports_its_size():
    prob = Problem(TwoLayer(d_in=3, width=5, out_bias=True), torch.zeros(4, 3), torch.zeros(4))
    assert prob.n_params == 5 * 3 + 5 + 5 + 1


def test_a_float32_module_with_buffers_in_a_float64_problem():
    """A default (float32) nn.Module with BatchNorm: parameters and running statistics follow the problem dtype."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    net[1].running_mean.fill_(0.25)
    model = Module(net)
    X = 2 * torch.rand(9, 2, generator=gen(0), dtype=DT) - 1
    y = torch.randn(9, generator=gen(1), dtype=DT)
    prob = Problem(model, X, y)
    theta = prob.init(seed=2)
    assert theta.dtype == DT
    Theta = torch.stack([theta, prob.init(seed=3), 0.5 * theta])
    assert relclose(prob.loss_batch(Theta), torch.stack([prob.loss(t) for t in Theta]), 1e-12)
    H = dense_hessian(prob.loss, theta)
    v = torch.randn(prob.n_params, generator=gen(2), dtype=DT)
    torch.testing.assert_close(prob.hvp(theta, v), H @ v, rtol=1e-10, atol=1e-12)
    # the float64 loss is the float32 module's loss to float32 accuracy
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(theta.to(torch.float32), net.parameters())
        ref = torch.nn.functional.mse_loss(net.eval()(X.to(torch.float32))[:, 0], y.to(torch.float32))
    assert relclose(prob.loss(theta), ref, 1e-5)


def test_default_point_is_init_or_the_wrapped_module_own_weights(make_case):
    case = make_case("two-layer-tanh")
    prob = case.problem()
    assert torch.equal(prob.default_theta(2), prob.init(2))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)).to(DT)
    own = torch.nn.utils.parameters_to_vector(net.parameters()).detach()
    prob = Problem(Module(net), case.X, case.y)
    assert torch.equal(prob.default_theta(), own) and torch.equal(prob.default_theta(7), own)
    assert not torch.equal(prob.init(0), own)  # an integer seed re-initialises
    sub = prob.restrict(["2.weight", "2.bias"])  # other layers fixed at the module's own weights
    assert torch.equal(sub.embed(own[-4:]), own)


def test_non_finite_model_outputs_are_refused_at_construction():
    from losslab import LosslabError
    from losslab.models import Polynomial

    X = torch.linspace(-3.0, 3.0, 20, dtype=torch.float64)
    with pytest.raises(LosslabError, match=r"expected finite model outputs on X .* got \d+ NaN/inf value\(s\)"):
        Problem(Polynomial(1, 1000), X, torch.sin(X))
