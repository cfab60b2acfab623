"""The multilayer perceptron h_{l+1} = σ(W_l h_l + b_l), any depth.

``MLP([1, 1, 1], "relu", out_activation="relu")`` is the seed's relu(w1·relu(w0·x + b0) + b1);
``activation="identity"`` gives a deep *linear* network: linear in x, still non-convex in its
parameters (the product W1·W0 is bilinear).
"""

from __future__ import annotations

import math

import torch

from .._checks import LosslabError, choice
from ..random_streams import generator
from .activations import ACTIVATIONS, get_activation
from .base import Model, Params
from .layers import Layer, forward
from .two_layer import hidden_unit_symmetries


class MLP(Model):
    """Layers ``widths = [d_in, h_1, …, d_out]``; groups ``"W0"``, ``"b0"``, ``"W1"``, ``"b1"``, ….

    W_l has shape (widths[l+1], widths[l]); output shape (n,) when d_out == 1, else (n, d_out).
    ``out_activation`` is applied to the last layer: None/"identity", "relu", "tanh", or
    "sigmoid" (then the model's link, so bce uses its logit stably). Init: W_l ~ N(0, 1/fan_in),
    b_l ~ N(0, 1/fan_in).
    """

    def __init__(self, widths: list[int] | tuple[int, ...], activation: str = "relu", out_activation: str | None = None):
        widths = list(widths) if isinstance(widths, (list, tuple)) else widths
        valid = isinstance(widths, list) and len(widths) >= 2
        if not valid or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths):
            raise LosslabError(f"expected widths as a list of >= 2 positive integers [d_in, ..., d_out], got widths={widths!r}")
        self.widths = widths
        self.d_in = widths[0]
        self.depth = len(widths) - 1
        self.activation = activation
        self._sigma = get_activation(activation)
        if out_activation is not None:
            choice("out_activation", out_activation, ACTIVATIONS)
        self.out_activation = None if out_activation == "identity" else out_activation
        self.link = "sigmoid" if self.out_activation == "sigmoid" else None
        self.shapes = {}
        for i in range(self.depth):
            self.shapes[f"W{i}"] = (widths[i + 1], widths[i])
            self.shapes[f"b{i}"] = (widths[i + 1],)
        last = self.depth - 1
        sets = []
        if self.out_activation in (None, "sigmoid"):
            sets.append(frozenset({f"W{last}", f"b{last}"}))
            if activation == "identity":
                sets += [frozenset({f"W{i}", f"b{i}", f"b{last}"}) for i in range(last)]
        self.affine_sets = tuple(sets)

    def init(self, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> Params:
        g = generator(seed, "init")
        params = {}
        for i in range(self.depth):
            std = 1 / math.sqrt(self.widths[i])
            params[f"W{i}"] = self._draw(g, self.shapes[f"W{i}"], std, dtype)
            params[f"b{i}"] = self._draw(g, self.shapes[f"b{i}"], std, dtype)
        return params

    def layers(self) -> tuple[Layer, ...]:
        """The spec (W_l, b_l, σ) per layer, the last with ``out_activation`` (a sigmoid is the link, not a layer's)."""
        hidden = None if self.activation == "identity" else self.activation
        out = self.out_activation if self.out_activation in ("relu", "tanh") else None
        return tuple(Layer(f"W{i}", f"b{i}", hidden if i < self.depth - 1 else out) for i in range(self.depth))

    def logit(self, params: Params, X: torch.Tensor) -> torch.Tensor:
        return forward(self.layers(), params, X)

    def affine_reason(self) -> str:
        last = self.depth - 1
        if not self.affine_sets:
            return f"none: the output activation {self.out_activation} is applied after the last layer"
        why = f"the logit W{last}·h + b{last} is affine in the last layer (W{last}, b{last}) with earlier layers fixed"
        if self.activation == "identity":
            why += f"; with identity activations it is also affine in each (W_l, b_l) (and b{last}) with the other layers fixed"
        return why

    def symmetries(self, params: Params, generator: torch.Generator) -> list[tuple[str, Params]]:
        out = []
        for i in range(self.depth - 1):
            for name, p in hidden_unit_symmetries(params, generator, self.activation, (f"W{i}", f"b{i}"), f"W{i + 1}"):
                out.append((f"layer {i}: {name}", p))
        return out

    def activations_per_example(self, x: torch.Tensor | None = None) -> int:
        return 3 * sum(self.widths)

    def describe(self) -> str:
        extra = f", out_activation={self.out_activation}" if self.out_activation else ""
        return f"MLP({self.widths}, activation={self.activation}{extra})"
