"""Directions: Gaussian, filter-normalised (Li et al. 2018), PCA of a trajectory, Hessian eigenvectors, user-given."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from losslab import LosslabError
from losslab.fit import train
from losslab.landscape import (
    as_direction,
    eigenvector_directions,
    filter_normalized,
    is_bias,
    pca_directions,
    random_direction,
)

from references import dense_hessian

DT = torch.float64


def test_random_direction_is_seeded(make_case):
    prob = make_case("mlp-relu").problem()
    d = random_direction(prob, seed=4)
    assert d.shape == (prob.n_params,) and d.dtype == DT
    assert torch.equal(d, random_direction(prob, seed=4))
    assert not torch.equal(d, random_direction(prob, seed=5))
    assert torch.equal(random_direction(prob.to(torch.float32), seed=4), d.float())


@pytest.mark.parametrize(
    ("name", "shape", "bias"),
    [("b", (4,), True), ("c", (), True), ("b2", (3,), True), ("0.bias", (3,), True), ("v", (4,), False),
     ("coef", (6,), False), ("W", (4, 2), False), ("bias_matrix", (2, 2), False), ("w", (2,), False)],
)  # fmt: skip
def test_is_bias(name, shape, bias):
    assert is_bias(name, shape) is bias


def rows(tensor: torch.Tensor, group_shape: tuple[int, ...]) -> torch.Tensor:
    n = group_shape[0] if len(group_shape) >= 2 else 1
    return tensor.reshape(n, -1)


@pytest.mark.parametrize("name", ["two-layer-tanh-c", "mlp-relu", "torch-module", "poly-2d-deg2", "linear-mse"])
@pytest.mark.parametrize("ignore_biases", [True, False])
def test_filter_normalized_gives_each_filter_the_centres_norm(make_case, name, ignore_biases):
    case = make_case(name)
    prob = case.problem()
    center = case.theta(prob)
    d = filter_normalized(prob, center, seed=3, ignore_biases=ignore_biases)
    assert d.shape == center.shape and d.dtype == DT
    filters = 0
    for g, where in prob.slices().items():
        group_shape = prob.model.shapes[g]
        if ignore_biases and is_bias(g, group_shape):
            assert bool((d[where] == 0).all()), g
            continue
        want = rows(center[where], group_shape).norm(dim=1)
        got = rows(d[where], group_shape).norm(dim=1)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
        filters += len(want)
        # each filter keeps its direction: a positive multiple of the raw Gaussian's filter
        raw = rows(random_direction(prob, seed=3)[where], group_shape)
        cos = (rows(d[where], group_shape) * raw).sum(1) / (got * raw.norm(dim=1))
        torch.testing.assert_close(cos, torch.ones_like(cos), rtol=0, atol=1e-12)
    assert filters > 0


def test_filter_normalized_rows_of_a_weight_matrix_and_given_directions(make_case):
    case = make_case("two-layer-tanh")
    prob = case.problem()
    center = case.theta(prob)
    W = center[prob.slices()["W"]].reshape(4, 2)
    direction = {"W": torch.tensor([[1.0, 0.0], [0.0, -2.0], [0.0, 0.0], [3.0, 4.0]], dtype=DT), "v": torch.ones(4, dtype=DT)}
    d = prob.unflatten(filter_normalized(prob, center, direction))
    torch.testing.assert_close(d["W"][0], torch.stack([W[0].norm(), torch.zeros((), dtype=DT)]), rtol=1e-14, atol=0)
    torch.testing.assert_close(d["W"][1], torch.stack([torch.zeros((), dtype=DT), -W[1].norm()]), rtol=1e-14, atol=0)
    assert bool((d["W"][2] == 0).all())  # a zero filter of the direction stays zero
    torch.testing.assert_close(d["W"][3], W[3].norm() * torch.tensor([0.6, 0.8], dtype=DT), rtol=1e-14, atol=0)
    torch.testing.assert_close(d["v"].norm(), center[prob.slices()["v"]].norm(), rtol=1e-14, atol=0)
    assert bool((d["b"] == 0).all())


def test_filter_normalized_restricted_and_float32(make_case):
    case = make_case("mlp-relu")
    full = case.problem()
    sub = full.restrict(["W1", "b1"], at=case.params(0))
    center = sub.flatten(case.params(0))
    d = filter_normalized(sub, center, seed=1)
    assert d.shape == (12,) and bool((d[9:] == 0).all())
    torch.testing.assert_close(d[:9].reshape(3, 3).norm(dim=1), center[:9].reshape(3, 3).norm(dim=1), rtol=1e-12, atol=0)
    d32 = filter_normalized(sub.to(torch.float32), center.float(), seed=1)
    assert d32.dtype == torch.float32
    torch.testing.assert_close(d32, d.float(), rtol=1e-6, atol=1e-7)


def test_filter_normalized_zero_result_is_an_error(make_case):
    prob = make_case("poly-1d-deg3").problem()
    with pytest.raises(LosslabError, match="the centre's filters are 0"):
        filter_normalized(prob, torch.zeros(4, dtype=DT))
    lin = make_case("linear-mse").problem().restrict(["c"], at={"w": torch.ones(3, dtype=DT), "c": torch.ones((), dtype=DT)})
    with pytest.raises(LosslabError, match="pass ignore_biases=False"):
        filter_normalized(lin, torch.ones(1, dtype=DT))
    assert float(filter_normalized(lin, -2 * torch.ones(1, dtype=DT), torch.ones(1), ignore_biases=False)[0]) == 2.0


def test_pca_directions_match_numpy_svd(make_case):
    prob = make_case("two-layer-tanh").problem()
    run = train(prob, optimizer="gd", lr=0.1, steps=60, seed=1, record_every=3)
    pca = pca_directions(run, k=3)
    D = pca.directions
    assert D.shape == (3, prob.n_params) and D.dtype == DT
    torch.testing.assert_close(D @ D.T, torch.eye(3, dtype=DT), rtol=0, atol=1e-12)
    M = (run.thetas - run.thetas[-1]).numpy()
    _, s, vt = np.linalg.svd(M, full_matrices=False)
    torch.testing.assert_close(pca.explained_variance_ratio, torch.from_numpy(s[:3] ** 2 / (s**2).sum()), rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(pca.singular_values, torch.from_numpy(s[:3]), rtol=1e-10, atol=0)
    assert bool((pca.explained_variance_ratio.diff() <= 0).all()) and float(pca.explained_variance_ratio.sum()) <= 1 + 1e-12
    for i in range(3):
        cos = abs(float(D[i] @ torch.from_numpy(vt[i])))
        assert cos == pytest.approx(1.0, abs=1e-9)
    torch.testing.assert_close(pca.coords, torch.from_numpy(M) @ D.T, rtol=1e-12, atol=1e-14)
    assert torch.equal(pca.center, run.thetas[-1])
    assert torch.equal(pca_directions(run.thetas, k=3).directions, D)  # a tensor or the trajectory


def test_pca_directions_center_and_errors():
    thetas = torch.tensor([[3.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], dtype=DT)
    pca = pca_directions(thetas, k=2, center=torch.zeros(3, dtype=DT))
    assert pca.directions.shape == (2, 3)
    with pytest.raises(LosslabError, match="at least 2 snapshots"):
        pca_directions(thetas[:1], k=1)
    with pytest.raises(LosslabError, match=r"expected k <= min\(m, p\) = 3"):
        pca_directions(thetas, k=4)
    with pytest.raises(LosslabError, match="expected k <= 1, the number of directions the trajectory moves in"):
        pca_directions(torch.tensor([[1.0, 1.0], [2.0, 2.0], [0.0, 0.0]], dtype=DT), k=2)
    with pytest.raises(LosslabError, match="moves away from the centre"):
        pca_directions(torch.ones(4, 3, dtype=DT), k=1)


@pytest.mark.parametrize("which", ["largest", "smallest"])
@pytest.mark.parametrize(("name", "k"), [("two-layer-tanh", 3), ("poly-1d-deg3", 3), ("mlp-deep-linear", 2)])
def test_eigenvector_directions_match_dense_hessian(make_case, which, name, k):
    case = make_case(name)
    prob = case.problem()
    theta = case.theta(prob)
    H = dense_hessian(prob.loss, theta)
    vals, vecs = torch.linalg.eigh(H)
    order = torch.arange(k) if which == "smallest" else torch.arange(len(vals) - 1, len(vals) - 1 - k, -1)
    res = eigenvector_directions(prob, theta, k=k, which=which, seed=0)
    assert res.directions.shape == (k, prob.n_params) and res.which == which and res.hvps > 0
    scale = float(vals.abs().max())
    torch.testing.assert_close(res.eigenvalues, vals[order], rtol=0, atol=1e-9 * scale)
    torch.testing.assert_close(res.directions @ res.directions.T, torch.eye(k, dtype=DT), rtol=0, atol=1e-9)
    gaps = (vals[:, None] - vals[None, :]).abs() + torch.eye(len(vals), dtype=DT) * scale
    for row, i in zip(res.directions, order.tolist()):
        assert float(gaps[i].min()) > 1e-4 * scale  # a simple eigenvalue: the vector is defined up to sign
        assert abs(float(row @ vecs[:, i])) == pytest.approx(1.0, abs=1e-7)


def test_eigenvector_directions_errors(make_case):
    prob = make_case("poly-1d-deg3").problem()
    with pytest.raises(LosslabError, match="expected k <= p = 4"):
        eigenvector_directions(prob, prob.init(0), k=5)
    with pytest.raises(LosslabError, match="unknown which 'top'"):
        eigenvector_directions(prob, prob.init(0), which="top")


def test_as_direction(make_case):
    case = make_case("two-layer-tanh-c")
    prob = case.problem()
    d = as_direction(prob, {"v": torch.ones(4)})
    assert d.dtype == DT and d.shape == (17,) and float(d.sum()) == 4.0 and bool((d[prob.slices()["v"]] == 1).all())
    assert torch.equal(as_direction(prob, np.arange(17.0)), torch.arange(17.0, dtype=DT))
    with pytest.raises(LosslabError, match="expected a non-zero direction, got all zeros"):
        as_direction(prob, torch.zeros(17))
    with pytest.raises(LosslabError, match=r"expected direction of shape \(17,\), got shape \(16,\)"):
        as_direction(prob, torch.ones(16))
    with pytest.raises(LosslabError, match="expected direction to be finite"):
        as_direction(prob, torch.full((17,), float("inf")))
    with pytest.raises(LosslabError, match=r"expected direction\['c'\] of shape \(\)"):
        as_direction(prob, {"c": torch.ones(1)})


def test_a_plane_at_zero_on_an_objective_asks_for_directions_not_filters_and_works_with_them():
    from losslab import LosslabError, Problem
    from losslab.landscape import plane

    def rosenbrock(p):
        x, y = p["xy"][0], p["xy"][1]
        return (1 - x) ** 2 + 100 * (y - x**2) ** 2

    prob = Problem.from_objective(rosenbrock, shapes={"xy": (2,)})
    with pytest.raises(LosslabError, match=r"zero centre of the objective 'rosenbrock', which has no filters: pass your "
                                           r"own directions") as err:
        plane(prob, torch.zeros(2, dtype=torch.float64))
    assert "biases" not in str(err.value) and "\n" not in str(err.value)
    s = plane(prob, torch.zeros(2, dtype=torch.float64), [1.0, 0.0], [0.0, 1.0], steps=3)
    x = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    X, Y = torch.meshgrid(x, x, indexing="ij")
    assert torch.allclose(s.losses, (1 - X) ** 2 + 100 * (Y - X**2) ** 2, rtol=1e-12, atol=0)
