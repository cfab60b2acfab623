"""Problem.restrict: the loss, gradient, HVP and batched loss of a restriction are those of the full
problem at the merged point, blocks of its derivatives (dense ``torch.func.hessian`` in float64)."""

from __future__ import annotations

import math

import pytest
import torch

from losslab import LosslabError

from _helpers import gen, relclose
from references import dense_hessian

DT = torch.float64


def _subset(case):
    """A proper subset of groups to keep free: the first declared affine set, else the last group."""
    model = case.model
    groups = sorted(model.affine_sets[0]) if model.affine_sets else [model.groups[-1]]
    if set(groups) == set(model.groups):
        groups = [model.groups[0]]
    return [g for g in model.groups if g in groups]


def test_restrict_is_the_full_loss_at_the_merged_point(case):
    prob = case.problem(l2=0.1)
    groups = _subset(case)
    at = case.theta(prob, 0)
    sub = prob.restrict(groups, at)
    assert sub.groups == tuple(groups)
    assert sub.n_params == sum(math.prod(case.model.shapes[g]) for g in groups)
    sl = prob.slices()
    idx = torch.cat([torch.arange(sl[g].start, sl[g].stop) for g in groups])
    assert sub.n_params == len(idx)
    u = torch.randn(sub.n_params, generator=gen(3), dtype=DT)
    merged = at.clone()
    merged[idx] = u
    assert torch.equal(sub.embed(u), merged)
    assert relclose(sub.loss(u), prob.loss(merged), 1e-13)
    # derivatives of the restriction are the blocks of the full ones
    torch.testing.assert_close(sub.grad(u), prob.grad(merged)[idx], rtol=1e-12, atol=1e-14)
    H = dense_hessian(prob.loss, merged)
    v = torch.randn(sub.n_params, generator=gen(4), dtype=DT)
    torch.testing.assert_close(sub.hvp(u, v), H[idx][:, idx] @ v, rtol=1e-10, atol=1e-12)
    # and the batched loss works on the restricted vector
    U = torch.stack([u, 2 * u])
    assert relclose(sub.loss_batch(U), torch.stack([sub.loss(u), sub.loss(2 * u)]), 1e-12)


def test_restrict_accepts_params_theta_or_nothing(make_case):
    case = make_case("two-layer-tanh-c")
    prob = case.problem()
    params = case.params(1)
    by_dict = prob.restrict(["v"], params)
    by_theta = prob.restrict("v", prob.flatten(params))
    u = torch.randn(4, generator=gen(0), dtype=DT)
    assert by_dict.groups == by_theta.groups == ("v",)
    assert by_dict.loss(u) == by_theta.loss(u)
    default = prob.restrict(["v", "c"])  # fixed at model.init(seed=0)
    init = case.model.init(seed=0)
    assert torch.equal(default.fixed["W"], init["W"]) and torch.equal(default.fixed["b"], init["b"])
    assert set(default.fixed) == {"W", "b"}


def test_restrict_leaves_the_problem_alone_and_full_undoes_it(make_case):
    case = make_case("mlp-relu")
    prob = case.problem()
    at = case.theta(prob, 2)
    sub = prob.restrict(["W2", "b2"], at)
    assert prob.groups == case.model.groups and prob.fixed == {}
    assert prob.n_params == case.model.n_params
    full = sub.full()
    assert full.groups == case.model.groups and full.n_params == prob.n_params
    assert full.loss(at) == prob.loss(at)
    # restricting a restriction
    subsub = sub.restrict(["b2"], sub.as_theta(at[prob.slices()["W2"].start :]))
    assert subsub.n_params == 1 and relclose(subsub.loss(at[-1:]), prob.loss(at), 1e-13)


def test_restrict_copies_the_fixed_values(make_case):
    case = make_case("two-layer-relu")
    prob = case.problem()
    params = case.params(0)
    sub = prob.restrict(["v"], params)
    u = params["v"].clone()
    before = sub.loss(u)
    params["W"].add_(1.0)  # mutating the caller's dict afterwards must not move the restriction
    assert sub.loss(u) == before


def test_restrict_rejects_unknown_groups(make_case):
    prob = make_case("two-layer-tanh").problem()
    with pytest.raises(LosslabError, match=r"expected groups among \['W', 'b', 'v'\], got \['u'\] \(unknown: \['u'\]\)"):
        prob.restrict(["u"])
    with pytest.raises(LosslabError, match=r"expected groups among \['W', 'b', 'v'\], got \[\]"):
        prob.restrict([])
    sub = prob.restrict(["v"])
    with pytest.raises(LosslabError, match=r"expected groups among \['v'\], got \['W'\]"):
        sub.restrict(["W"])


def test_a_restriction_converted_to_float32_converts_its_fixed_groups(case):
    prob = case.problem(l2=0.1)
    theta = case.theta(prob, 0)
    sub = prob.restrict(_subset(case), theta).to(torch.float32)
    assert sub.dtype == torch.float32 and all(v.dtype == torch.float32 for v in sub.fixed.values())
    u = sub.as_theta(theta[torch.cat([torch.arange(s.start, s.stop) for g, s in prob.slices().items() if g in sub.groups])].float())
    assert sub.loss(u).dtype == torch.float32
    assert relclose(sub.loss(u), prob.loss(theta), 1e-4)

