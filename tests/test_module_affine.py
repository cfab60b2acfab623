"""Module: affine parameter sets proven from the traced graph, each checked numerically in float64.

A proven set must have a zero second directional derivative (two nested ``torch.func.jvp``) and
a zero chord defect f(0.3a + 0.7b) − 0.3f(a) − 0.7f(b); a rejected set must have one of them
clearly non-zero (the chord catches relu's kinks, where the second derivative vanishes).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from losslab import LosslabError, Problem
from losslab.convexity.structure import prove_convex
from losslab.models import Module

from _helpers import gen, rand_X

DT = torch.float64


def seeded(build: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build().to(DT)


def nonlinearity(model: Module, S: frozenset[str], inputs: object, seed: int) -> float:
    """max(|d²/dt² logit(p + t·d)|, |chord defect|) over S, relative to 1 + |logit|, in float64."""
    p = model.init(seed=None)
    g = gen(seed)
    rest = {k: v for k, v in p.items() if k not in S}
    f = lambda q: model.logit({**rest, **q}, inputs)
    d = {k: torch.randn(p[k].shape, generator=g, dtype=DT) for k in S}
    sub = {k: p[k] for k in S}
    first = lambda q: torch.func.jvp(f, (q,), (d,))[1]
    second = torch.func.jvp(first, (sub,), (d,))[1]
    a = {k: v + torch.randn(v.shape, generator=g, dtype=DT) for k, v in sub.items()}
    b = {k: v + torch.randn(v.shape, generator=g, dtype=DT) for k, v in sub.items()}
    fa, fb = f(a), f(b)
    fm = f({k: 0.3 * a[k] + 0.7 * b[k] for k in S})
    size = 1 + max(float(fa.abs().max()), float(fb.abs().max()), float(f(sub).abs().max()))
    return max(float(second.abs().max()), float((fm - 0.3 * fa - 0.7 * fb).abs().max())) / size


class Bag(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.head = nn.Embedding(20, 4), nn.Linear(4, 1)

    def forward(self, input_ids, attention_mask):
        h = self.emb(input_ids) * attention_mask.unsqueeze(-1)
        return {"logits": self.head(h.sum(1) / attention_mask.sum(1, keepdim=True))}


class Gate(nn.Module):
    """a(x)·s + b(x)/t: affine in a, in b and in s, not in t (a denominator) nor in {a, s} (a product)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 2), nn.Linear(3, 2)
        self.s, self.t = nn.Parameter(torch.tensor(1.3)), nn.Parameter(torch.tensor(0.7))

    def forward(self, x):
        return self.a(x) * self.s + self.b(x) / self.t


class Mixed(nn.Module):
    """einsum(x, W) + tanh(x @ V) + c."""

    def __init__(self):
        super().__init__()
        self.W, self.V, self.c = (nn.Parameter(torch.randn(*s) / 2) for s in ((3, 2), (3, 2), (2,)))

    def forward(self, x):
        return torch.einsum("ni,ij->nj", x, self.W) + torch.tanh(x @ self.V) + self.c


class Tied(nn.Module):
    """A language-model head tied to the embedding: quadratic in the shared weight."""

    def __init__(self):
        super().__init__()
        self.emb, self.head = nn.Embedding(10, 4), nn.Linear(4, 10)
        self.head.weight = self.emb.weight

    def forward(self, ids):
        return self.head(self.emb(ids).mean(1))


class Residual(nn.Module):
    """An in-place relu on a fresh tensor (safe), then a residual sum."""

    def __init__(self):
        super().__init__()
        self.a, self.act, self.b = nn.Linear(3, 3), nn.ReLU(inplace=True), nn.Linear(3, 3)

    def forward(self, x):
        return self.b(self.act(self.a(x))) + x


def _fs(*sets: set[str]) -> list[frozenset[str]]:
    return [frozenset(s) for s in sets]


X20 = rand_X(20, 3, seed=1)
IDS = {"input_ids": torch.randint(0, 20, (8, 5), generator=gen(2)), "attention_mask": torch.ones(8, 5, dtype=DT)}
CASES = {
    "relu-mlp": (lambda: nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)),
                 {}, rand_X(20, 64, seed=3), _fs({"4.weight", "4.bias"}), _fs({"0.weight"}, {"2.weight"}, {"2.bias", "4.weight"})),
    "linear": (lambda: nn.Linear(3, 2), {}, X20, _fs({"weight", "bias"}), []),
    "deep-linear": (lambda: nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)), {}, X20,
                    _fs({"0.weight", "0.bias"}, {"1.weight", "1.bias"}), _fs({"0.weight", "1.weight"}, {"0.bias", "1.weight"})),
    "batchnorm-eval": (lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), {}, X20,
                       _fs({"0.weight", "0.bias"}, {"1.weight", "1.bias"}), _fs({"0.weight", "1.weight"})),
    "batchnorm-train": (lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), {"mode": "train"}, X20,
                        _fs({"1.weight", "1.bias"}), _fs({"0.weight"})),
    "layernorm": (lambda: nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2)), {}, X20,
                  _fs({"1.weight", "1.bias"}, {"2.weight", "2.bias"}), _fs({"0.weight"}, {"1.weight", "2.weight"})),
    "conv-pool": (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8, 1)), {},
                  torch.randn(6, 1, 6, 6, generator=gen(4), dtype=DT), _fs({"0.weight", "0.bias"}, {"3.weight", "3.bias"}),
                  _fs({"0.weight", "3.weight"})),
    "embedding-dict": (Bag, {"output": "logits"}, IDS, _fs({"emb.weight"}, {"head.weight", "head.bias"}),
                       _fs({"emb.weight", "head.weight"})),
    "gate": (Gate, {}, X20, _fs({"a.weight", "a.bias"}, {"b.weight", "b.bias"}, {"s"}), _fs({"t"}, {"s", "a.weight"}, {"t", "b.bias"})),
    "einsum-tanh": (Mixed, {}, X20, _fs({"W"}, {"c"}), _fs({"V"})),
    "tied": (Tied, {}, torch.randint(0, 10, (6, 3), generator=gen(5)), _fs({"head.bias"}), _fs({"emb.weight"})),
    "inplace-relu": (Residual, {}, X20, _fs({"b.weight", "b.bias"}), _fs({"a.weight"})),
}


@pytest.mark.parametrize("name", list(CASES))
def test_proven_sets_are_exactly_the_expected_ones_and_hold_numerically(name):
    build, kwargs, inputs, proven, rejected = CASES[name]
    model = Module(seeded(build), **kwargs)
    assert model.trace_note is None
    assert sorted(map(sorted, model.affine_sets)) == sorted(map(sorted, proven))
    assert model.declared_affine_sets == ()
    for i, S in enumerate(model.affine_sets):
        assert nonlinearity(model, S, inputs, seed=10 + i) < 1e-12, S
    for i, S in enumerate(rejected):
        assert not model.is_affine_in(S)
        assert nonlinearity(model, frozenset(S), inputs, seed=20 + i) > 1e-4, S


def test_the_union_of_two_affine_layers_is_not_affine():
    model = Module(seeded(lambda: nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))))
    assert model.is_affine_in({"0.weight", "0.bias"}) and model.is_affine_in({"1.weight"})
    assert not model.is_affine_in(model.groups)


def test_the_reason_names_the_traced_graph():
    model = Module(seeded(CASES["relu-mlp"][0]))
    assert model.affine_reason() == "traced graph (torch.fx): the output depends on {4.weight, 4.bias} only through linear operations"
    gate = Module(seeded(Gate))
    assert gate.affine_reason({"s"}) == "traced graph (torch.fx): the output depends on {s} only through linear operations"
    assert "each of {a.weight, a.bias}, {b.weight, b.bias}, {s}" in gate.affine_reason()


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(2, 1)

    def forward(self, x):
        if x.sum() > 0:
            return self.l(x)
        return -self.l(x)


def test_a_forward_that_does_not_trace_proves_nothing_and_says_why():
    model = Module(Branchy())
    assert model.affine_sets == () and model.proven_affine_sets == ()
    assert model.trace_note.startswith("tracing with torch.fx failed (TraceError: symbolically traced variables cannot be used")
    assert "\n" not in model.trace_note
    assert model.affine_reason() == f"none: {model.trace_note}"


def test_declared_sets_are_added_and_named_as_the_users():
    model = Module(Branchy(), affine_sets=[{"l.weight", "l.bias"}])
    assert model.affine_sets == model.declared_affine_sets == (frozenset({"l.weight", "l.bias"}),)
    assert model.affine_reason() == "declared by the user: affine in {l.weight, l.bias}"
    both = Module(seeded(Gate), affine_sets=[["t"]])
    assert frozenset({"t"}) in both.affine_sets and both.declared_affine_sets == (frozenset({"t"}),)
    assert both.affine_reason({"t"}) == "declared by the user: affine in {t}"


def test_an_in_place_change_other_nodes_see_proves_nothing():
    class Aliased(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.s = nn.Linear(3, 2), nn.Parameter(torch.tensor(2.0))

        def forward(self, x):
            h = self.a(x)
            g = h * 2
            h.mul_(self.s)  # g reads h before; the graph's h node is changed under it
            return g + h

    model = Module(seeded(Aliased))
    assert model.affine_sets == ()
    assert "in place" in model.trace_note


def test_a_proven_module_gets_a_convexity_proof_from_its_graph():
    net = seeded(lambda: nn.Linear(3, 1))
    problem = Problem(Module(net), X20, torch.randn(20, generator=gen(6), dtype=DT))
    proof = prove_convex(problem)
    assert proof is not None and "traced graph (torch.fx)" in proof.statement
    assert proof.declaration_check < 1e-12


def test_a_wrong_declaration_is_caught_by_the_float64_guard():
    net = seeded(lambda: nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)))
    model = Module(net, affine_sets=[{"0.weight", "0.bias", "2.weight", "2.bias"}])
    problem = Problem(model, X20, torch.randn(20, generator=gen(7), dtype=DT))
    with pytest.raises(LosslabError, match=r"expected the declared affine_sets to hold, got the output nonlinear in .* remove"):
        prove_convex(problem)
