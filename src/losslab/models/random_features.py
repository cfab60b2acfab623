"""Random features: f(x; v) = Σ_i v_i σ(w_i·x + b_i) with W, b drawn once and fixed.

Rahimi & Recht (2007). Only v is learned: the model is linear in its parameters, so the
squared loss is convex — the fixed-feature counterpart of :class:`~losslab.models.TwoLayer`.
"""

from __future__ import annotations

import math

import torch

from .._checks import as_tensor, positive_int, shape
from ..random_streams import generator
from .activations import get_activation
from .base import Model, Params


class RandomFeatures(Model):
    """φ_i(x) = σ(w_i·x + b_i), W ~ N(0, 1/d_in), b ~ N(0, 1) fixed (buffers); group ``"v"``.

    W and b are drawn from the ``"features"`` stream of ``seed``, and :meth:`init` draws v from
    the ``"init"`` stream (:mod:`losslab.random_streams`): independent, even for equal seeds.
    Pass ``W`` and ``b`` to use given features instead (e.g. a two-layer net's initial ones).
    """

    def __init__(self, d_in: int = 1, width: int = 64, activation: str = "relu", seed: int = 0, *, W=None, b=None):
        self.d_in = positive_int("d_in", d_in)
        self.width = positive_int("width", width)
        self.activation = activation
        self._sigma = get_activation(activation)
        g = generator(seed, "features")
        self.W = torch.randn(self.width, self.d_in, generator=g, dtype=torch.float64) / math.sqrt(self.d_in)
        self.b = torch.randn(self.width, generator=g, dtype=torch.float64)
        if W is not None:
            self.W = as_tensor("W", W, dtype=torch.float64).clone()
            shape("W", self.W, (self.width, self.d_in))
        if b is not None:
            self.b = as_tensor("b", b, dtype=torch.float64).clone()
            shape("b", self.b, (self.width,))
        self.shapes = {"v": (self.width,)}
        self.affine_sets = (frozenset({"v"}),)

    def features(self, X: torch.Tensor) -> torch.Tensor:
        """σ(X Wᵀ + b): shape (n, width)."""
        return self._sigma(torch.addmm(self.b.to(X.dtype), X, self.W.to(X.dtype).T))

    def init(self, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> Params:
        g = generator(seed, "init")
        return {"v": self._draw(g, (self.width,), 1 / math.sqrt(self.width), dtype)}

    def logit(self, params: Params, X: torch.Tensor) -> torch.Tensor:
        return self.features(X) @ params["v"]

    def affine_reason(self) -> str:
        return "f(x; v) = v·σ(Wx + b) with W, b fixed buffers is linear in v"

    def activations_per_example(self, x: torch.Tensor | None = None) -> int:
        return 3 * self.width

    def describe(self) -> str:
        return f"RandomFeatures(d_in={self.d_in}, width={self.width}, activation={self.activation})"
