"""Modules whose forward is more than their layers: tied weights, hooks, spectral_norm, parametrizations.

Each is checked against the module's own forward and autograd: the loss, the gradient, a plane's
centre, and that the problem stays usable (init, a second Problem) after the vmap probe.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from losslab import Problem
from losslab.landscape import backend, evaluate_points, plane
from losslab.models import Module

DT = torch.float64


def data(n: int = 24, d: int = 3):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, d, generator=g, dtype=DT), torch.randn(n, generator=g, dtype=DT)


def reused_layer() -> nn.Module:
    torch.manual_seed(0)
    lin = nn.Linear(3, 3)
    return nn.Sequential(lin, nn.Tanh(), lin, nn.Tanh(), nn.Linear(3, 1)).to(DT)


class TiedLM(nn.Module):
    """An embedding and an output projection sharing one weight (two modules, one Parameter)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.emb, self.out = nn.Embedding(7, 4), nn.Linear(4, 7, bias=False)
        self.out.weight = self.emb.weight

    def forward(self, ids):
        return self.out(torch.tanh(self.emb(ids).mean(1)))


def mse(net, X, y):
    return ((net(X)[:, 0] - y) ** 2).mean()


def test_a_layer_used_twice_is_one_group_with_the_module_s_own_loss_and_gradient():
    net = reused_layer()
    X, y = data()
    problem = Problem(Module(net), X, y)
    assert problem.groups == ("0.weight", "0.bias", "4.weight", "4.bias") and problem.model.layers() is None
    theta = problem.default_theta()
    assert torch.allclose(problem.loss(theta), mse(net, X, y), rtol=1e-14, atol=0)
    net.zero_grad()
    mse(net, X, y).backward()
    want = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
    assert torch.allclose(problem.grad(theta), want, rtol=1e-12, atol=1e-15)
    assert problem.init(seed=1).shape == theta.shape  # the private copy holds no vmap tensors
    s = plane(problem, theta, steps=3, seed=0)
    assert torch.allclose(s.losses[1, 1], problem.loss(theta), rtol=1e-14, atol=0)


def test_a_weight_shared_by_two_modules_moves_in_both():
    lm = TiedLM().to(DT)
    ids = torch.randint(0, 7, (30, 5), generator=torch.Generator().manual_seed(2))
    y = torch.randint(0, 7, (30,), generator=torch.Generator().manual_seed(3))
    problem = Problem(Module(lm), ids, y, loss="cross_entropy")
    assert problem.groups == ("emb.weight",)
    theta = problem.default_theta()
    loss = nn.functional.cross_entropy(lm(ids), y)
    assert torch.allclose(problem.loss(theta), loss, rtol=1e-14, atol=0)
    lm.zero_grad()
    loss.backward()
    assert torch.allclose(problem.grad(theta), lm.emb.weight.grad.reshape(-1), rtol=1e-12, atol=1e-16)
    moved = theta + 0.3
    with torch.no_grad():
        lm.emb.weight.add_(0.3)  # both modules see it
        assert torch.allclose(problem.loss(moved), nn.functional.cross_entropy(lm(ids), y), rtol=1e-13, atol=0)
    assert problem.init(seed=4).shape == theta.shape


def hooked() -> nn.Module:
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).to(DT)
    net[0].register_forward_hook(lambda m, i, o: 2 * o)
    return net


def pre_hooked() -> nn.Module:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).to(DT)
    net.register_forward_pre_hook(lambda m, args: (args[0] * 0.5,))
    return net


def spectral() -> nn.Module:
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).to(DT)
    nn.utils.parametrizations.spectral_norm(net[0])
    return net


def orthogonal() -> nn.Module:
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 1)).to(DT)
    nn.utils.parametrizations.orthogonal(net[0])
    return net


@pytest.mark.parametrize("make", [hooked, pre_hooked, spectral, orthogonal])
def test_a_sequential_whose_forward_is_more_than_its_layers_is_not_sent_to_the_layer_kernels(make):
    net = make().eval()
    X, y = data()
    problem = Problem(Module(net), X, y)
    assert problem.model.layers() is None and backend(problem) != "layers"
    theta = problem.default_theta()
    with torch.no_grad():
        assert torch.allclose(problem.loss(theta), mse(net, X, y), rtol=1e-12, atol=0)
    points = theta + 0.1 * torch.randn(5, problem.n_params, generator=torch.Generator().manual_seed(6), dtype=DT)
    assert torch.allclose(evaluate_points(problem, points), problem.loss_batch(points), rtol=1e-12, atol=0)
    s = plane(problem, theta, steps=3, seed=0)
    assert torch.allclose(s.losses[1, 1], problem.loss(theta), rtol=1e-12, atol=0)
