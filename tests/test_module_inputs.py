"""Module: structured inputs, output selectors, the sigmoid link — each equal to the user's own forward."""

from __future__ import annotations

import collections

import pytest
import torch
from torch import nn

from losslab import LosslabError
from losslab.losses import get_loss
from losslab.models import Module

from _helpers import gen, rand_X

DT = torch.float64


def seeded(build, seed: int = 0) -> nn.Module:
    """``build()`` under a forked, seeded CPU generator, in float64."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build().to(DT)


class Bag(nn.Module):
    """A Hugging Face style text model: ``forward(input_ids, attention_mask)`` returning a dict."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 4)
        self.head = nn.Linear(4, 1)

    def forward(self, input_ids, attention_mask):
        h = self.emb(input_ids) * attention_mask.unsqueeze(-1)
        pooled = h.sum(1) / attention_mask.sum(1, keepdim=True)
        return {"logits": self.head(pooled), "hidden": h}


class TwoInputs(nn.Module):
    """``forward(x, z)`` returning a tuple (output, features)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x, z):
        return self.lin(x) + z, torch.tanh(x)


class Gated(nn.Module):
    """A custom forward ending in a sigmoid function (not an nn.Sigmoid child)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(2, 4), nn.Linear(4, 1)

    def forward(self, x):
        return {"probs": torch.sigmoid(self.b(torch.relu(self.a(x))))}


def token_batch(n: int = 6, length: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    ids = torch.randint(0, 20, (n, length), generator=gen(seed))
    mask = torch.ones(n, length, dtype=DT)
    mask[::2, 3:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def test_a_dict_input_model_keeps_int64_token_ids_and_selects_the_logits():
    net = seeded(Bag)
    model = Module(net, output="logits")
    batch = token_batch()
    p = model.init()
    z = model.logit(p, batch)
    with torch.no_grad():
        ref = net(**batch)["logits"][:, 0]
    torch.testing.assert_close(z, ref, rtol=0, atol=0)
    assert batch["input_ids"].dtype == torch.int64
    # float32 parameters: the int64 ids are untouched, the output follows the parameters' dtype
    p32 = model.init(dtype=torch.float32)
    z32 = model.logit(p32, {**batch, "attention_mask": batch["attention_mask"].float()})
    assert z32.dtype == torch.float32
    torch.testing.assert_close(z32.double(), ref, rtol=1e-5, atol=1e-6)


def test_a_tuple_input_and_tuple_output_module():
    net = seeded(TwoInputs)
    model = Module(net, output=0)
    x, zin = rand_X(5, 3, seed=1), rand_X(5, 2, seed=2)
    with torch.no_grad():
        ref = net(x, zin)[0]
    torch.testing.assert_close(model.apply(model.init(), (x, zin)), ref, rtol=0, atol=0)
    assert model.affine_sets == (frozenset({"lin.weight", "lin.bias"}),)


def test_batched_parameters_give_the_loop_of_single_ones():
    """loss_batch vmaps logit over stacked parameters: it must agree with one call per point."""
    model = Module(seeded(Bag), output="logits")
    batch = token_batch(seed=3)
    p0 = model.init()
    stacked = {k: torch.stack([v + 0.1 * i for i in range(3)]) for k, v in p0.items()}
    batched = torch.func.vmap(model.logit, in_dims=(0, None))(stacked, batch)
    loop = torch.stack([model.logit({k: v[i] for k, v in stacked.items()}, batch) for i in range(3)])
    torch.testing.assert_close(batched, loop, rtol=1e-13, atol=1e-14)


def test_buffers_follow_the_parameters_dtype_not_the_inputs():
    """An int-input embedding model with a floating buffer: the buffer is cast to float32 with the params."""

    class Scaled(Bag):
        def __init__(self):
            super().__init__()
            self.register_buffer("temperature", torch.tensor(2.0))

        def forward(self, input_ids, attention_mask):
            return super().forward(input_ids, attention_mask)["logits"] / self.temperature

    net = seeded(Scaled)
    model = Module(net)
    batch = token_batch(seed=4)
    out = model.logit(model.init(dtype=torch.float32), {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"].float()})
    assert out.dtype == torch.float32
    with torch.no_grad():
        ref = net(**batch)[:, 0]
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-6)
    assert model.module.temperature.dtype == DT  # the held copy is not changed


@pytest.mark.parametrize(
    ("build", "last"),
    [
        (lambda: nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1), nn.Sigmoid()), "2"),
        (lambda: nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Sequential(nn.Linear(3, 1), nn.Sigmoid())), "2.0"),
    ],
    ids=["sequential", "nested"],
)
def test_a_final_sigmoid_becomes_the_link_and_bce_matches_torch(build, last):
    net = seeded(build)
    model = Module(net)
    assert model.link == "sigmoid"
    X = 3 * rand_X(40, 2, seed=5)
    y = torch.rand(40, generator=gen(6), dtype=DT)
    p = model.init()
    with torch.no_grad():
        out = net(X)[:, 0]
        ref = nn.BCELoss()(out, y)
    torch.testing.assert_close(model.apply(p, X), out, rtol=1e-15, atol=1e-15)
    z = model.logit(p, X)
    torch.testing.assert_close(torch.sigmoid(z), out, rtol=1e-15, atol=1e-15)
    assert abs(float(get_loss("bce")(z, y)) - float(ref)) < 1e-12
    assert model.affine_sets == (frozenset({f"{last}.weight", f"{last}.bias"}),)
    # the parameters are shared by name: the stripped module follows the params it is given
    q = {k: v + 0.5 for k, v in p.items()}
    with torch.no_grad():
        torch.testing.assert_close(model.apply(q, X), torch.func.functional_call(net, q, (X,))[:, 0], rtol=1e-15, atol=1e-15)


def test_a_sigmoid_function_at_the_end_of_a_custom_forward_is_stripped_from_the_graph():
    net = seeded(Gated)
    model = Module(net, output="probs")
    assert model.link == "sigmoid"
    X = 2 * rand_X(30, 2, seed=7)
    y = (torch.rand(30, generator=gen(8), dtype=DT) > 0.5).to(DT)
    p = model.init()
    with torch.no_grad():
        out = net(X)["probs"][:, 0]
        ref = nn.BCELoss()(out, y)
    torch.testing.assert_close(model.apply(p, X), out, rtol=1e-15, atol=1e-15)
    assert abs(float(get_loss("bce")(model.logit(p, X), y)) - float(ref)) < 1e-12
    assert model.affine_sets == (frozenset({"b.weight", "b.bias"}),)


def test_link_none_keeps_the_sigmoid_in_the_logit():
    net = seeded(lambda: nn.Sequential(nn.Linear(2, 1), nn.Sigmoid()))
    model = Module(net, link=None)
    X = rand_X(8, 2, seed=9)
    assert model.link is None
    with torch.no_grad():
        torch.testing.assert_close(model.logit(model.init(), X), net(X)[:, 0], rtol=0, atol=0)
    assert model.affine_sets == ()  # σ(Wx + b) is not affine in anything
    assert Module(net, link="sigmoid").link == "sigmoid"


def test_activations_are_measured_on_a_structured_example():
    model = Module(seeded(Bag), output="logits")
    one = {k: v[:1] for k, v in token_batch().items()}
    count = model.activations_per_example(one)
    # emb (1·5·4) + head (1·1), doubled
    assert count == 2 * (5 * 4 + 1)
    assert model.activations_per_example(None) == count  # measured once


class Out:
    """An output object with attributes, as a Hugging Face ModelOutput also has."""

    def __init__(self, logits, hidden):
        self.logits, self.hidden = logits, hidden


Pair = collections.namedtuple("Pair", ["hidden", "logits"])


@pytest.mark.parametrize(("make", "selector"), [(Out, "logits"), (lambda z, h: Pair(h, z), "logits"), (lambda z, h: Pair(h, z), 1)])
def test_an_attribute_or_namedtuple_output_is_selected(make, selector):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, x):
            return make(self.lin(x), torch.tanh(x))

    net = seeded(Net)
    X = rand_X(5, 2, seed=11)
    model = Module(net, output=selector)
    with torch.no_grad():
        torch.testing.assert_close(model.apply(model.init(), X), net(X).logits[:, 0], rtol=0, atol=0)
    with pytest.raises(LosslabError, match=r"^forward returned a (Out with attributes \['logits', 'hidden'\]|Pair of 2); pass Module"):
        Module(net).logit(model.init(), X)
