"""Built-in problems: the seed's cases, each with the verdict the theory predicts.

Each :class:`Example` builds a :class:`~losslab.Problem` (and the groups to analyse) from a
seed. ``losslab check --example NAME`` and ``losslab demo`` use them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import data
from ._checks import choice
from .convexity.analyze import Verdict
from .models import MLP, Linear, Linearized, Polynomial, RandomFeatures, TwoLayer
from .problem import Problem

__all__ = ["EXAMPLES", "Example", "get_example"]


@dataclass(frozen=True)
class Example:
    """A named problem: ``build(seed) -> (problem, groups)`` and the verdict theory predicts."""

    name: str
    title: str
    build: Callable[[int], tuple[Problem, list[str] | None]]
    expected: Verdict
    why: str

    def __post_init__(self):
        object.__setattr__(self, "expected", Verdict(self.expected))


def _cubic(n: int = 200, seed: int = 0):
    return data.cubic(n, seed=seed)


def _two_layer(activation: str, groups: list[str] | None):
    def build(seed: int):
        return Problem(TwoLayer(1, 8, activation), *_cubic(seed=seed)), groups

    return build


def _seed_relu(seed: int):
    # one sample: the squared loss of relu(w1·relu(w0·x + b0) + b1) against y
    return Problem(MLP([1, 1, 1], "relu", out_activation="relu"), torch.tensor([[1.0]], dtype=torch.float64), [1.0]), None


def _linearized(seed: int):
    net = TwoLayer(1, 8, "tanh")
    return Problem(Linearized(net, net.init(seed=seed)), *_cubic(seed=seed)), None


_LIST = [
    Example("polynomial", "cubic basis, squared loss", lambda s: (Problem(Polynomial(1, 3), *_cubic(seed=s)), None), "convex",
            "linear in its parameters: fixed features"),
    Example("random-features", "random ReLU features, squared loss",
            lambda s: (Problem(RandomFeatures(1, 32, "relu", seed=s), *_cubic(seed=s)), None), "convex",
            "v·σ(Wx+b) with W, b fixed is linear in v"),
    Example("linearized", "two-layer tanh net linearized at its init",
            _linearized, "convex", "f(θ0) + J(θ0)(θ − θ0) is affine in θ"),
    Example("logistic-regression", "σ(w·x + c), cross-entropy",
            lambda s: (Problem(Linear(2, "sigmoid"), *data.logistic_labels(200, seed=s), loss="bce"), None), "convex",
            "softplus(z) − y·z is convex in the affine logit z"),
    Example("sigmoid-mse", "σ(w·x + c), squared loss",
            lambda s: (Problem(Linear(2, "sigmoid"), *data.logistic_labels(200, seed=s), loss="mse"), None), "non-convex",
            "the squared error of a saturating sigmoid is not convex in the logit"),
    Example("two-layer-relu-v", "v·relu(Wx+b) in v alone", _two_layer("relu", ["v"]), "convex", "W, b fixed: fixed features"),
    Example("two-layer-relu", "v·relu(Wx+b) in (W, b, v)", _two_layer("relu", None), "non-convex", "it learns its features"),
    Example("two-layer-tanh-v", "v·tanh(Wx+b) in v alone", _two_layer("tanh", ["v"]), "convex", "W, b fixed: fixed features"),
    Example("two-layer-tanh", "v·tanh(Wx+b) in (W, b, v)", _two_layer("tanh", None), "non-convex", "it learns its features"),
    Example("seed-relu", "relu(w1·relu(w0·x+b0)+b1), one sample", _seed_relu, "non-convex", "nonlinear in its parameters"),
    Example("deep-linear", "deep linear net W2·W1·W0·x",
            lambda s: (Problem(MLP([1, 2, 2, 1], "identity"), *_cubic(seed=s)), None), "non-convex",
            "linear in x, but the product of weights is not linear in the weights"),
]
EXAMPLES: dict[str, Example] = {e.name: e for e in _LIST}


def get_example(name: str) -> Example:
    """The built-in example called ``name``."""
    return EXAMPLES[choice("example", name, EXAMPLES)]
