"""No verdict, kind or count changes when y, the loss or the parameters are rescaled by powers of ten.

Every tolerance in losslab is relative (losslab.tolerances); these property tests rescale by
10^-8 … 10^8 in float32 and float64 and require the same answer at every scale:

* classify: y and the output layer v scaled together (the issue's reproducer, at a point that
  is not critical), the loss multiplied by a constant (a saddle at θ = 0), and a least-squares
  minimum with y and θ* scaled together;
* check_convexity: the loss multiplied by a constant (a proof and a witness);
* discrete_convexity: a plane's losses multiplied by a constant and its coordinates rescaled;
* eigs: the operator multiplied by a constant (which pairs converge; the products taken may differ
  by one or two, as k·A rounds differently from A).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from losslab import Problem, check_convexity, data
from losslab.curvature import MatrixOperator, classify, eigs
from losslab.landscape import discrete_convexity, plane
from losslab.losses import LOSSES
from losslab.models import Polynomial, TwoLayer

SCALES = [10.0**k for k in (-8, -4, 0, 4, 8)]
DTYPES = [torch.float32, torch.float64]


def scaled_mse(k: float):
    """mse multiplied by k: the same loss in other units."""
    base = LOSSES["mse"]
    return dataclasses.replace(base, fn=lambda f, y: k * base.fn(f, y))


def two_layer(dtype, y_scale=1.0, loss_scale=1.0, width=4, n=100):
    x, y = data.cubic(n, seed=0)
    return Problem(TwoLayer(1, width, "tanh"), x, y * y_scale, loss=scaled_mse(loss_scale)).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_classify_kind_is_the_same_when_y_and_the_output_layer_are_rescaled(dtype):
    kinds, ratios = set(), []
    for c in SCALES:
        problem = two_layer(dtype, y_scale=c)
        theta = problem.init(0).clone()
        theta[problem.slices()["v"]] *= c
        res = classify(problem, theta)
        kinds.add(res.kind)
        ratios.append(res.grad_ratio)
    assert kinds == {"not a critical point"}
    assert max(ratios) / min(ratios) < 1.01  # the ratio itself is scale-free


@pytest.mark.parametrize("dtype", DTYPES)
def test_classify_finds_the_saddle_at_zero_whatever_the_loss_units(dtype):
    # At W = b = v = 0 every gradient vanishes (tanh(0) = 0, v = 0) and the v–W cross block is
    # −2·mean(y·x)·tanh'(0) ≠ 0: curvature of both signs, a saddle.
    kinds = set()
    for k in SCALES:
        problem = two_layer(dtype, loss_scale=k)
        res = classify(problem, torch.zeros(problem.n_params, dtype=dtype))
        kinds.add(res.kind)
    assert kinds == {"saddle"}


@pytest.mark.parametrize("dtype", DTYPES)
def test_classify_finds_the_least_squares_minimum_at_every_scale(dtype):
    x, y = data.cubic(50, seed=1)
    X = torch.stack([x[:, 0] ** j for j in range(4)], 1)
    star = torch.linalg.lstsq(X, y[:, None]).solution[:, 0]  # the normal equations' solution, independent of losslab
    kinds = set()
    for c in SCALES:
        problem = Problem(Polynomial(1, 3), x, y * c).to(dtype)
        kinds.add(classify(problem, (star * c).to(dtype)).kind)
    assert kinds == {"minimum"}


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_convexity_verdicts_do_not_depend_on_the_loss_units(dtype):
    verdicts = set()
    for k in SCALES:
        net = two_layer(dtype, loss_scale=k, width=3, n=40)
        report = check_convexity(net, seed=0, budget=200, train_steps=0, by_group=False)
        x, y = data.cubic(40, seed=0)
        poly = Problem(Polynomial(1, 3), x, y, loss=scaled_mse(k)).to(dtype)
        verdicts.add((report.verdict, check_convexity(poly, seed=0, budget=50, train_steps=0, by_group=False).verdict))
    assert verdicts == {("non-convex", "convex")}


@pytest.mark.parametrize("dtype", DTYPES)
def test_discrete_convexity_counts_do_not_depend_on_units(dtype):
    problem = two_layer(dtype, width=3, n=40)
    s = plane(problem, problem.init(0), steps=15, span=3.0, seed=1)
    counts = set()
    for k in SCALES:
        for h in (1e-3, 1.0, 1e3):
            scaled = dataclasses.replace(s, losses=s.losses * k, alphas=s.alphas * h, betas=s.betas * h)
            counts.add(discrete_convexity(scaled).violations)
    assert len(counts) == 1 and counts.pop() > 0  # non-convex, and seen the same at every scale


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("which", ["largest", "smallest", "both"])
def test_eigs_convergence_does_not_depend_on_the_operators_units(dtype, which):
    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(120, 120, generator=g, dtype=torch.float64))
    A = (Q * torch.linspace(-3, 10, 120, dtype=torch.float64) ** 3) @ Q.T
    runs, products = set(), []
    for k in SCALES:
        res = eigs(MatrixOperator((k * A).to(dtype)), k=4, which=which, seed=0)
        runs.add(tuple(res.converged.tolist()))
        products.append(res.matvecs)
    assert runs == {(True,) * 4}
    # k·A is rounded differently from A (powers of ten are not exact in binary): the path may take a product more
    assert max(products) - min(products) <= max(2, 0.05 * min(products))
