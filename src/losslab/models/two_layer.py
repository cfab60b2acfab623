"""The two-layer network f(x) = v·σ(Wx + b) (+ c): a model that learns its features.

With W, b fixed it is the random-features model, linear in v; jointly in (W, b, v) it is
nonlinear in its parameters — which is what makes its loss non-convex.
"""

from __future__ import annotations

import math

import torch

from .._checks import positive_int
from ..random_streams import generator
from .activations import ODD, POSITIVELY_HOMOGENEOUS, get_activation
from .base import Model, Params
from .layers import Layer, forward


def hidden_unit_symmetries(
    params: Params, generator: torch.Generator, activation: str, rows: tuple[str, ...], col: str
) -> list[tuple[str, Params]]:
    """Points equivalent to ``params`` by permuting, sign-flipping or rescaling hidden units.

    ``rows`` name the groups whose first axis indexes hidden units (W, b); ``col`` the group
    whose last axis does (v).
    """
    width = params[col].shape[-1]
    out: list[tuple[str, Params]] = []

    def transform(index: torch.Tensor, row_scale: torch.Tensor, col_scale: torch.Tensor) -> Params:
        new = dict(params)
        for r in rows:
            shape = (-1,) + (1,) * (params[r].ndim - 1)
            new[r] = params[r][index] * row_scale.to(params[r].dtype).reshape(shape)
        new[col] = params[col][..., index] * col_scale.to(params[col].dtype)
        return new

    ones = torch.ones(width, dtype=torch.float64)
    if width > 1:
        perm = torch.randperm(width, generator=generator)
        if torch.equal(perm, torch.arange(width)):
            perm = torch.roll(perm, 1)
        out.append(("permute hidden units", transform(perm, ones, ones)))
        swap = torch.arange(width)
        swap[[0, 1]] = swap[[1, 0]]
        out.append(("swap hidden units 0 and 1", transform(swap, ones, ones)))
    unit = int(torch.randint(width, (1,), generator=generator))
    if activation in ODD:
        flip = ones.clone()
        flip[unit] = -1.0
        out.append((f"flip the sign of hidden unit {unit}", transform(torch.arange(width), flip, flip)))
    if activation in POSITIVELY_HOMOGENEOUS:
        scale = ones.clone()
        scale[unit] = 2.0
        out.append((f"rescale hidden unit {unit} by 2 and its output weight by 1/2", transform(torch.arange(width), scale, 1 / scale)))
    return out


class TwoLayer(Model):
    """f(x) = v·σ(Wx + b) (+ c), groups ``"W"`` (width, d_in), ``"b"`` (width,), ``"v"`` (width,) (, ``"c"`` ()).

    Init: W ~ N(0, 1/d_in), b ~ N(0, 1), v ~ N(0, 1/width), c = 0.

    Example:
        >>> net = TwoLayer(d_in=1, width=8, activation="tanh")
        >>> net.n_params, net.is_affine_in(["v"]), net.is_affine_in(["W", "b", "v"])
        (24, True, False)
    """

    def __init__(self, d_in: int = 1, width: int = 16, activation: str = "relu", out_bias: bool = False):
        self.d_in = positive_int("d_in", d_in)
        self.width = positive_int("width", width)
        self.activation = activation
        self._sigma = get_activation(activation)
        self.out_bias = bool(out_bias)
        self.shapes = {"W": (self.width, self.d_in), "b": (self.width,), "v": (self.width,)}
        if self.out_bias:
            self.shapes["c"] = ()
        head = {"v", "c"} if self.out_bias else {"v"}
        sets = [frozenset(head)]
        if activation == "identity":
            sets.append(frozenset({"W", "b"} | (head - {"v"})))
        self.affine_sets = tuple(sets)

    def init(self, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> Params:
        g = generator(seed, "init")
        params = {
            "W": self._draw(g, (self.width, self.d_in), 1 / math.sqrt(self.d_in), dtype),
            "b": self._draw(g, (self.width,), 1.0, dtype),
            "v": self._draw(g, (self.width,), 1 / math.sqrt(self.width), dtype),
        }
        if self.out_bias:
            params["c"] = torch.zeros((), dtype=dtype)
        return params

    def hidden(self, params: Params, X: torch.Tensor) -> torch.Tensor:
        """The learned features σ(XWᵀ + b): shape (n, width)."""
        return self._sigma(X @ params["W"].T + params["b"])

    def layers(self) -> tuple[Layer, ...]:
        """The spec: (W, b, σ), then (v, c or None, no activation); v is one output unit."""
        hidden = None if self.activation == "identity" else self.activation
        return (Layer("W", "b", hidden), Layer("v", "c" if self.out_bias else None, None))

    def logit(self, params: Params, X: torch.Tensor) -> torch.Tensor:
        return forward(self.layers(), params, X)

    def affine_reason(self) -> str:
        why = "f = v·σ(Wx + b) (+ c) is linear in v (and c) with W, b fixed"
        if self.activation == "identity":
            why += "; with σ = identity it is also affine in (W, b) with v fixed"
        return why

    def symmetries(self, params: Params, generator: torch.Generator) -> list[tuple[str, Params]]:
        return hidden_unit_symmetries(params, generator, self.activation, ("W", "b"), "v")

    def activations_per_example(self, x: torch.Tensor | None = None) -> int:
        return 3 * self.width + self.d_in

    def describe(self) -> str:
        return f"TwoLayer(d_in={self.d_in}, width={self.width}, activation={self.activation}{', out_bias' if self.out_bias else ''})"
