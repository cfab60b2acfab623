"""Tests for losslab.data: shapes, seeds, the hidden targets, label ranges, bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from losslab import LosslabError
from losslab import data as D

GENERATORS = {
    "polynomial_1d": lambda n, seed: D.polynomial_1d(n, seed=seed),
    "cubic": lambda n, seed: D.cubic(n, seed=seed),
    "sine": lambda n, seed: D.sine(n, seed=seed),
    "teacher": lambda n, seed: D.teacher(n, d_in=3, noise=0.1, seed=seed),
    "sparse_monomials": lambda n, seed: D.sparse_monomials(n, d=6, degree=2, n_terms=2, noise=0.1, seed=seed),
    "logistic_labels": lambda n, seed: D.logistic_labels(n, d_in=4, seed=seed),
    "gaussian_classes": lambda n, seed: D.gaussian_classes(n, d_in=2, k=4, seed=seed),
}
EXPECTED_D = {"polynomial_1d": 1, "cubic": 1, "sine": 1, "teacher": 3, "sparse_monomials": 6, "logistic_labels": 4, "gaussian_classes": 2}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_shapes_and_dtypes(name):
    X, y = GENERATORS[name](17, 0)
    assert X.shape == (17, EXPECTED_D[name])
    assert X.dtype == torch.float64
    assert y.shape == (17,)
    assert y.dtype == (torch.int64 if name == "gaussian_classes" else torch.float64)
    assert torch.isfinite(X).all()


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_same_seed_same_tensors_other_seed_differs(name):
    X1, y1 = GENERATORS[name](40, 3)
    X2, y2 = GENERATORS[name](40, 3)
    X3, _ = GENERATORS[name](40, 4)
    assert torch.equal(X1, X2) and torch.equal(y1, y2)
    assert not torch.equal(X1, X3)


@pytest.mark.parametrize("name", sorted(D.DATASETS))
def test_registry_matches_cli_names_and_is_seeded(name):
    assert set(D.DATASETS) == {"cubic", "sine", "teacher", "sparse-monomials", "multi-index", "logistic", "classes"}
    X, y = D.DATASETS[name](12, 5)
    X2, y2 = D.make(name, 12, seed=5)
    assert X.shape[0] == 12 and len(y) == 12
    assert torch.equal(X, X2) and torch.equal(y, y2)


def test_make_rejects_unknown_name():
    with pytest.raises(LosslabError, match=r"unknown data set 'cubes'.*'cubic'"):
        D.make("cubes", 10)


def test_polynomial_1d_noiseless_matches_formula_and_range():
    X, y = D.polynomial_1d(200, coefs=(0.5, 0.0, -2.0), noise=0.0, x_range=(1.0, 3.0), seed=1)
    x = X[:, 0]
    assert (x >= 1.0).all() and (x <= 3.0).all()
    torch.testing.assert_close(y, 0.5 - 2.0 * x**2, rtol=0, atol=1e-12)


def test_cubic_is_x3_minus_x_and_noise_has_the_stated_scale():
    X0, y0 = D.cubic(5000, noise=0.0, seed=2)
    torch.testing.assert_close(y0, X0[:, 0] ** 3 - X0[:, 0], rtol=0, atol=1e-12)
    X1, y1 = D.cubic(5000, noise=0.3, seed=2)
    assert torch.equal(X0, X1)  # the inputs do not depend on the noise level
    assert abs(float((y1 - y0).std()) - 0.3) < 0.02


def test_sine_range_and_frequency():
    X, y = D.sine(300, noise=0.0, frequency=2.0, seed=0)
    assert (X.abs() <= math.pi).all()
    torch.testing.assert_close(y, torch.sin(2.0 * X[:, 0]), rtol=0, atol=1e-12)


def test_teacher_targets_come_from_the_teacher_network():
    X, y = D.teacher(30, d_in=2, width=5, activation="relu", seed=7)
    target = D.teacher_target(d_in=2, width=5, activation="relu", seed=7)
    torch.testing.assert_close(y, target.model.apply(target.params, X), rtol=0, atol=0)
    params = D.teacher_params(d_in=2, width=5, activation="relu", seed=7)
    assert set(params) == {"W", "b", "v"} and params["W"].shape == (5, 2)
    assert torch.equal(params["W"], target.params["W"])
    assert not torch.equal(params["W"], D.teacher_params(d_in=2, width=5, activation="relu", seed=8)["W"])


def test_sparse_monomials_y_equals_target_when_noiseless():
    X, y = D.sparse_monomials(50, d=10, degree=3, n_terms=4, noise=0.0, seed=11)
    t = D.sparse_monomials_target(10, 3, 4, seed=11)
    assert t.exponents.shape == (4, 10) and t.exponents.dtype == torch.int64
    assert t.coefs.shape == (4,)
    assert torch.equal(y, t(X))
    # an independent evaluation of Σ_t c_t Π_j x_j^{α_tj}
    ref = np.zeros(50)
    for alpha, c in zip(t.exponents.numpy(), t.coefs.numpy()):
        ref += c * np.prod(X.numpy() ** alpha, axis=1)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_sparse_monomials_target_structure(seed):
    t = D.sparse_monomials_target(d=8, degree=3, n_terms=5, seed=seed)
    degrees = t.exponents.sum(dim=1)
    assert int(degrees[0]) == 3 and t.degree == 3  # term 0 carries the full degree
    assert ((degrees >= 1) & (degrees <= 3)).all()
    assert len({tuple(r) for r in t.exponents.tolist()}) == 5  # distinct terms
    assert ((t.coefs.abs() >= 0.5) & (t.coefs.abs() <= 1.5)).all()
    assert set(t.support()) == {j for j in range(8) if int(t.exponents[:, j].sum()) > 0}
    assert isinstance(t.formula(), str) and "x" in t.formula()


def test_sparse_monomials_can_use_every_available_monomial():
    t = D.sparse_monomials_target(d=1, degree=3, n_terms=3, seed=0)
    assert sorted(t.exponents[:, 0].tolist()) == [1, 2, 3]
    const = D.sparse_monomials_target(d=4, degree=0, n_terms=1, seed=0)
    X = torch.randn(5, 4, dtype=torch.float64)
    torch.testing.assert_close(const(X), const.coefs.expand(5), rtol=0, atol=0)


def test_sparse_monomials_target_checks_X():
    t = D.sparse_monomials_target(d=4, degree=2, n_terms=2, seed=0)
    with pytest.raises(LosslabError, match=r"expected X of shape \(\*, 4\), got shape \(3, 5\)"):
        t(torch.zeros(3, 5))


def test_logistic_labels_are_binary_and_follow_the_teacher():
    X, y = D.logistic_labels(4000, d_in=2, scale=3.0, seed=0)
    assert set(y.unique().tolist()) == {0.0, 1.0}
    # labels agree with a linear rule far better than chance: fit by least squares on ±1 targets
    w = torch.linalg.lstsq(X, 2 * y - 1).solution
    agree = float(((X @ w > 0).to(torch.float64) == y).to(torch.float64).mean())
    assert agree > 0.75


def test_gaussian_classes_labels_are_balanced_and_in_range():
    X, y = D.gaussian_classes(301, d_in=3, k=5, seed=4)
    assert y.min() >= 0 and y.max() <= 4
    counts = torch.bincount(y, minlength=5)
    assert counts.max() - counts.min() <= 1
    X2, _ = D.gaussian_classes(301, d_in=3, k=5, separation=4.0, seed=4)
    assert not torch.equal(X, X2)


def test_as_data_accepts_lists_arrays_tensors():
    X, y = D.as_data([1, 2, 3], np.array([0.5, 1.0, 1.5]))
    assert X.shape == (3, 1) and X.dtype == torch.float64
    assert y.dtype == torch.float64
    X32, labels = D.as_data(torch.zeros(4, 2, dtype=torch.float32), [0, 1, 1, 0])
    assert X32.dtype == torch.float32 and labels.dtype == torch.int64


@pytest.mark.parametrize(
    ("X", "y", "match"),
    [
        ([[0.0], [float("nan")]], [1.0, 2.0], "expected X to be finite"),
        ([], [], "expected X to hold at least one value"),
        ([[0.0], [1.0]], [1.0, 2.0, 3.0], r"expected y of shape \(2,\) or \(2, k\)"),
        (np.zeros((2, 2, 2)), [1.0, 2.0], r"expected X of shape \(n, d\)"),
        ([[0.0], [1.0]], [1.0, float("inf")], "expected y to be finite"),
        ([["a"], ["b"]], [1.0, 2.0], "expected X to be a tensor or array of numbers"),
    ],
)
def test_as_data_rejects(X, y, match):
    with pytest.raises(LosslabError, match=match):
        D.as_data(X, y)


BAD_INPUTS = [
    (lambda: D.polynomial_1d(0), r"expected n to be an integer >= 1, got n=0"),
    (lambda: D.polynomial_1d(2.5), r"got n=2.5"),
    (lambda: D.polynomial_1d(10, noise=-0.1), r"got noise=-0.1"),
    (lambda: D.polynomial_1d(10, x_range=(1.0, -1.0)), r"lo < hi, got x_range=\(1.0, -1.0\)"),
    (lambda: D.polynomial_1d(10, x_range=3.0), r"expected x_range to be a pair"),
    (lambda: D.polynomial_1d(10, coefs=()), r"expected coefs to hold at least one value"),
    (lambda: D.polynomial_1d(10, seed=-1), r"expected seed to be an integer in \[0, 2\*\*63 - 1\], got seed=-1"),
    (lambda: D.cubic(10, noise=float("nan")), r"got noise=nan"),
    (lambda: D.sine(10, frequency=0.0), r"expected frequency to be a finite number > 0, got frequency=0.0"),
    (lambda: D.teacher(10, width=0), r"expected width to be an integer >= 1, got width=0"),
    (lambda: D.teacher(10, activation="gelu"), r"unknown activation 'gelu'"),
    (lambda: D.sparse_monomials(10, degree=-1), r"expected degree to be an integer >= 0, got degree=-1"),
    (lambda: D.sparse_monomials(10, n_terms=0), r"expected n_terms to be an integer >= 1, got n_terms=0"),
    (lambda: D.sparse_monomials(10, d=2, degree=1, n_terms=3), r"expected n_terms <= 2 .*got n_terms=3"),
    (lambda: D.sparse_monomials(10, d=0), r"expected d to be an integer >= 1, got d=0"),
    (lambda: D.logistic_labels(10, d_in=0), r"expected d_in to be an integer >= 1, got d_in=0"),
    (lambda: D.logistic_labels(10, scale=-1.0), r"expected scale to be a finite number > 0"),
    (lambda: D.gaussian_classes(10, k=1), r"expected k to be an integer >= 2, got k=1"),
    (lambda: D.gaussian_classes(0), r"got n=0"),
]


@pytest.mark.parametrize(("call", "match"), BAD_INPUTS)
def test_bad_inputs(call, match):
    with pytest.raises(LosslabError, match=match):
        call()
