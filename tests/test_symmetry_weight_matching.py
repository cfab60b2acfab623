"""Tests for losslab.symmetry: the aligned network computes b's function, planted permutations are recovered, and
for one hidden layer the matching equals brute force over every permutation of the weight-matching objective.

References are independent of the library: outputs by direct evaluation (the model's own ``apply`` or the user's
``nn.Sequential`` called through ``torch.func.functional_call``), permutations written out by hand with index
arrays, and the brute-force maximum over ``itertools.permutations``.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from losslab import LosslabError, Problem
from losslab.models import MLP, Module, TwoLayer
from losslab.symmetry import align, permute_hidden_units, weight_matching

from references import module_outputs

F64 = torch.float64


def _X(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _sequential(d: int, widths: tuple[int, ...], act=nn.Tanh, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers, prev = [], d
    for w in widths:
        layers += [nn.Linear(prev, w), act()]
        prev = w
    return nn.Sequential(*layers, nn.Linear(prev, 2)).double()


def _problems():
    X = _X(30, 3, 0)
    y = X[:, 0] * X[:, 1]
    out = {
        "two-layer": Problem(TwoLayer(3, 5, "tanh", out_bias=True), X, y),
        "mlp-relu-2-hidden": Problem(MLP([3, 6, 4, 1], "relu"), X, y),
        "mlp-sigmoid-3-hidden-k-outputs": Problem(MLP([3, 5, 4, 6, 2], "sigmoid"), X, torch.stack([y, -y], 1)),
        "sequential-tanh": Problem(Module(_sequential(3, (5, 4))), X, torch.stack([y, y], 1)),
        "sequential-gelu": Problem(Module(_sequential(3, (4, 5, 3), act=nn.GELU, seed=1)), X, torch.stack([y, y], 1)),
        "sequential-relu-nested": Problem(Module(nn.Sequential(nn.Sequential(nn.Linear(3, 6), nn.ReLU()),
                                                               nn.Linear(6, 1)).double()), X, y),
        # activations the fast kernels do not evaluate, but every elementwise σ commutes with a permutation
        "sequential-leaky-relu": Problem(Module(_sequential(3, (5, 4), act=lambda: nn.LeakyReLU(0.1), seed=2)), X,
                                         torch.stack([y, y], 1)),
        "sequential-elu-silu-softplus": Problem(Module(nn.Sequential(
            nn.Flatten(), nn.Linear(3, 5), nn.ELU(), nn.Linear(5, 4), nn.SiLU(), nn.Dropout(0.5), nn.Linear(4, 6),
            nn.Softplus(), nn.GELU(approximate="tanh"), nn.Linear(6, 1)).double()), X, y),
    }
    return out


PROBLEMS = _problems()


def _random_points(problem, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(problem.n_params, generator=g, dtype=F64) for _ in range(2)]


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_aligned_network_computes_bs_function(name):
    problem = PROBLEMS[name]
    a, b = _random_points(problem, 1)
    aligned = align(problem, a, b)
    X = _X(40, 3, 7)  # new inputs, not the training data
    want = problem.model.apply(problem.unflatten(b), X)
    assert torch.allclose(problem.model.apply(problem.unflatten(aligned), X), want, rtol=1e-12, atol=1e-12)
    assert not torch.equal(aligned, b)  # random networks: some unit moved


def test_aligned_sequential_equals_the_users_module_called_directly():
    net = _sequential(3, (6, 5), act=nn.Sigmoid, seed=3)
    problem = Problem(Module(net), _X(25, 3, 1), _X(25, 2, 2))
    a, b = _random_points(problem, 4)
    aligned = align(problem, a, b)
    X = _X(20, 3, 9)
    direct = module_outputs(net, X)
    assert torch.allclose(direct(aligned), direct(b), rtol=1e-12, atol=1e-12)


def _linear_names(problem):
    """(weight, bias) group names of the affine layers in call order: the Sequential's nn.Linear modules, found here."""
    if isinstance(problem.model, Module):
        return [(f"{n}.weight", f"{n}.bias") for n, m in problem.model.module.named_modules() if isinstance(m, nn.Linear)]
    return [(layer.weight, layer.bias) for layer in problem.model.layers()]


def _planted(problem, theta, seed):
    """θ with each hidden layer's units shuffled by hand (rows of W_l and b_l, columns of W_{l+1})."""
    params = problem.unflatten(theta)
    g = torch.Generator().manual_seed(seed)
    for (weight, bias), (nxt, _) in itertools.pairwise(_linear_names(problem)):
        perm = torch.randperm(params[weight].shape[0], generator=g)
        params[weight] = params[weight][perm, :]
        if bias is not None:
            params[bias] = params[bias][perm]
        params[nxt] = params[nxt][..., perm]
    return problem.flatten(params)


@pytest.mark.parametrize("name", sorted(PROBLEMS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_planted_permutation_is_recovered_exactly(name, seed):
    problem = PROBLEMS[name]
    a, _ = _random_points(problem, 10 + seed)
    shuffled = _planted(problem, a, seed)
    assert not torch.equal(shuffled, a)
    m = weight_matching(problem, a, shuffled)
    assert torch.equal(m.theta, a) and m.converged


def _objective(problem, a, b):
    return float(a @ b)  # ⟨θ_a, θ_b⟩ over every group: these models have no group outside the layer spec


@pytest.mark.parametrize("width", [2, 3, 4, 5])
@pytest.mark.parametrize("seed", [0, 1])
def test_one_hidden_layer_matching_equals_brute_force(width, seed):
    X = _X(10, 2, seed)
    problem = Problem(TwoLayer(2, width, "tanh", out_bias=True), X, X[:, 0])
    a, b = _random_points(problem, 100 + seed)
    pb = problem.unflatten(b)
    best = -float("inf")
    for perm in itertools.permutations(range(width)):
        idx = torch.tensor(perm)
        moved = dict(pb, W=pb["W"][idx], b=pb["b"][idx], v=pb["v"][idx])
        best = max(best, _objective(problem, a, problem.flatten(moved)))
    m = weight_matching(problem, a, b)
    assert _objective(problem, a, m.theta) == pytest.approx(best, rel=1e-12)
    assert m.objective == pytest.approx(best - float(a[-1] * b[-1]), rel=1e-12)  # c, never moved, is left out


def test_mlp_one_hidden_layer_matching_equals_brute_force():
    X = _X(10, 3, 0)
    problem = Problem(MLP([3, 4, 2], "relu"), X, torch.stack([X[:, 0], X[:, 1]], 1))
    a, b = _random_points(problem, 5)
    pb = problem.unflatten(b)
    best = max(_objective(problem, a, problem.flatten(permute_hidden_units(problem.model.layers(), pb, [torch.tensor(p)])))
               for p in itertools.permutations(range(4)))
    assert _objective(problem, a, align(problem, a, b)) == pytest.approx(best, rel=1e-12)


def test_coordinate_descent_never_lowers_the_objective_and_beats_identity_on_deep_nets():
    problem = PROBLEMS["mlp-sigmoid-3-hidden-k-outputs"]
    for seed in range(4):
        a, b = _random_points(problem, 50 + seed)
        m = weight_matching(problem, a, b)
        assert m.objective >= m.objective_before
        assert m.objective == pytest.approx(_objective(problem, a, m.theta) - float(a[-2:] @ b[-2:]), rel=1e-12)  # b3 left out
        assert [sorted(p.tolist()) for p in m.perms] == [list(range(w)) for w in (5, 4, 6)]


X0 = _X(12, 3, 0)
CONV = Module(nn.Sequential(nn.Unflatten(1, (1, 3)), nn.Conv1d(1, 2, 2), nn.Flatten(), nn.Linear(4, 1)).double())
NORM = Module(nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 1)).double())
SOFTMAX = Module(nn.Sequential(nn.Linear(3, 4), nn.Softmax(dim=-1), nn.Linear(4, 1)).double())
PRELU = Module(nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.Tanh(), nn.PReLU(4)), nn.Linear(4, 1)).double())


class _OwnForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)

    def forward(self, x):
        return self.lin(x) ** 2


SUPPORTED_LIST = (r" of Module\(.*\); supported: TwoLayer, MLP, or a Module wrapping an nn.Sequential of nn.Linear and "
                  r"the elementwise .*LeakyReLU")
TL = Problem(TwoLayer(3, 4, "tanh"), X0, X0[:, 0])
BAD = [
    ("conv", lambda: (Problem(CONV, X0, X0[:, 0]), None, None),
     r"got layer 0 \(Unflatten\)" + SUPPORTED_LIST),
    ("layer-norm", lambda: (Problem(NORM, X0, X0[:, 0]), None, None),
     r"elementwise activations, got layer 1 \(LayerNorm\)" + SUPPORTED_LIST),
    ("softmax", lambda: (Problem(SOFTMAX, X0, X0[:, 0]), None, None),
     r"got layer 1 \(Softmax\)" + SUPPORTED_LIST),
    ("prelu-nested", lambda: (Problem(PRELU, X0, X0[:, 0]), None, None),
     r"got layer 1.1 \(PReLU\)" + SUPPORTED_LIST),
    ("own-forward", lambda: (Problem(Module(_OwnForward().double()), X0, X0[:, 0]), None, None),
     r"got Module\(_OwnForward.*whose forward is its own, not an nn.Sequential's; supported: TwoLayer, MLP"),
    ("restricted", lambda: (TL.restrict(["v"], at=TL.init(0)), None, None), "held fixed; use problem.full()"),
    ("not-a-problem", lambda: ("problem", torch.zeros(3), torch.zeros(3)), "expected a losslab Problem"),
    ("a-wrong-shape", lambda: (TL, torch.zeros(5, dtype=F64), None), r"expected a of shape \(20,\), got shape \(5,\)"),
    ("b-from-another-problem", lambda: (TL, None, PROBLEMS["two-layer"].init(0)), r"expected b of shape \(20,\)"),
    ("b-nan", lambda: (TL, None, torch.full((20,), float("nan"), dtype=F64)), "expected b to be finite"),
    ("b-matrix", lambda: (TL, None, torch.zeros(2, 20, dtype=F64)), r"expected b of shape \(20,\), got shape \(2, 20\)"),
]


@pytest.mark.parametrize(("case", "make", "match"), BAD, ids=[c for c, _, _ in BAD])
@pytest.mark.parametrize("fn", [align, weight_matching])
def test_bad_inputs_give_one_line_errors(fn, case, make, match):
    problem, a, b = make()
    if isinstance(problem, Problem):
        a = problem.init(0) if a is None else a
        b = problem.init(1) if b is None else b
    with pytest.raises(LosslabError, match=match) as err:
        fn(problem, a, b)
    assert "\n" not in str(err.value)


def _frozen(names):
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    return Problem(Module(net, params=names), X0, X0[:, 0])


def test_a_frozen_output_bias_is_allowed_and_kept():
    problem = _frozen(["0.weight", "0.bias", "2.weight"])  # 2.bias frozen: no permutation moves it
    a, b = _random_points(problem, 3)
    aligned = align(problem, a, b)
    assert torch.allclose(problem.output(aligned), problem.output(b), rtol=1e-12, atol=1e-12)


def test_a_frozen_hidden_layer_is_refused():
    problem = _frozen(["0.bias", "2.weight", "2.bias"])
    with pytest.raises(LosslabError, match=r"got \['0.weight'\] held fixed; use problem.full\(\)"):
        align(problem, problem.init(0), problem.init(1))


def test_tied_weights_are_refused():
    lin = nn.Linear(4, 4)
    problem = Problem(Module(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), lin, nn.ReLU(), lin, nn.Linear(4, 1)).double()), X0, X0[:, 0])
    with pytest.raises(LosslabError, match="share \\(tie\\) parameters"):
        align(problem, problem.init(0), problem.init(1))


def test_bad_max_sweeps():
    with pytest.raises(LosslabError, match="expected max_sweeps to be an integer >= 1, got max_sweeps=0"):
        weight_matching(TL, TL.init(0), TL.init(1), max_sweeps=0)


@pytest.mark.parametrize("scale", [1e-100, 1e100, 1e200, 1e300])
def test_matching_is_scale_free_and_finite_for_huge_weights(scale):
    """⟨a, π(b)⟩ is bilinear: scaling a and b changes no permutation; huge (finite) weights must not overflow the matching."""
    problem = PROBLEMS["mlp-sigmoid-3-hidden-k-outputs"]
    a, b = _random_points(problem, 21)
    plain = weight_matching(problem, a, b)
    big = weight_matching(problem, a * scale, b * scale)
    assert [p.tolist() for p in big.perms] == [p.tolist() for p in plain.perms]
    assert torch.equal(big.theta, problem.flatten(permute_hidden_units(problem.model.layers(), problem.unflatten(b * scale),
                                                                      list(plain.perms))))
    want = plain.objective * scale * scale  # ±inf in float64 for scale ≥ 1e200: the true value is out of range
    if math.isfinite(want):
        assert big.objective == pytest.approx(want, rel=1e-12)
    else:
        assert big.objective == want
