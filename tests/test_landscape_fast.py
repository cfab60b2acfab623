"""The layer kernels on users' nn.Sequential modules: equal to loss_batch and to the module's own forward + torch loss."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from losslab import LosslabError, Problem
from losslab.landscape import backend, combine, evaluate_combinations, evaluate_points, fast, line, plane
from losslab.models import MLP, Module, TwoLayer
from losslab.models.layers import Layer, sequential_layers

DT = torch.float64
TOL = {torch.float64: 1e-12, torch.float32: 1e-6}
IMPLEMENTATIONS = ["auto", "layers", "layers per point", "vmap", "per point"]


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    return float(((got.to(DT) - want.to(DT)).abs() / want.to(DT).abs()).max())


def frozen_mse() -> tuple[nn.Module, str]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 1))
    net[0].requires_grad_(False)  # a frozen body: held as constants
    return net, "mse"


def sigmoid_bce() -> tuple[nn.Module, str]:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 1, bias=False), nn.Sigmoid()), "bce"


def nested_cross_entropy() -> tuple[nn.Module, str]:
    torch.manual_seed(2)
    inner = nn.Sequential(nn.Linear(5, 4), nn.Sigmoid())
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), inner, nn.Identity(), nn.Linear(4, 3)), "cross_entropy"


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.inp, self.block, self.out = nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 1)

    def forward(self, x):
        h = self.inp(x)
        return self.out(h + torch.tanh(self.block(h)))


def residual_mse() -> tuple[nn.Module, str]:
    return Residual(), "mse"


TORCH_LOSS = {"mse": nn.MSELoss(), "bce": nn.BCELoss(), "cross_entropy": nn.CrossEntropyLoss()}


def data(loss: str, n: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    X = torch.rand(n, 3, generator=g(5), dtype=DT) * 2 - 1
    if loss == "cross_entropy":
        return X, torch.randint(0, 3, (n,), generator=g(6))
    y = torch.rand(n, generator=g(6), dtype=DT)
    return X, (y if loss == "bce" else 3 * y - 1)


def own_loop(prob: Problem, net: nn.Module, Theta: torch.Tensor) -> torch.Tensor:
    """The user's own forward and torch loss at each point, weights copied into a float64 copy of ``net``."""
    net = copy.deepcopy(net).to(DT).eval()
    X, y = data(prob.loss_fn.name)
    out = []
    with torch.no_grad():
        for theta in Theta.to(DT):
            params = prob.unflatten(theta)
            for name, p in net.named_parameters():
                if name in params:
                    p.copy_(params[name])
            f = net(X)
            f = f[:, 0] if f.shape[1] == 1 else f
            value = TORCH_LOSS[prob.loss_fn.name](f, y)
            out.append(value + prob.l2 * sum((v.to(DT) ** 2).sum() for v in params.values()))
    return torch.stack(out)


def problems(make, dtype):
    """The full problem with L2, and the last layer with the rest held fixed, in ``dtype``."""
    net, loss = make()
    X, y = data(loss)
    full = Problem(Module(net.to(dtype)), X.to(dtype), y.to(dtype) if y.is_floating_point() else y, loss, l2=0.03)
    last = full.groups[-2:] if len(full.groups) > 2 else full.groups[-1:]
    return net, [full, full.restrict(last, at=full.default_theta() + 0.1)]


def points(prob: Problem, K: int) -> torch.Tensor:
    return prob.default_theta() + 0.7 * torch.randn(K, prob.n_params, generator=g(7), dtype=DT).to(prob.dtype)


@pytest.mark.parametrize("make", [frozen_mse, sigmoid_bce, nested_cross_entropy])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_sequential_modules_take_the_layer_kernels_and_equal_their_own_forward(make, dtype):
    net, probs = problems(make, dtype)
    for prob in probs:
        assert backend(prob) == "layers" and prob.model.layers() is not None
        Theta = points(prob, 17)
        want = prob.loss_batch(Theta)
        own = own_loop(prob, net, Theta)
        assert rel_err(want, own) <= TOL[dtype]
        for how in IMPLEMENTATIONS:
            got = evaluate_points(prob, Theta, implementation=how)
            assert got.dtype == dtype and got.shape == (17,)
            assert rel_err(got, want) <= TOL[dtype], (how, prob.groups)
            assert rel_err(got, own) <= 2 * TOL[dtype], (how, prob.groups)


def test_frozen_layers_are_held_not_moved():
    _, [prob, _] = problems(frozen_mse, DT)
    assert prob.model.frozen == ("0.weight", "0.bias") and "0.weight" not in prob.groups
    assert prob.model.layers()[0] == Layer("0.weight", "0.bias", "tanh")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_module_with_its_own_forward_takes_vmap_and_equals_it(dtype):
    net, probs = problems(residual_mse, dtype)
    for prob in probs:
        assert prob.model.layers() is None and backend(prob) == "vmap"
        with pytest.raises(LosslabError, match="implementation='layers'"):
            backend(prob, "layers")
        Theta = points(prob, 9)
        own = own_loop(prob, net, Theta)
        for how in ("auto", "vmap", "per point"):
            assert rel_err(evaluate_points(prob, Theta, implementation=how), own) <= 2 * TOL[dtype], how


def loader(X, y, batch_size):
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=batch_size)


@pytest.mark.parametrize("make", [frozen_mse, sigmoid_bce, nested_cross_entropy])
@pytest.mark.parametrize("merge", [None, 1, 100])  # batches merged: all, none, pairs (rows × widest ≤ 100)
def test_a_dataloader_of_uneven_batches_equals_one_tensor(monkeypatch, make, merge):
    if merge is not None:
        monkeypatch.setattr(fast, "MERGE_ACTIVATIONS", merge)
    net, loss = make()
    X, y = data(loss)
    one = Problem(Module(net.to(DT)), X, y, loss, l2=0.02)
    many = Problem(Module(net.to(DT)), loader(X, y, 7), loss=loss, l2=0.02)  # 7, 7, 7, 7, 2
    assert many.data.count == 5
    Theta = points(one, 11)
    want = one.loss_batch(Theta)
    for how in IMPLEMENTATIONS:
        assert rel_err(evaluate_points(many, Theta, implementation=how), want) <= 1e-12, how
    s1 = plane(one, one.default_theta(), steps=5, seed=1, method="grid")
    s2 = plane(many, many.default_theta(), steps=5, seed=1, method="grid")
    assert rel_err(s2.losses, s1.losses) <= 1e-12


@pytest.mark.parametrize("model", [MLP([3, 5, 4, 1], "tanh"), TwoLayer(3, 6, "relu", out_bias=True), MLP([3, 4, 3], "sigmoid")])
def test_built_in_models_over_a_dataloader(model):
    loss = "cross_entropy" if isinstance(model, MLP) and model.widths[-1] > 1 else "mse"
    X, y = data(loss)
    one = Problem(model, X, y, loss, l2=0.01)
    many = Problem(model, loader(X, y, 8), loss=loss, l2=0.01)
    for prob_one, prob_many in ((one, many), (one.restrict(one.groups[:2]), many.restrict(many.groups[:2]))):
        Theta = prob_one.init(1) + torch.randn(13, prob_one.n_params, generator=g(8), dtype=DT)
        want = prob_one.loss_batch(Theta)
        for how in ("layers", "layers per point"):
            assert rel_err(evaluate_points(prob_one, Theta, implementation=how), want) <= 1e-12
            assert rel_err(evaluate_points(prob_many, Theta, implementation=how), want) <= 1e-12


def test_mlp_forward_equals_the_same_sequential():
    """The shared forward of the layer spec is the nn.Sequential a user would write."""
    mlp = MLP([3, 5, 4, 2], "tanh")
    params = mlp.init(seed=4)
    net = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2)).to(DT)
    for i, lin in enumerate([net[0], net[2], net[4]]):
        lin.weight.data, lin.bias.data = params[f"W{i}"], params[f"b{i}"]
    X = torch.rand(9, 3, generator=g(9), dtype=DT)
    assert torch.allclose(mlp.logit(params, X), net(X), rtol=1e-14, atol=0)
    two = TwoLayer(3, 4, "relu", out_bias=True)
    p2 = two.init(seed=5)
    p2["c"] = torch.tensor(0.3, dtype=DT)
    want = torch.relu(X @ p2["W"].T + p2["b"]) @ p2["v"] + 0.3
    assert torch.allclose(two.logit(p2, X), want, rtol=1e-14, atol=0)


class MyLinear(nn.Linear):
    def forward(self, x):
        return super().forward(x) * 2


@pytest.mark.parametrize(
    "seq",
    [
        nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Tanh(), nn.Linear(3, 1)),  # two activations in a row
        nn.Sequential(nn.Tanh(), nn.Linear(2, 1)),  # an activation first
        nn.Sequential(nn.Linear(2, 3), nn.LayerNorm(3), nn.Linear(3, 1)),  # not elementwise
        nn.Sequential(MyLinear(2, 3), nn.Linear(3, 1)),  # a Linear with its own forward
        nn.Sequential(nn.Linear(2, 3), nn.GELU(approximate="tanh"), nn.Linear(3, 1)),
        Residual(),
    ],
)
def test_only_plain_chains_of_linear_and_activations_get_a_spec(seq):
    assert sequential_layers(seq) is None


def test_a_spec_names_the_module_parameters():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 3, bias=False), nn.Identity()), nn.Linear(3, 1))
    want = (Layer("0.weight", "0.bias", "relu"), Layer("2.0.weight", None, None), Layer("3.weight", "3.bias", None))
    assert sequential_layers(seq) == want
    assert Module(seq, output=None).layers() is not None


def test_a_subclass_that_overrides_logit_loses_the_spec():
    class Doubled(MLP):
        def logit(self, params, X):
            return 2 * super().logit(params, X)

    X, y = data("mse")
    prob = Problem(Doubled([3, 4, 1], "tanh"), X, y)
    assert backend(prob) == "vmap"
    Theta = prob.init(0) + torch.randn(5, prob.n_params, generator=g(1), dtype=DT)
    assert rel_err(evaluate_points(prob, Theta), torch.stack([prob.loss(t) for t in Theta])) <= 1e-12


@pytest.mark.parametrize("make", [frozen_mse, sigmoid_bce, nested_cross_entropy])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_combinations_share_the_first_layer_and_equal_the_combined_points(make, dtype):
    """A plane's points through fast.loss_combinations (first layer as Z_base + Σ c_j Z_j) equal the same points one by one."""
    _, probs = problems(make, dtype)
    first_fixed = probs[0].restrict(probs[0].groups[1:], at=probs[0].default_theta() + 0.2)  # first free group held fixed
    for prob in [*probs, first_fixed]:
        center = prob.default_theta()
        V = torch.randn(2, prob.n_params, generator=g(9), dtype=DT).to(dtype)
        coords = torch.randn(23, 2, generator=g(10), dtype=DT).to(dtype)
        want = evaluate_points(prob, combine(coords, V, center), implementation="vmap")
        got = evaluate_combinations(prob, coords, V, center, implementation="layers")
        assert got.shape == (23,) and got.dtype == dtype
        assert rel_err(got, want) <= TOL[dtype], prob.groups
        assert rel_err(evaluate_combinations(prob, coords, V, None, implementation="layers"),
                       evaluate_points(prob, combine(coords, V), implementation="vmap")) <= TOL[dtype]
        s = line(prob, center, center + V[0], steps=7)
        on_line = combine(torch.stack([1 - s.t, s.t], dim=1), torch.stack([s.a, s.b]))
        assert rel_err(s.losses, evaluate_points(prob, on_line, implementation="vmap")) <= TOL[dtype]


def test_combinations_over_a_dataloader_in_chunks_equal_one_tensor(monkeypatch):
    monkeypatch.setattr(fast, "BATCH_ACTIVATIONS", 64)  # many chunks of a few points
    monkeypatch.setattr(fast, "MERGE_ACTIVATIONS", 40)  # batches not merged
    net, loss = frozen_mse()
    X, y = data(loss)
    one = Problem(Module(net.to(DT)), X, y, loss, l2=0.02)
    many = Problem(Module(net.to(DT)), loader(X, y, 7), loss=loss, l2=0.02)
    coords = torch.randn(31, 2, generator=g(11), dtype=DT)
    V = torch.randn(2, one.n_params, generator=g(12), dtype=DT)
    want = one.loss_batch(combine(coords, V, one.default_theta()))
    assert rel_err(evaluate_combinations(many, coords, V, one.default_theta(), implementation="layers"), want) <= 1e-12


@pytest.mark.parametrize(
    ("coords", "vectors", "base", "match"),
    [
        (torch.zeros(4, 2), torch.zeros(2, 8), "center", r"expected vectors of shape \(\*, 7\), got shape \(2, 8\)"),
        (torch.zeros(4, 2), torch.zeros(2, 7), torch.zeros(9), r"expected base of shape \(7,\), got shape \(9,\)"),
        (torch.zeros(4, 3), torch.zeros(2, 7), "center", r"expected coords of shape \(\*, 2\), got shape \(4, 3\)"),
        (torch.zeros(4), torch.zeros(2, 7), "center", r"expected coords of shape \(\*, 2\), got shape \(4,\)"),
        (torch.full((4, 2), float("nan")), torch.zeros(2, 7), "center", "expected coords to be finite"),
        (torch.zeros(4, 2, dtype=torch.complex64), torch.zeros(2, 7), "center", "expected coords to hold real numbers"),
    ],
)
@pytest.mark.parametrize("how", ["layers", "vmap", "per point"])
def test_combinations_of_the_wrong_shape_are_one_line_on_every_path(coords, vectors, base, match, how):
    net = nn.Sequential(nn.Linear(1, 2), nn.Tanh(), nn.Linear(2, 1)).to(DT)
    prob = Problem(Module(net), torch.linspace(-1, 1, 6, dtype=DT)[:, None], torch.zeros(6, dtype=DT))
    assert prob.n_params == 7
    base = prob.default_theta() if isinstance(base, str) else base
    with pytest.raises(LosslabError, match=match):
        evaluate_combinations(prob, coords, vectors, base, implementation=how)


def test_combinations_take_arrays_and_no_points():
    net = nn.Sequential(nn.Linear(1, 2), nn.Tanh(), nn.Linear(2, 1)).to(DT)
    prob = Problem(Module(net), torch.linspace(-1, 1, 6, dtype=DT)[:, None], torch.zeros(6, dtype=DT))
    V = torch.randn(2, 7, generator=g(13), dtype=DT)
    got = evaluate_combinations(prob, [[0.5, -0.25]], V.numpy(), None)
    assert torch.allclose(got, prob.loss_batch(combine(torch.tensor([[0.5, -0.25]], dtype=DT), V)), rtol=1e-12)
    assert evaluate_combinations(prob, torch.zeros(0, 2), V, None).shape == (0,)


def test_a_plane_of_parallel_directions_is_refused():
    _, [prob, _] = problems(frozen_mse, DT)
    d = torch.randn(prob.n_params, generator=g(14), dtype=DT)
    with pytest.raises(LosslabError, match="expected two independent directions d1 and d2, got parallel ones"):
        plane(prob, prob.default_theta(), d, -2 * d, steps=3)
