"""Wrapper models: Linearized (a network's first-order expansion) and Module (any torch.nn.Module)."""

from __future__ import annotations

import doctest
import itertools

import pytest
import torch

import losslab.models
from losslab.models import Linear, Linearized, Module, Polynomial, TwoLayer

from _helpers import gen, moved, rand_X

DT = torch.float64


# ---- Linearized ------------------------------------------------------------------------------


def test_linearized_equals_the_model_at_its_expansion_point(make_case):
    case = make_case("linearized-two-layer")
    lin = case.model
    torch.testing.assert_close(lin.apply(lin.params0, case.X), lin.model.apply(lin.params0, case.X), rtol=0, atol=1e-15)
    assert lin.groups == lin.model.groups and lin.shapes == lin.model.shapes


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_linearized_agrees_with_the_model_to_first_order(activation):
    net = TwoLayer(d_in=2, width=5, activation=activation, out_bias=True)
    p0 = net.init(seed=1)
    p0["c"] = torch.tensor(0.3, dtype=DT)
    lin = Linearized(net, p0)
    X = rand_X(12, 2, seed=6)
    d = {k: torch.randn(v.shape, generator=gen(i), dtype=DT) for i, (k, v) in enumerate(p0.items())}
    # the directional derivative of the linearization is the model's, by central differences
    h = 1e-5
    fd = (net.apply(moved(p0, d, h), X) - net.apply(moved(p0, d, -h), X)) / (2 * h)
    slope = lin.apply(moved(p0, d, 1.0), X) - lin.apply(p0, X)
    torch.testing.assert_close(slope, fd, rtol=1e-8, atol=1e-8)
    # and the gap is second order: halving t divides it by 4
    gaps = [(net.apply(moved(p0, d, t), X) - lin.apply(moved(p0, d, t), X)).abs().max().item() for t in (0.02, 0.01, 0.005)]
    assert gaps[0] > 1e-6
    for big, small in itertools.pairwise(gaps):
        assert 3.6 < big / small < 4.4, gaps


def test_linearized_of_a_linear_in_parameters_model_is_the_model():
    poly = Polynomial(2, 3)
    lin = Linearized(poly, poly.init(seed=0))
    X = rand_X(10, 2, seed=7)
    for seed in range(3):
        p = poly.init(seed=seed + 1)
        torch.testing.assert_close(lin.apply(p, X), poly.apply(p, X), rtol=1e-12, atol=1e-13)


def test_linearized_keeps_the_sigmoid_link():
    model = Linear(2, output="sigmoid")
    lin = Linearized(model, model.init(seed=0))
    assert lin.link == "sigmoid"
    p, X = model.init(seed=4), rand_X(6, 2, seed=8)
    torch.testing.assert_close(lin.logit(p, X), model.logit(p, X), rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(lin.apply(p, X), model.apply(p, X), rtol=1e-13, atol=1e-14)


def test_linearized_copies_its_expansion_point():
    net = TwoLayer(d_in=1, width=3)
    p0 = net.init(seed=0)
    lin = Linearized(net, p0)
    before = lin.params0["W"].clone()
    p0["W"].add_(5.0)
    assert torch.equal(lin.params0["W"], before)


# ---- Module ----------------------------------------------------------------------------------


def _bn_net() -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3), torch.nn.Tanh(), torch.nn.Linear(3, 1)).to(DT)
    bn = net[1]
    bn.running_mean.copy_(torch.tensor([0.5, -0.2, 0.1], dtype=DT))
    bn.running_var.copy_(torch.tensor([2.0, 0.5, 1.5], dtype=DT))
    return net.train()  # handed over in train mode: Module must evaluate it in eval mode


def test_module_groups_are_the_named_parameters_and_buffers_are_fixed():
    net = _bn_net()
    model = Module(net)
    names = [k for k, _ in net.named_parameters()]
    assert list(model.groups) == names
    assert model.shapes == {k: tuple(v.shape) for k, v in net.named_parameters()}
    assert "1.running_mean" not in model.groups and "1.num_batches_tracked" not in model.groups
    assert model.d_in is None  # inputs are not guessed: any shape (n, ...)
    assert model.affine_sets == (frozenset({"3.weight", "3.bias"}),)  # proven from the traced graph
    assert Module(net, d_in=2).d_in == 2
    p = model.init()  # seed=None: the module's own parameters
    assert all(torch.equal(p[k], v) for k, v in net.named_parameters())
    X = rand_X(7, 2, seed=1)
    with torch.no_grad():
        ref = net.eval()(X)[:, 0]  # uses the running statistics
    net.train()
    torch.testing.assert_close(model.apply(p, X), ref, rtol=1e-13, atol=1e-14)
    # hand-written eval-mode batch norm, independently of torch.nn
    h = X @ p["0.weight"].T + p["0.bias"]
    mean, var = torch.tensor([0.5, -0.2, 0.1], dtype=DT), torch.tensor([2.0, 0.5, 1.5], dtype=DT)
    h = (h - mean) / torch.sqrt(var + 1e-5) * p["1.weight"] + p["1.bias"]
    torch.testing.assert_close(model.apply(p, X), (torch.tanh(h) @ p["3.weight"].T + p["3.bias"])[:, 0], rtol=1e-13, atol=1e-14)
    # applying never updates the buffers, even on a batch with other statistics
    model.apply(p, 5 * X + 3)
    torch.testing.assert_close(model.module[1].running_mean, torch.tensor([0.5, -0.2, 0.1], dtype=DT))
    torch.testing.assert_close(model.apply(p, X), ref, rtol=1e-13, atol=1e-14)


def test_module_is_a_copy_of_the_given_module():
    net = _bn_net()
    model = Module(net)
    before = model.init()
    with torch.no_grad():
        net[0].weight.add_(1.0)
        net[1].running_mean.add_(1.0)
    after = model.init()
    assert all(torch.equal(before[k], after[k]) for k in before)
    X = rand_X(5, 2, seed=2)
    ref = model.apply(before, X)
    assert torch.equal(Module(_bn_net()).apply(before, X), ref)


def test_module_output_follows_the_params_it_is_given():
    model = Module(torch.nn.Linear(3, 2).to(DT))
    w, b = torch.randn(2, 3, generator=gen(0), dtype=DT), torch.randn(2, generator=gen(1), dtype=DT)
    X = rand_X(6, 3, seed=3)
    torch.testing.assert_close(model.apply({"weight": w, "bias": b}, X), X @ w.T + b, rtol=1e-14, atol=1e-15)


# ---- the docstring examples run --------------------------------------------------------------


@pytest.mark.parametrize("module", [losslab.models.polynomial, losslab.models.two_layer, losslab.models.torch_module])
def test_docstring_examples(module):
    result = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_module_takes_inputs_of_any_shape_such_as_images():
    """A small CNN on (n, 1, 6, 6) images: no d_in guessed from its Linear layer, loss as torch computes it."""
    from losslab import Problem

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 2, 3), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 1)
        ).to(DT)
    X = torch.randn(5, 1, 6, 6, generator=torch.Generator().manual_seed(1), dtype=DT)
    y = torch.randn(5, generator=torch.Generator().manual_seed(2), dtype=DT)
    prob = Problem(Module(net), X, y)
    theta = prob.default_theta()
    with torch.no_grad():
        ref = ((net(X)[:, 0] - y) ** 2).mean()
    assert float(prob.loss(theta)) == pytest.approx(float(ref), rel=1e-13)
    Theta = theta + 0.1 * torch.randn(4, prob.n_params, generator=torch.Generator().manual_seed(3), dtype=DT)
    loop = torch.stack([prob.loss(t) for t in Theta])
    assert torch.allclose(prob.loss_batch(Theta), loop, rtol=1e-12)
    assert prob.chunk_size() >= 1
