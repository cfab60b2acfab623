"""Models: outputs against independent references, purity, declared affine structure, symmetries."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from losslab import LosslabError
from losslab.models import MLP, Linear, Linearized, Module, Polynomial, RandomFeatures, TwoLayer, monomial_exponents
from losslab.models.polynomial import MAX_MONOMIALS

from _helpers import gen, moved, rand_X

DT = torch.float64


def second_directional_derivative(model, params, X, direction) -> torch.Tensor:
    """d²/dt² logit(params + t·direction, X) at t = 0, by forward-over-forward mode."""
    t0, one = torch.zeros((), dtype=DT), torch.ones((), dtype=DT)

    def f(t):
        return model.logit(moved(params, direction, t), X)

    def df(t):
        return torch.func.jvp(f, (t,), (one,))[1]

    return torch.func.jvp(df, (t0,), (one,))[1]


# ---- Polynomial ----------------------------------------------------------------------------


@pytest.mark.parametrize(("d", "k"), [(1, 0), (1, 1), (1, 5), (2, 2), (3, 4), (5, 3), (10, 2), (4, 6)])
def test_polynomial_n_params_is_binomial(d, k):
    model = Polynomial(d, k)
    assert model.n_params == math.comb(d + k, k)
    assert model.shapes == {"coef": (math.comb(d + k, k),)}
    assert model.exponents.shape == (math.comb(d + k, k), d)


def test_monomial_count_in_100_variables_degree_4():
    # The design's headline number, and the model builds without a 4.6M x 100 exponent table.
    assert math.comb(100 + 4, 4) == 4_598_126
    model = Polynomial(100, 4)
    assert model.n_params == 4_598_126
    X = torch.randn(3, 100, generator=torch.Generator().manual_seed(0), dtype=DT)
    feats = model.features(X)
    assert feats.shape == (3, 4_598_126)
    # spot-check monomials against brute force: the last (x_99^4) and a mixed one of degree 4
    assert torch.allclose(feats[:, -1], X[:, 99] ** 4, rtol=1e-13)
    combos = list(itertools.islice(itertools.combinations_with_replacement(range(100), 4), 777, 778))
    index = 1 + 100 + math.comb(101, 2) + math.comb(102, 3) + 777
    assert torch.allclose(feats[:, index], torch.prod(X[:, list(combos[0])], dim=1), rtol=1e-13)
    with pytest.raises(LosslabError, match=r"expected at most 20,000,000 exponent entries, got 4,598,126 monomials × 100"):
        model.exponents  # noqa: B018


@pytest.mark.parametrize(("d", "k"), [(1, 4), (2, 3), (3, 3), (4, 2)])
def test_exponents_are_exactly_the_multi_indices_of_degree_at_most_k(d, k):
    alphas = monomial_exponents(d, k).tolist()
    brute = {a for a in itertools.product(range(k + 1), repeat=d) if sum(a) <= k}
    assert len(alphas) == len(set(map(tuple, alphas)))  # no duplicates
    assert set(map(tuple, alphas)) == brute
    degrees = [sum(a) for a in alphas]
    assert degrees == sorted(degrees)  # ordered by total degree
    assert alphas[0] == [0] * d


@pytest.mark.parametrize(("d", "k"), [(1, 3), (2, 3), (3, 2)])
def test_polynomial_features_are_brute_force_monomials(d, k):
    model = Polynomial(d, k)
    X = rand_X(6, d, seed=d + k)
    feats = model.features(X)
    for i, x in enumerate(X.tolist()):
        for j, alpha in enumerate(model.exponents.tolist()):
            assert feats[i, j].item() == pytest.approx(math.prod(xi**a for xi, a in zip(x, alpha)), rel=1e-13, abs=1e-15)


def test_polynomial_1d_matches_numpy_polyval():
    model = Polynomial(1, 4)
    coef = model.init(seed=2)["coef"]
    x = np.linspace(-1.5, 1.5, 11)
    got = model.apply({"coef": coef}, torch.tensor(x)[:, None]).numpy()
    np.testing.assert_allclose(got, np.polynomial.polynomial.polyval(x, coef.numpy()), rtol=1e-13, atol=1e-14)


def test_polynomial_degree_zero_is_the_constant_model():
    model = Polynomial(3, 0)
    assert model.n_params == 1
    X = rand_X(7, 3, seed=0) * 10
    np.testing.assert_array_equal(model.features(X).numpy(), np.ones((7, 1)))
    out = model.apply({"coef": torch.tensor([2.5], dtype=DT)}, X)
    np.testing.assert_array_equal(out.numpy(), np.full(7, 2.5))


@pytest.mark.parametrize("degree", [-1, -5, 2.0, True, "2"])
def test_polynomial_rejects_bad_degree(degree):
    with pytest.raises(LosslabError, match=rf"expected degree to be an integer >= 0, got degree={degree!r}"):
        Polynomial(1, degree)


def test_polynomial_rejects_huge_monomial_counts_without_building_them():
    count = math.comb(100 + 5, 5)
    with pytest.raises(LosslabError, match=rf"expected at most {MAX_MONOMIALS:,} monomials, got .*C\(100\+5, 5\) = {count:,}"):
        Polynomial(100, 5)
    with pytest.raises(LosslabError, match=r"expected at most 100,000,000 feature entries, got n=30 × 4,598,126 monomials"):
        Polynomial(100, 4).features(torch.zeros(30, 100, dtype=DT))
    with pytest.raises(LosslabError, match="monomials"):
        Polynomial(1000, 3)


# ---- the other models against hand-written formulas ---------------------------------------------


def test_linear_matches_numpy():
    model = Linear(3, output="sigmoid")
    X = rand_X(8, 3, seed=1)
    p = {"w": torch.tensor([0.5, -1.0, 2.0], dtype=DT), "c": torch.tensor(0.25, dtype=DT)}
    z = X.numpy() @ np.array([0.5, -1.0, 2.0]) + 0.25
    np.testing.assert_allclose(model.logit(p, X).numpy(), z, rtol=1e-14)
    np.testing.assert_allclose(model.apply(p, X).numpy(), 1 / (1 + np.exp(-z)), rtol=1e-14)
    assert Linear(3).link is None and model.link == "sigmoid"


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "identity"])
@pytest.mark.parametrize("out_bias", [False, True])
def test_two_layer_matches_a_loop_over_hidden_units(activation, out_bias):
    sigma = {"relu": lambda z: max(z, 0.0), "tanh": math.tanh, "sigmoid": lambda z: 1 / (1 + math.exp(-z)), "identity": lambda z: z}
    model = TwoLayer(d_in=2, width=3, activation=activation, out_bias=out_bias)
    p = model.init(seed=5)
    if out_bias:
        p["c"] = torch.tensor(-0.7, dtype=DT)
    X = rand_X(6, 2, seed=2)
    W, b, v = p["W"].tolist(), p["b"].tolist(), p["v"].tolist()
    for i, x in enumerate(X.tolist()):
        ref = sum(v[j] * sigma[activation](W[j][0] * x[0] + W[j][1] * x[1] + b[j]) for j in range(3)) + (-0.7 if out_bias else 0.0)
        assert model.apply(p, X)[i].item() == pytest.approx(ref, rel=1e-13, abs=1e-15)


def test_random_features_are_a_fixed_two_layer_net():
    rf = RandomFeatures(d_in=2, width=6, activation="tanh", seed=3)
    net = TwoLayer(d_in=2, width=6, activation="tanh")
    X, v = rand_X(9, 2, seed=3), torch.randn(6, generator=gen(0), dtype=DT)
    np.testing.assert_allclose(rf.apply({"v": v}, X).numpy(), net.apply({"W": rf.W, "b": rf.b, "v": v}, X).numpy(), rtol=1e-13)
    # the features are fixed by the seed, and given W, b are used as they are
    assert torch.equal(RandomFeatures(2, 6, "tanh", seed=3).W, rf.W)
    assert not torch.equal(RandomFeatures(2, 6, "tanh", seed=4).W, rf.W)
    W, b = torch.ones(6, 2, dtype=DT), torch.zeros(6, dtype=DT)
    given = RandomFeatures(d_in=2, width=6, activation="relu", W=W, b=b)
    np.testing.assert_allclose(given.features(X).numpy(), np.maximum(X.sum(1, keepdim=True).numpy(), 0).repeat(6, 1))


@pytest.mark.parametrize(
    ("widths", "act", "out_act"), [([2, 3, 3, 1], "relu", None), ([2, 4, 3], "tanh", "sigmoid"), ([1, 1, 1], "relu", "relu")]
)
def test_mlp_matches_torch_sequential(widths, act, out_act):
    model = MLP(widths, act, out_activation=out_act)
    p = model.init(seed=7)
    layers = []
    for i in range(len(widths) - 1):
        lin = torch.nn.Linear(widths[i], widths[i + 1]).to(DT)
        with torch.no_grad():
            lin.weight.copy_(p[f"W{i}"])
            lin.bias.copy_(p[f"b{i}"])
        layers.append(lin)
        if i < len(widths) - 2:
            layers.append({"relu": torch.nn.ReLU(), "tanh": torch.nn.Tanh()}[act])
    if out_act is not None:
        layers.append({"relu": torch.nn.ReLU(), "sigmoid": torch.nn.Sigmoid()}[out_act])
    X = rand_X(10, widths[0], seed=4)
    with torch.no_grad():
        ref = torch.nn.Sequential(*layers)(X)
    ref = ref[:, 0] if widths[-1] == 1 else ref
    torch.testing.assert_close(model.apply(p, X), ref, rtol=1e-13, atol=1e-15)
    assert model.link == ("sigmoid" if out_act == "sigmoid" else None)


def test_mlp_shapes_follow_widths():
    model = MLP([3, 5, 2])
    assert model.shapes == {"W0": (5, 3), "b0": (5,), "W1": (2, 5), "b1": (2,)}
    assert model.n_params == 5 * 3 + 5 + 2 * 5 + 2
    assert model.apply(model.init(), rand_X(4, 3, 0)).shape == (4, 2)
    assert MLP([3, 5, 1]).apply(MLP([3, 5, 1]).init(), rand_X(4, 3, 0)).shape == (4,)


# ---- every model: purity and reproducibility ----------------------------------------------------


def test_init_has_the_declared_shapes_and_dtype(case):
    model = case.model
    for dtype in (torch.float32, torch.float64):
        p = model.init(seed=1, dtype=dtype)
        assert tuple(p) == model.groups
        assert {k: tuple(v.shape) for k, v in p.items()} == model.shapes
        assert all(v.dtype == dtype for v in p.values())
    assert model.n_params == sum(math.prod(s) for s in model.shapes.values())
    # float32 init is the float64 init to float32 rounding (one draw, two dtypes)
    p32, p64 = model.init(seed=1, dtype=torch.float32), model.init(seed=1, dtype=DT)
    assert all(torch.allclose(p32[k].to(DT), p64[k], rtol=3e-7, atol=0) for k in p32)


def test_init_is_reproducible_and_seeds_differ(case):
    model = case.model
    torch.manual_seed(12345)  # a state no init(seed) could leave behind
    state = torch.get_rng_state()
    a, b, c = model.init(seed=0), model.init(seed=0), model.init(seed=1)
    assert torch.equal(torch.get_rng_state(), state), "init must not consume the global RNG"
    assert all(torch.equal(a[k], b[k]) for k in a)
    if isinstance(model, Linearized):  # its init is the expansion point, whatever the seed
        assert all(torch.equal(a[k], c[k]) for k in a)
        assert all(torch.equal(a[k], model.params0[k]) for k in a)
        a[next(iter(a))].add_(1.0)  # the returned dict is a copy
        assert torch.equal(model.init()[next(iter(a))], model.params0[next(iter(a))])
    else:
        assert any(not torch.equal(a[k], c[k]) for k in a)


def test_apply_is_a_pure_function(case):
    model, X = case.model, case.X
    p = case.params(0)
    snapshot = {k: v.clone() for k, v in p.items()}
    X_before = X.clone()
    torch.manual_seed(0)
    first = model.apply(p, X)
    torch.manual_seed(123)  # global RNG state must not matter
    second = model.apply(p, X)
    assert torch.equal(first, second)
    assert all(torch.equal(p[k], snapshot[k]) for k in p), "apply must not modify params"
    assert torch.equal(X, X_before)
    assert torch.equal(model(p, X), first)  # __call__ is apply
    # a different point gives a different function
    assert not torch.allclose(model.apply(case.params(1), X), first)
    # rows are independent: applying to a subset gives the subset of outputs
    torch.testing.assert_close(model.apply(p, X[2:5]), first[2:5], rtol=1e-13, atol=1e-15)


def test_apply_vmaps_over_parameter_points(case):
    model, X = case.model, case.X
    pts = [case.params(s) for s in range(3)]
    stacked = {k: torch.stack([p[k] for p in pts]) for k in pts[0]}
    batched = torch.func.vmap(lambda p: model.apply(p, X))(stacked)
    for i, p in enumerate(pts):
        torch.testing.assert_close(batched[i], model.apply(p, X), rtol=1e-12, atol=1e-14)


# ---- declared affine sets are really affine ----------------------------------------------------


def test_second_derivative_helper_matches_finite_differences(make_case):
    case = make_case("two-layer-tanh")
    p, X = case.params(0), case.X
    d = case.direction(case.model.groups, seed=0)
    h = 1e-4
    fd = (case.model.logit(moved(p, d, h), X) - 2 * case.model.logit(p, X) + case.model.logit(moved(p, d, -h), X)) / h**2
    exact = second_directional_derivative(case.model, p, X, d)
    torch.testing.assert_close(exact, fd, rtol=1e-5, atol=1e-5)
    assert exact.abs().max() > 1e-2


def test_declared_affine_sets_have_zero_second_derivative(case):
    model = case.model
    assert model.affine_sets or isinstance(model, (Module, MLP))
    for group_set in model.affine_sets:
        assert group_set <= set(model.groups)
        assert model.is_affine_in(group_set) and model.is_affine_in(sorted(group_set)[:1])
        for seed in range(3):
            d2 = second_directional_derivative(model, case.params(seed), case.X, case.direction(group_set, seed))
            assert d2.abs().max().item() <= 1e-12, f"{case.name} is not affine in {sorted(group_set)}"


def test_declared_affine_sets_satisfy_affine_combinations(case):
    model, X = case.model, case.X
    for group_set in model.affine_sets:
        base = case.params(0)
        a = moved(base, case.direction(group_set, 1), 1.0)
        b = moved(base, case.direction(group_set, 2), -1.0)
        fa, fb = model.logit(a, X), model.logit(b, X)
        for lam in (0.3, -0.7, 2.5):  # affine, not just convex: any real λ
            mix = {k: lam * a[k] + (1 - lam) * b[k] for k in a}
            expected = lam * fa + (1 - lam) * fb
            err = (model.logit(mix, X) - expected).abs().max().item()
            assert err <= 1e-12 * (1 + expected.abs().max().item()), (case.name, sorted(group_set), lam, err)


def test_full_affinity_is_declared_exactly_when_it_holds(case):
    """Declared affine in all groups ⇔ the second derivative along all groups vanishes."""
    model = case.model
    declared = model.is_affine_in(model.groups)
    worst = max(
        second_directional_derivative(model, case.params(seed), case.X, case.direction(model.groups, seed)).abs().max().item()
        for seed in range(4)
    )
    if declared:
        assert worst <= 1e-12
    else:
        assert worst > 1e-3, f"{case.name}: declared non-affine, but no curvature found (worst {worst:g})"


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "identity"])
@pytest.mark.parametrize("out_bias", [False, True])
def test_two_layer_affine_declarations(activation, out_bias):
    model = TwoLayer(d_in=2, width=4, activation=activation, out_bias=out_bias)
    head = {"v", "c"} if out_bias else {"v"}
    assert model.is_affine_in(head)
    assert not model.is_affine_in(model.groups)
    assert not model.is_affine_in({"W", "v"})
    assert model.is_affine_in({"W", "b"}) == (activation == "identity")
    if activation in ("tanh", "sigmoid"):  # then the hidden layer is genuinely curved
        X, p = rand_X(9, 2, 1), model.init(seed=1)
        d = {"W": torch.randn(4, 2, generator=gen(0), dtype=DT), "b": torch.randn(4, generator=gen(1), dtype=DT)}
        assert second_directional_derivative(model, p, X, d).abs().max() > 1e-3


def test_deep_linear_mlp_is_affine_per_layer_but_not_jointly():
    model = MLP([1, 2, 2, 1], "identity")
    assert set(model.affine_sets) == {frozenset({"W2", "b2"}), frozenset({"W0", "b0", "b2"}), frozenset({"W1", "b1", "b2"})}
    X, p = rand_X(8, 1, 2), model.init(seed=2)
    d = {"W0": torch.randn(2, 1, generator=gen(0), dtype=DT), "W1": torch.randn(2, 2, generator=gen(1), dtype=DT)}
    assert not model.is_affine_in({"W0", "W1"})
    assert second_directional_derivative(model, p, X, d).abs().max() > 1e-3


def test_output_activation_removes_the_affine_declaration():
    assert MLP([1, 1, 1], "relu", out_activation="relu").affine_sets == ()
    assert MLP([1, 3, 1], "tanh", out_activation="tanh").affine_sets == ()
    assert MLP([1, 3, 1], "tanh", out_activation="sigmoid").affine_sets == (frozenset({"W1", "b1"}),)  # the logit is affine


# ---- symmetries ------------------------------------------------------------------------------


def test_symmetries_leave_every_output_unchanged(case):
    model = case.model
    p = case.params(0)
    X = torch.cat([case.X, 3 * rand_X(25, case.X.shape[1], seed=9)])
    out = model.apply(p, X)
    syms = model.symmetries(p, gen(0))
    if isinstance(model, (TwoLayer, MLP)):
        assert syms, f"{case.name} has hidden units, so it has symmetries"
    for name, q in syms:
        assert set(q) == set(p) and all(q[k].shape == p[k].shape for k in p)
        assert any(not torch.allclose(q[k], p[k]) for k in p), f"{name} returned the same point"
        torch.testing.assert_close(model.apply(q, X), out, rtol=1e-12, atol=1e-12, msg=f"{case.name}: {name}")
        assert all(torch.equal(p[k], case.params(0)[k]) for k in p), "symmetries must not modify params"


@pytest.mark.parametrize(
    ("activation", "kinds"),
    [
        ("relu", {"permute", "swap", "rescale"}),
        ("tanh", {"permute", "swap", "flip"}),
        ("sigmoid", {"permute", "swap"}),
        ("identity", {"permute", "swap", "flip", "rescale"}),
    ],
)
def test_two_layer_symmetry_kinds_follow_the_activation(activation, kinds):
    model = TwoLayer(d_in=2, width=3, activation=activation)
    names = [name for name, _ in model.symmetries(model.init(), gen(0))]
    assert {n.split()[0] for n in names} == kinds


def test_width_one_relu_chain_has_only_the_rescaling():
    model = MLP([1, 1, 1], "relu", out_activation="relu")
    p = model.init(seed=0)
    ((name, q),) = model.symmetries(p, gen(0))
    assert name.startswith("layer 0: rescale")
    torch.testing.assert_close(q["W0"], 2 * p["W0"])
    torch.testing.assert_close(q["b0"], 2 * p["b0"])
    torch.testing.assert_close(q["W1"], p["W1"] / 2)
