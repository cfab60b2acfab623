"""Module: which parameters are analysed, the train/eval mode, seeded initialisation, the float64 check."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from losslab import LosslabError
from losslab.models import Module
from losslab.random_streams import generator

from _helpers import rand_X

DT = torch.float64


def mlp(seed: int = 0, *, bn: bool = False) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers = [nn.Linear(2, 4), *([nn.BatchNorm1d(4)] if bn else []), nn.Tanh(), nn.Linear(4, 1)]
        return nn.Sequential(*layers).to(DT)


class Scaled(nn.Module):
    """A custom module with its own nn.Parameter and no reset_parameters."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.scale = nn.Parameter(torch.tensor([1.5]))

    def forward(self, x):
        return self.lin(x) * self.scale


# ---- params: trainable, all, a list ----------------------------------------------------------


def test_frozen_parameters_are_held_fixed_and_not_in_the_groups():
    net = mlp()
    net[0].requires_grad_(False)
    model = Module(net)
    assert model.groups == ("2.weight", "2.bias") and model.frozen == ("0.weight", "0.bias")
    assert model.describe() == "Module(Sequential, 5 parameters, eval mode, 2 frozen tensors)"
    X = rand_X(9, 2, seed=1)
    p = model.init()
    assert set(p) == {"2.weight", "2.bias"}
    with torch.no_grad():
        torch.testing.assert_close(model.apply(p, X), net(X)[:, 0], rtol=0, atol=0)
    # the frozen layer is held as the user's: moving the analysed ones changes only the last layer
    q = {"2.weight": torch.ones(1, 4, dtype=DT), "2.bias": torch.zeros(1, dtype=DT)}
    with torch.no_grad():
        torch.testing.assert_close(model.apply(q, X), torch.tanh(net[0](X)).sum(1), rtol=1e-14, atol=1e-15)
    # float32 parameters: the frozen float64 layer is cast to them
    assert model.apply(model.init(dtype=torch.float32), X.float()).dtype == torch.float32
    assert model.affine_sets == (frozenset({"2.weight", "2.bias"}),)


def test_params_all_and_a_list_of_names():
    net = mlp()
    net[0].requires_grad_(False)
    every = Module(net, params="all")
    assert every.groups == ("0.weight", "0.bias", "2.weight", "2.bias") and every.frozen == ()
    assert every.describe() == "Module(Sequential, 17 parameters, eval mode, no frozen tensors)"
    some = Module(mlp(), params=["2.bias", "0.weight"])
    assert some.groups == ("0.weight", "2.bias") and some.frozen == ("0.bias", "2.weight")  # module order
    X = rand_X(6, 2, seed=2)
    p = some.init()
    with torch.no_grad():
        torch.testing.assert_close(some.apply(p, X), mlp()(X)[:, 0], rtol=0, atol=0)
    assert some.affine_sets == (frozenset({"2.bias"}),)


# ---- mode ---------------------------------------------------------------------------------------


def test_train_mode_batch_norm_uses_the_batch_statistics_and_updates_nothing():
    net = mlp(bn=True)
    net[1].running_mean.fill_(3.0)
    model = Module(net, mode="train")
    assert model.mode == "train" and "train mode" in model.describe()
    X = rand_X(16, 2, seed=3)
    p = model.init()
    out = model.apply(p, X)
    ref_net = mlp(bn=True).train()
    with torch.no_grad():
        ref = ref_net(X)[:, 0]
    torch.testing.assert_close(out, ref, rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(model.apply(p, X), out, rtol=0, atol=0)  # deterministic for a fixed batch
    assert float(net[1].running_mean[0]) == 3.0 and net[1].training  # the user's module untouched
    # hand-written batch norm with the batch's (biased) variance
    h = X @ p["0.weight"].T + p["0.bias"]
    h = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + 1e-5) * p["1.weight"] + p["1.bias"]
    torch.testing.assert_close(out, (torch.tanh(h) @ p["3.weight"].T + p["3.bias"])[:, 0], rtol=1e-13, atol=1e-14)
    # train and eval differ on this batch (running statistics are not the batch's)
    assert not torch.allclose(Module(net).apply(p, X), out)
    # vmap over parameters works with batch statistics
    stacked = {k: torch.stack([v, 2 * v]) for k, v in p.items()}
    both = torch.func.vmap(model.apply, in_dims=(0, None))(stacked, X)
    torch.testing.assert_close(both[1], model.apply({k: 2 * v for k, v in p.items()}, X), rtol=1e-13, atol=1e-14)


# ---- init -------------------------------------------------------------------------------------------


def test_seeded_init_is_reproducible_and_differs_between_seeds():
    model = Module(mlp(bn=True))
    a, b, c = model.init(seed=5), model.init(seed=5), model.init(seed=6)
    assert set(a) == set(model.groups)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["0.weight"], c["0.weight"]) and not torch.equal(a["3.weight"], c["3.weight"])
    own = model.init()
    assert not torch.equal(a["0.weight"], own["0.weight"])
    assert torch.equal(a["1.weight"], torch.ones(4, dtype=DT))  # BatchNorm's deterministic reset counts as re-initialised
    state = torch.random.get_rng_state()
    model.init(seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is left alone
    assert torch.equal(model.default_params(seed=3)["0.weight"], own["0.weight"])  # the module's own weights
    assert model.init(seed=5, dtype=torch.float32)["0.weight"].dtype == torch.float32


def test_a_seed_is_refused_for_a_parameter_no_reset_draws():
    model = Module(Scaled())
    refusal = r"cannot re-initialise with seed=0: no reset_parameters\(\) draws \['scale'\]; pass Module\(net, init=fn\)"
    with pytest.raises(LosslabError, match=refusal):
        model.init(seed=0)
    assert torch.equal(model.init()["scale"], torch.tensor([1.5], dtype=torch.float64))
    frozen = Scaled()
    frozen.scale.requires_grad_(False)
    assert set(Module(frozen).init(seed=0)) == {"lin.weight", "lin.bias"}  # a frozen one is not drawn


def test_an_init_function_draws_from_the_seeded_generator():
    fn = lambda m, g: [nn.init.normal_(p, std=0.1, generator=g) for p in m.parameters()]
    model = Module(Scaled(), init=fn)
    a, b, c = model.init(seed=1), model.init(seed=1), model.init(seed=2)
    assert all(torch.equal(a[k], b[k]) for k in a) and not torch.equal(a["scale"], c["scale"])
    # the same draws by hand, in the module's parameter order
    g = generator(1, "init")  # Module's documented init stream
    ref = {k: torch.empty(v.shape).normal_(0, 0.1, generator=g) for k, v in Scaled().named_parameters()}
    assert all(torch.equal(a[k], ref[k].to(DT)) for k in ref)
    assert torch.equal(model.init()["scale"], torch.tensor([1.5], dtype=DT))  # the wrapped copy is not touched


# ---- the float64 re-evaluation check ----------------------------------------------------------------


def test_check_float64_passes_a_module_that_follows_its_parameters():
    net = mlp(bn=True).float()
    model = Module(net)
    model.check_float64(rand_X(4, 2, seed=4))
    model.check_float64(rand_X(4, 2, seed=4).float())  # floating inputs are cast to float64
