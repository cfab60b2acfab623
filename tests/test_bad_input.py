"""Bad inputs at the public boundary: each raises LosslabError saying what was expected and what was got."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from losslab import LosslabError, Problem
from losslab.models import MLP, Linear, Linearized, Module, Polynomial, RandomFeatures, TwoLayer

DT = torch.float64
X7 = torch.linspace(-1, 1, 14, dtype=DT).reshape(7, 2)
Y7 = torch.linspace(0, 1, 7, dtype=DT)
LABELS = torch.tensor([0, 1, 2, 0, 1, 2, 0])


def with_value(t: torch.Tensor, index: tuple[int, ...], value: float) -> torch.Tensor:
    t = t.clone()
    t[index] = value
    return t


def two_layer_problem(**kwargs) -> Problem:
    return Problem(TwoLayer(d_in=2, width=3), X7, Y7, **kwargs)


P = TwoLayer(d_in=2, width=3).n_params  # 3*2 + 3 + 3 = 12

CASES = [
    # data
    (
        "X/y length mismatch",
        lambda: Problem(Linear(2), X7, Y7[:6]),
        r"expected X and y with the same number of rows, got X with \[7\] and y of shape \(6,\)",
    ),
    ("y with extra columns", lambda: Problem(Linear(2), X7, torch.zeros(7, 3)), r"expected y of shape \(7,\), got shape \(7, 3\)"),
    ("X with the wrong d_in", lambda: Problem(Linear(3), X7, Y7), r"expected X of shape \(\*, 3\), got shape \(7, 2\)"),
    ("1-D X for d_in=2", lambda: Problem(Linear(2), Y7, Y7), r"expected X of shape \(\*, 2\), got shape \(7,\)"),
    ("NaN in X", lambda: Problem(Linear(2), with_value(X7, (3, 1), math.nan), Y7), r"expected X to be finite, got 1 NaN/inf value"),
    ("inf in X", lambda: Problem(Linear(2), with_value(X7, (0, 0), -math.inf), Y7), r"expected X to be finite, got 1 NaN/inf value"),
    ("NaN in y", lambda: Problem(Linear(2), X7, with_value(Y7, (2,), math.nan)), r"expected y to be finite, got 1 NaN/inf value"),
    ("inf in y", lambda: Problem(Linear(2), X7, with_value(Y7, (2,), math.inf)), r"expected y to be finite, got 1 NaN/inf value"),
    (
        "empty X",
        lambda: Problem(Linear(2), torch.zeros(0, 2), torch.zeros(0)),
        r"expected X to hold at least one value, got an empty array of shape \(0, 2\)",
    ),
    ("empty y", lambda: Problem(Linear(2), X7, []), r"expected y to hold at least one value, got an empty array"),
    ("strings as X", lambda: Problem(Linear(1), ["a", "b"], [0.0, 1.0]), r"expected X to be a tensor or array of numbers, got list"),
    (
        "complex X",
        lambda: Problem(Linear(1), torch.ones(3, 1, dtype=torch.complex64), Y7[:3]),
        r"expected X to hold real numbers, got dtype torch.complex64",
    ),
    ("float16 dtype", lambda: Problem(Linear(2), X7, Y7, dtype=torch.float16), r"expected dtype float32 or float64, got torch.float16"),
    ("dtype by a bad name", lambda: Problem(Linear(2), X7, Y7, dtype="double"), r"expected dtype float32 or float64, got 'double'"),
    # models
    ("degree=-1", lambda: Polynomial(1, degree=-1), r"expected degree to be an integer >= 0, got degree=-1"),
    ("fractional degree", lambda: Polynomial(1, degree=1.5), r"expected degree to be an integer >= 0, got degree=1.5"),
    ("too many monomials", lambda: Polynomial(d_in=200, degree=4), r"expected at most 5,000,000 monomials, got .*= 70,058,751"),
    ("d_in=0", lambda: Polynomial(d_in=0), r"expected d_in to be an integer >= 1, got d_in=0"),
    (
        "unknown TwoLayer activation",
        lambda: TwoLayer(activation="gelu"),
        r"unknown activation 'gelu': expected one of 'relu', 'tanh', 'sigmoid', 'identity'",
    ),
    ("unknown MLP activation", lambda: MLP([1, 2, 1], activation="swish"), r"unknown activation 'swish': expected one of 'relu'"),
    (
        "unknown MLP out_activation",
        lambda: MLP([1, 2, 1], out_activation="softmax"),
        r"unknown out_activation 'softmax': expected one of 'relu'",
    ),
    ("unknown RandomFeatures activation", lambda: RandomFeatures(activation="cos"), r"unknown activation 'cos': expected one of"),
    ("TwoLayer width=0", lambda: TwoLayer(width=0), r"expected width to be an integer >= 1, got width=0"),
    ("RandomFeatures width=0", lambda: RandomFeatures(width=0), r"expected width to be an integer >= 1, got width=0"),
    ("float width", lambda: TwoLayer(width=2.0), r"expected width to be an integer >= 1, got width=2.0"),
    (
        "MLP hidden width 0",
        lambda: MLP([2, 0, 1]),
        r"expected widths as a list of >= 2 positive integers \[d_in, ..., d_out\], got widths=\[2, 0, 1\]",
    ),
    ("MLP of one width", lambda: MLP([2]), r"expected widths as a list of >= 2 positive integers .*, got widths=\[2\]"),
    ("unknown Linear output", lambda: Linear(2, output="softmax"), r"expected output None or 'sigmoid', got output='softmax'"),
    ("Module of a non-Module", lambda: Module(lambda x: x), r"expected a torch.nn.Module, got function"),
    ("Module of an array", lambda: Module(np.zeros(3)), r"expected a torch.nn.Module, got ndarray"),
    ("Module without parameters", lambda: Module(torch.nn.Tanh()), r"expected a module with parameters, got Tanh with none"),
    # losses and targets
    (
        "unknown loss",
        lambda: Problem(Linear(2), X7, Y7, loss="hinge"),
        r"unknown loss 'hinge': expected one of 'mse', 'bce', 'cross_entropy'",
    ),
    (
        "bce targets above 1",
        lambda: Problem(Linear(2), X7, 2 * Y7, loss="bce"),
        r"bce expects targets y in \[0, 1\], got values in \[0, 2\]",
    ),
    (
        "bce targets below 0",
        lambda: Problem(Linear(2), X7, Y7 - 1, loss="bce"),
        r"bce expects targets y in \[0, 1\], got values in \[-1, 0\]",
    ),
    (
        "cross_entropy with fractional labels",
        lambda: Problem(MLP([2, 3]), X7, LABELS + 0.5, loss="cross_entropy"),
        r"cross_entropy expects integer class labels y, got non-integer values",
    ),
    (
        "cross_entropy with a label = k",
        lambda: Problem(MLP([2, 3]), X7, with_value(LABELS, (4,), 3), loss="cross_entropy"),
        r"cross_entropy expects labels in \[0, 3\), got labels in \[0, 3\]",
    ),
    (
        "cross_entropy with a negative label",
        lambda: Problem(MLP([2, 3]), X7, with_value(LABELS, (4,), -1), loss="cross_entropy"),
        r"cross_entropy expects labels in \[0, 3\), got labels in \[-1, 2\]",
    ),
    (
        "cross_entropy with a scalar-output model",
        lambda: Problem(Linear(2), X7, LABELS, loss="cross_entropy"),
        r"cross_entropy expects the model to output logits of shape \(n, k\) with k classes, got output shape \(7,\)",
    ),
    (
        "cross_entropy with a sigmoid-output model",
        lambda: Problem(Linear(2, output="sigmoid"), X7, LABELS, loss="cross_entropy"),
        r"cross_entropy expects a model that outputs logits, got Linear\(d_in=2, output='sigmoid'\) with a sigmoid output",
    ),
    (
        "cross_entropy with a sigmoid-output MLP",
        lambda: Problem(MLP([2, 3], out_activation="sigmoid"), X7, LABELS, loss="cross_entropy"),
        r"cross_entropy expects a model that outputs logits, got MLP\(.*\) with a sigmoid output",
    ),
    # the problem
    ("l2 < 0", lambda: two_layer_problem(l2=-0.1), r"expected l2 to be a finite number >= 0, got l2=-0.1"),
    ("l2 = nan", lambda: two_layer_problem(l2=math.nan), r"expected l2 to be a finite number >= 0, got l2=nan"),
    ("l2 not a number", lambda: two_layer_problem(l2="big"), r"expected l2 to be a number >= 0, got l2='big'"),
    (
        "a torch module passed as the model",
        lambda: Problem(torch.nn.Linear(2, 1), X7, Y7),
        r"expected a losslab model \(e.g. losslab.models.TwoLayer\), got Linear; wrap a torch.nn.Module with losslab.models.Module",
    ),
    ("a function passed as the model", lambda: Problem(lambda p, x: x, X7, Y7), r"expected a losslab model .*, got function"),
    (
        "a module that cannot run on X",
        lambda: Problem(Module(torch.nn.Bilinear(2, 2, 1)), X7, Y7),
        r"expected inputs that Module\(Bilinear.* can be applied to, got inputs of shape \(7, 2\).*, on which it fails",
    ),
    (
        "Theta with a wrong p",
        lambda: two_layer_problem().loss_batch(torch.zeros(3, P + 1)),
        rf"expected Theta of shape \(\*, {P}\), got shape \(3, {P + 1}\)",
    ),
    (
        "Theta as one vector",
        lambda: two_layer_problem().loss_batch(torch.zeros(P)),
        rf"expected Theta of shape \(\*, {P}\), got shape \({P},\)",
    ),
    (
        "theta with a wrong p",
        lambda: two_layer_problem().as_theta(torch.zeros(P - 1)),
        rf"expected theta of shape \({P},\), got shape \({P - 1},\)",
    ),
    (
        "theta with NaN",
        lambda: two_layer_problem().as_theta(torch.full((P,), math.nan)),
        r"expected theta to be finite, got 12 NaN/inf value",
    ),
    (
        "params with a missing group",
        lambda: two_layer_problem().flatten({"W": torch.zeros(3, 2), "b": torch.zeros(3)}),
        r"expected parameter groups \['W', 'b', 'v'\], got \['W', 'b'\] \(missing \['v'\]\)",
    ),
    (
        "params with a wrongly shaped group",
        lambda: two_layer_problem().flatten({"W": torch.zeros(2, 3), "b": torch.zeros(3), "v": torch.zeros(3)}),
        r"expected group 'W' of shape \(3, 2\), got shape \(2, 3\)",
    ),
    (
        "restrict at params with a missing group",
        lambda: two_layer_problem().restrict(["v"], {"v": torch.zeros(3)}),
        r"expected parameter groups \['W', 'b', 'v'\], got \['v'\] \(missing \['W', 'b'\]\)",
    ),
    (
        "Linearized at params with a missing group",
        lambda: Linearized(TwoLayer(d_in=2, width=3), {"W": torch.zeros(3, 2), "b": torch.zeros(3)}),
        r"expected parameter groups \['W', 'b', 'v'\], got \['W', 'b'\] \(missing \['v'\], unexpected \[\]\)",
    ),
    (
        "Linearized at params with an extra group",
        lambda: Linearized(Linear(2), {"w": torch.zeros(2), "c": torch.zeros(()), "b": torch.zeros(())}),
        r"expected parameter groups \['w', 'c'\], got \['w', 'c', 'b'\] \(missing \[\], unexpected \['b'\]\)",
    ),
    (
        "Linearized at params that are not a dict",
        lambda: Linearized(Linear(2), [torch.zeros(2), torch.zeros(())]),
        r"expected params as a dict of tensors with groups \['w', 'c'\], got list",
    ),
    (
        "restrict to an unknown group",
        lambda: two_layer_problem().restrict(["V"]),
        r"expected groups among \['W', 'b', 'v'\], got \['V'\] \(unknown: \['V'\]\)",
    ),
    ("to float16", lambda: two_layer_problem().to(torch.float16), r"expected dtype float32 or float64, got torch.float16"),
]


@pytest.mark.parametrize(("make", "match"), [pytest.param(make, match, id=name) for name, make, match in CASES])
def test_bad_input_raises_a_clear_error(make, match):
    with pytest.raises(LosslabError, match=match):
        make()


def test_losslab_error_is_a_value_error():
    with pytest.raises(ValueError):
        Polynomial(1, -1)
