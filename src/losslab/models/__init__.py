"""Pure models f(params, X) with named parameter groups and declared affine structure."""

from .activations import ACTIVATIONS
from .base import Model, Params
from .linear import Linear
from .linearized import Linearized
from .mlp import MLP
from .polynomial import Polynomial, monomial_exponents
from .random_features import RandomFeatures
from .torch_module import Module
from .two_layer import TwoLayer

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "Linear",
    "Linearized",
    "Model",
    "Module",
    "Params",
    "Polynomial",
    "RandomFeatures",
    "TwoLayer",
    "monomial_exponents",
]
