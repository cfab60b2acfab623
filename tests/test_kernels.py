"""Tests for losslab.kernels.empirical_ntk: against J Jᵀ of a dense float64 Jacobian (tests/references.py).

The reference Jacobian is ``torch.func.jacrev`` of the model's outputs on all the inputs at once (for a wrapped module,
of the module's own forward through ``functional_call``), with no chunking and no losslab kernel code.
"""

from __future__ import annotations

import doctest

import pytest
import torch
from torch import nn

from losslab import LosslabError, Problem
from losslab.kernels import empirical_ntk, ntk
from losslab.memory import MemoryBudgetError
from losslab.models import MLP, Module, TwoLayer

from references import dense_jacobian, module_outputs

F64 = torch.float64


def _data(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=F64), torch.randn(n, generator=g, dtype=F64)


def two_layer_problem(**kwargs) -> Problem:
    X, y = _data(7, 3, 0)
    return Problem(TwoLayer(d_in=3, width=5, activation="tanh"), X, y, **kwargs)


def test_two_layer_ntk_is_j_jt_of_a_dense_jacobian_on_new_inputs():
    prob = two_layer_problem()
    theta = prob.init(1)
    A, B = _data(5, 3, 2)[0], _data(4, 3, 3)[0]
    got = empirical_ntk(prob, theta, A, B)
    JA = dense_jacobian(lambda t: prob.model.apply(prob.unflatten(t), A), theta)
    JB = dense_jacobian(lambda t: prob.model.apply(prob.unflatten(t), B), theta)
    assert got.shape == (5, 4)
    torch.testing.assert_close(got, JA @ JB.T, rtol=1e-12, atol=1e-12)


def test_the_kernel_on_one_set_is_symmetric_positive_semidefinite_with_the_rank_of_j():
    prob = two_layer_problem()
    X = _data(30, 3, 4)[0]  # 30 inputs > p = 25 parameters: the kernel is singular
    K = empirical_ntk(prob, prob.init(0), X)
    assert torch.equal(K, K.T)
    evals = torch.linalg.eigvalsh(K)
    assert float(evals.min()) >= -1e-10 * float(evals.max())
    J = dense_jacobian(lambda t: prob.model.apply(prob.unflatten(t), X), prob.init(0))
    assert int(torch.linalg.matrix_rank(K)) == int(torch.linalg.matrix_rank(J)) <= prob.n_params


def test_a_wrapped_module_with_two_outputs_per_output_and_summed():
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(F64)
    X, _ = _data(6, 3, 5)
    prob = Problem(Module(net), X, torch.zeros(6, 2, dtype=F64))
    theta = prob.default_theta()
    J = dense_jacobian(module_outputs(net, X), theta).reshape(6, 2, -1)  # the user's forward, not the wrapper
    blocks = empirical_ntk(prob, theta, X, per_output=True)
    assert blocks.shape == (6, 6, 2, 2)
    torch.testing.assert_close(blocks, torch.einsum("acp,bdp->abcd", J, J), rtol=1e-12, atol=1e-12)
    summed = empirical_ntk(prob, theta, X)
    torch.testing.assert_close(summed, J[:, 0] @ J[:, 0].T + J[:, 1] @ J[:, 1].T, rtol=1e-12, atol=1e-12)


def test_a_restricted_problem_differentiates_its_free_groups_only():
    prob = two_layer_problem()
    params = prob.model.init(seed=3)
    head = prob.restrict(["v"], at=params)
    X = _data(5, 3, 6)[0]
    features = prob.model.hidden(params, X)  # f = v·σ(Wx + b): ∂f/∂v = σ(Wx + b)
    torch.testing.assert_close(empirical_ntk(head, head.flatten(params), X), features @ features.T, rtol=1e-12, atol=1e-12)


def test_a_tiny_memory_budget_gives_the_same_kernel_in_small_blocks():
    X = _data(9, 3, 7)[0]
    prob = Problem(MLP([3, 6, 6, 1], "tanh"), X, torch.zeros(9, dtype=F64))
    theta = prob.init(2)
    whole = empirical_ntk(prob, theta, X)
    p, a = prob.n_params, prob.model.activations_per_example()
    budget = ntk.ntk_bytes(9, 9, 1, p, 2, a, False)  # blocks of two rows, five blocks
    small = empirical_ntk(prob.with_memory_budget(budget), theta, X)
    torch.testing.assert_close(small, whole, rtol=1e-12, atol=1e-12)
    with pytest.raises(MemoryBudgetError, match=r"the empirical NTK of 9 × 9 inputs .* over memory_budget"):
        empirical_ntk(prob.with_memory_budget(budget // 10), theta, X)


def test_float32_problem_gives_a_float32_kernel_close_to_float64():
    prob = two_layer_problem()
    X = _data(4, 3, 8)[0]
    theta = prob.init(0)
    k32 = empirical_ntk(prob.to(torch.float32), theta.float(), X.float())
    assert k32.dtype == torch.float32
    torch.testing.assert_close(k32.double(), empirical_ntk(prob, theta, X), rtol=5e-5, atol=1e-5)


BAD = [
    ("not a problem", lambda p, t: empirical_ntk("problem", t, torch.zeros(2, 3)), r"expected a losslab\.Problem, got str"),
    ("theta of the wrong shape", lambda p, t: empirical_ntk(p, t[:-1], torch.zeros(2, 3)),
     r"expected theta of shape \(25,\) \(the free groups \['W', 'b', 'v'\]\), got shape \(24,\)"),
    ("theta not a tensor", lambda p, t: empirical_ntk(p, [0.0] * 25, torch.zeros(2, 3)), r"expected theta as a real torch tensor"),
    ("X1 with the wrong width", lambda p, t: empirical_ntk(p, t, torch.zeros(2, 4)), r"expected X1 of shape \(n, 3\), got shape \(2, 4\)"),
    ("X2 with the wrong width", lambda p, t: empirical_ntk(p, t, torch.zeros(2, 3), torch.zeros(2, 2)),
     r"expected X2 of shape \(n, 3\), got shape \(2, 2\)"),
    ("X1 None", lambda p, t: empirical_ntk(p, t, None), r"expected X1 as inputs of shape \(n, d_in\)"),
    ("X1 with NaN", lambda p, t: empirical_ntk(p, t, torch.full((2, 3), float("nan"))), r"X1"),
    ("X1 empty", lambda p, t: empirical_ntk(p, t, torch.zeros(0, 3)), r"X1"),
    ("per_output not a bool", lambda p, t: empirical_ntk(p, t, torch.zeros(2, 3), per_output=1),
     r"expected per_output to be True or False, got per_output=1"),
]


@pytest.mark.parametrize(("name", "call", "match"), BAD, ids=[c[0] for c in BAD])
def test_bad_inputs_say_what_was_expected_in_one_line(name, call, match):
    prob = two_layer_problem()
    with pytest.raises(LosslabError, match=match) as info:
        call(prob, prob.init(0))
    assert "\n" not in str(info.value)


class _TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, x, scale):
        return self.lin(x).squeeze(-1) * scale


def _module(net: nn.Module, inputs) -> Problem:
    return Problem(Module(net.double()), [(inputs, torch.zeros(4, dtype=F64))])


MODULE_BAD = [  # a wrapped Module declares no d_in: the inputs are checked against the problem's own
    ("wrong width", lambda: _module(nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 1)), torch.zeros(4, 2, dtype=F64)),
     torch.randn(4, 5, dtype=F64), r"expected X1 of shape \(n, 2\) like the problem's inputs, got shape \(4, 5\); fix"),
    ("a vector for two columns", lambda: _module(nn.Linear(2, 1), torch.zeros(4, 2, dtype=F64)), torch.randn(4, dtype=F64),
     r"expected X1 of shape \(n, 2\) like the problem's inputs, got shape \(4,\)"),
    ("integers for floats", lambda: _module(nn.Linear(2, 1), torch.zeros(4, 2, dtype=F64)), torch.ones(3, 2, dtype=torch.int64),
     r"expected X1 to hold floating numbers \(torch\.float64\) like the problem's inputs, got torch\.int64; convert"),
    ("a tensor for a tuple", lambda: _module(_TwoInputs(), (torch.zeros(4, 2, dtype=F64), torch.ones(4, dtype=F64))),
     torch.zeros(4, 2, dtype=F64), r"expected X1 structured like the problem's inputs \(a tuple of 2 tensors\), got a tensor"),
    ("a tuple member's width", lambda: _module(_TwoInputs(), (torch.zeros(4, 2, dtype=F64), torch.ones(4, dtype=F64))),
     (torch.zeros(4, 3, dtype=F64), torch.ones(4, dtype=F64)), r"expected X1\[0\] of shape \(n, 2\)"),
]


@pytest.mark.parametrize(("name", "problem", "X", "match"), MODULE_BAD, ids=[c[0] for c in MODULE_BAD])
def test_inputs_unlike_a_modules_own_are_refused_in_one_line(name, problem, X, match):
    prob = problem()
    with pytest.raises(LosslabError, match=match) as info:
        empirical_ntk(prob, prob.default_theta(), X)
    assert "\n" not in str(info.value)


def test_a_module_with_tuple_inputs_takes_a_matching_tuple():
    prob = _module(_TwoInputs(), (torch.zeros(4, 2, dtype=F64), torch.ones(4, dtype=F64)))
    X = (torch.randn(3, 2, dtype=F64), torch.full((3,), 2.0, dtype=F64))
    K = empirical_ntk(prob, prob.default_theta(), X)  # f = (w·x + b)·s: ∂f/∂(w, b) = s·(x, 1)
    feats = torch.cat([X[0], torch.ones(3, 1, dtype=F64)], 1) * 2.0
    torch.testing.assert_close(K, feats @ feats.T, rtol=1e-12, atol=1e-12)


def test_the_docstring_examples_run():
    from losslab.kernels import ntk as module
    from losslab.kernels import regression

    for mod in (module, regression):
        assert doctest.testmod(mod, extraglobs={"torch": torch}).failed == 0
