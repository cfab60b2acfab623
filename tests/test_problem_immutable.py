"""A Problem is immutable: assignments raise, and restrict / full / to / with_memory_budget return new problems
whose loss is the original's, checked against the loss written out by hand on the full parameters."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from losslab import LosslabError, Problem
from losslab.landscape import evaluate_combinations, evaluate_points
from losslab.models import MLP, TwoLayer

from _helpers import gen, rand_X
from references import dense_gradient

DT = torch.float64
L2 = 0.05


def _two_layer() -> Problem:
    X = rand_X(30, 3, 0)
    return Problem(TwoLayer(3, 5, "tanh"), X, torch.sin(X[:, 0]) + X[:, 1] * X[:, 2], l2=L2)


def _by_hand(params: dict, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """mean((v·tanh(W x + b) − y)²) + l2·Σ‖group‖², written out (no losslab code)."""
    f = torch.tanh(X @ params["W"].T + params["b"]) @ params["v"]
    return ((f - y) ** 2).mean() + L2 * sum((p**2).sum() for p in params.values())


# ---- assignments raise -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fix"),
    [("memory_budget", "with_memory_budget"), ("dtype", r"\.to\("), ("device", r"\.to\("), ("free", "restrict"),
     ("fixed", "restrict"), ("l2", "new Problem"), ("model", "new Problem"), ("data", "new Problem"),
     ("_batched", "new Problem"), ("something_new", "new Problem")],
)
def test_assigning_an_attribute_raises_and_names_the_copy_to_make(name, fix):
    prob = _two_layer()
    before = prob.loss(prob.init(0))
    with pytest.raises(AttributeError, match=f"immutable.*{fix}"):
        setattr(prob, name, 1)
    with pytest.raises(AttributeError, match="immutable"):
        delattr(prob, "l2")
    assert prob.l2 == L2 and prob.memory_budget > 1 and not hasattr(prob, "something_new")
    assert torch.equal(prob.loss(prob.init(0)), before)


def test_the_fixed_groups_are_a_read_only_mapping():
    prob = _two_layer()
    theta = prob.init(1)
    sub = prob.restrict(["v"], at=theta)
    assert set(sub.fixed) == {"W", "b"} and dict(prob.fixed) == {}
    params = {g: t.clone() for g, t in prob.unflatten(theta).items()}
    assert all(torch.equal(sub.fixed[g], params[g]) for g in ("W", "b"))
    with pytest.raises(TypeError):
        sub.fixed["W"] = torch.zeros(5, 3, dtype=DT)
    with pytest.raises(TypeError):
        del sub.fixed["b"]
    theta[:] = 0.0  # the point restrict was given: the held values are the problem's own copies
    assert torch.equal(sub.fixed["W"], params["W"])


# ---- copies: new problems, the same loss ------------------------------------------------------------


def test_restrict_full_to_and_with_memory_budget_return_new_problems_and_leave_the_original():
    prob = _two_layer()
    copies = [prob.restrict(["v"]), prob.full(), prob.to(torch.float32), prob.with_memory_budget(2**20)]
    assert all(isinstance(c, Problem) and c is not prob for c in copies)
    assert prob.groups == ("W", "b", "v") and dict(prob.fixed) == {} and prob.dtype == DT
    assert prob.memory_budget == 256 * 2**20 and copies[-1].memory_budget == 2**20
    assert prob.to(DT) is prob  # nothing to convert
    with pytest.raises(LosslabError, match="memory_budget"):
        prob.with_memory_budget(0)


def test_copies_agree_with_the_loss_by_hand_on_the_full_parameters():
    prob = _two_layer()
    X, y = prob.X, prob.y
    theta = prob.init(2)
    params = prob.unflatten(theta)
    v = torch.randn(5, generator=gen(4), dtype=DT)
    full_params = {**params, "v": v}
    expected = _by_hand(full_params, X, y)

    sub = prob.restrict(["v"], at=theta)
    torch.testing.assert_close(sub.loss(v), expected, rtol=1e-13, atol=0)
    torch.testing.assert_close(sub.full().loss(sub.embed(v)), expected, rtol=1e-13, atol=0)
    torch.testing.assert_close(prob.loss(prob.flatten(full_params)), expected, rtol=1e-13, atol=0)
    torch.testing.assert_close(sub.with_memory_budget(2**16).loss(v), expected, rtol=1e-13, atol=0)
    sub32 = sub.to(torch.float32)
    assert sub32.dtype == torch.float32 and all(t.dtype == torch.float32 for t in sub32.fixed.values())
    torch.testing.assert_close(sub32.loss(v.float()).double(), expected, rtol=1e-5, atol=0)
    # the gradient in v alone is the v-block of the full gradient, by autograd on the hand-written loss
    ref_grad = dense_gradient(lambda w: _by_hand({**params, "v": w}, X, y), v)
    torch.testing.assert_close(sub.grad(v), ref_grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("implementation", ["layers", "layers per point", "vmap", "per point"])
def test_every_evaluation_path_of_a_restricted_problem_is_the_loss_by_hand(implementation):
    """The K-point kernels (landscape.fast) add the held groups' L2 and read the link as Problem.loss does."""
    prob = _two_layer()
    theta = prob.init(3)
    params = prob.unflatten(theta)
    sub = prob.restrict(["W", "v"], at=theta)
    Theta = torch.randn(6, sub.n_params, generator=gen(5), dtype=DT)
    expected = torch.stack([_by_hand({**params, **sub.unflatten(t)}, prob.X, prob.y) for t in Theta])
    torch.testing.assert_close(evaluate_points(sub, Theta, implementation=implementation), expected, rtol=1e-12, atol=0)
    C = torch.randn(6, 2, generator=gen(6), dtype=DT)
    V = torch.randn(2, sub.n_params, generator=gen(7), dtype=DT)
    expected = torch.stack([_by_hand({**params, **sub.unflatten(Theta[0] + c @ V)}, prob.X, prob.y) for c in C])
    got = evaluate_combinations(sub, C, V, Theta[0], implementation=implementation)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_a_sigmoid_output_reads_the_logit_for_bce_and_the_probability_for_mse(loss):
    X = rand_X(25, 2, 1)
    labels = (X[:, 0] + 0.3 * X[:, 1] > 0).to(DT)
    prob = Problem(MLP([2, 4, 1], "tanh", out_activation="sigmoid"), X, labels, loss=loss, l2=L2)
    theta = prob.init(0)
    params = prob.unflatten(theta)
    sub = prob.restrict(["W1", "b1"], at=theta)
    Theta = torch.randn(5, sub.n_params, generator=gen(8), dtype=DT)

    def by_hand(t):
        p = {**params, **sub.unflatten(t)}
        z = (torch.tanh(X @ p["W0"].T + p["b0"]) @ p["W1"].T + p["b1"])[:, 0]
        prob_out = torch.sigmoid(z)
        data = F.binary_cross_entropy(prob_out, labels) if loss == "bce" else ((prob_out - labels) ** 2).mean()
        return data + L2 * sum((v**2).sum() for v in p.values())

    expected = torch.stack([by_hand(t) for t in Theta])
    for implementation in ("layers", "layers per point", "vmap"):
        torch.testing.assert_close(evaluate_points(sub, Theta, implementation=implementation), expected, rtol=1e-12, atol=0)
