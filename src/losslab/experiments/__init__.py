"""The seed's argument as experiments: each checks one step and returns numbers, figures and claims.

=====  ========================  ==========================================================
  #    name                      claim
=====  ========================  ==========================================================
  1    linear-in-parameters      a polynomial basis is linear in θ: convex loss, normal equations
  2    underfitting              too few features: the error stays at the bias floor
  3    overfitting               too many features on few noisy samples: train → 0, test blows up
  4    more-data                 more data tames the large basis
  5    bias-variance             bias², variance, noise against the basis size
  6    feature-learning          the fixed basis explodes in d; a network finds the hidden directions
  7    two-layer                 v·σ(Wx+b): convex in v, non-convex in (W, b, v)
  8    depth                     an MLP: verdict, spectrum, the curvature term H − GGN
  9    sigmoid-loss              logistic regression: cross-entropy convex, squared loss not
 10    relu-surface              relu(w1·relu(w0·x+b0)+b1): the surface and a certified chord
 11    sigmoid-mlp               hand-derived gradients; minima and saddles from many starts
 12    regularization            L2 convexifies locally, never globally; dropout
 13    gd-vs-sgd                 full-batch GD against minibatch SGD from many starts
-----  ------------------------  ----------------------------------------------------------
       *Part II*                 what comes next
 14    lazy-vs-rich              large output scale or NTK width: near the linearisation, fixed features, worse tests
 15    mode-connectivity         barriers between minima; weight matching shrinks them, more with width
 16    spurious-minima           ReLU teacher–student: spurious minima common at n = k, rare at n = k + 1
 17    double-descent            fixed features: the test error peaks at p = n, then falls
 18    edge-of-stability         full-batch GD: the sharpness rises to 2/η and stays there
=====  ========================  ==========================================================

Modules are imported when first asked for, so ``import losslab`` stays fast.
"""

from __future__ import annotations

import importlib

from .._checks import LosslabError
from .base import Claim, Experiment, Measured, Result, claim, run_experiment
from .settings import Integer, Integers, OneOf, Real, Reals, Rule, Settings, parse_settings, setting

MODULES = {
    "linear-in-parameters": "linear_in_parameters",
    "underfitting": "underfitting",
    "overfitting": "overfitting",
    "more-data": "more_data",
    "bias-variance": "bias_variance",
    "feature-learning": "feature_learning",
    "two-layer": "two_layer",
    "depth": "depth",
    "sigmoid-loss": "sigmoid_loss",
    "relu-surface": "relu_surface",
    "sigmoid-mlp": "sigmoid_mlp",
    "regularization": "regularization",
    "gd-vs-sgd": "gd_vs_sgd",
    "lazy-vs-rich": "lazy_vs_rich",
    "mode-connectivity": "mode_connectivity",
    "spurious-minima": "spurious_minima",
    "double-descent": "double_descent",
    "edge-of-stability": "edge_of_stability",
}
"""Experiment name → module in this package (each defines ``EXPERIMENT``), in the order of the argument."""

NAMES = tuple(MODULES)


_REGISTERED: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Make a user's own ``experiment`` available to :func:`get_experiment` and ``run_experiment`` by name.

    Its figures are registered separately with :func:`losslab.report.register_drawings`. A name of a
    built-in experiment is an error.
    """
    if not isinstance(experiment, Experiment):
        raise LosslabError(f"register: expected an Experiment, got {type(experiment).__name__}")
    if experiment.name in MODULES:
        raise LosslabError(f"register: {experiment.name!r} is a built-in experiment; choose another name")
    _REGISTERED[experiment.name] = experiment
    return experiment


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name`` (built-in or registered); an unknown name is an error listing the valid ones."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in MODULES:
        raise LosslabError(f"unknown experiment {name!r}; valid names: {', '.join((*NAMES, *_REGISTERED))}")
    return importlib.import_module(f"{__name__}.{MODULES[name]}").EXPERIMENT


def all_experiments() -> list[Experiment]:
    """Every experiment, in the order of the argument."""
    return [get_experiment(n) for n in NAMES]


__all__ = [
    "MODULES",
    "NAMES",
    "Claim",
    "Experiment",
    "Integer",
    "Integers",
    "Measured",
    "OneOf",
    "Real",
    "Reals",
    "Result",
    "Rule",
    "Settings",
    "all_experiments",
    "claim",
    "get_experiment",
    "parse_settings",
    "register",
    "run_experiment",
    "setting",
]
