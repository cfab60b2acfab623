"""The linear model f(x) = w·x + c, optionally through a sigmoid (a linear classifier)."""

from __future__ import annotations

import math

import torch

from .._checks import LosslabError, positive_int
from ..random_streams import generator
from .base import Model, Params


class Linear(Model):
    """w·x + c with groups ``"w"`` (d_in,) and ``"c"`` (); ``output="sigmoid"`` gives σ(w·x + c).

    With ``output="sigmoid"`` the logit w·x + c is affine, so cross-entropy (bce) is convex
    (logistic regression) while the squared error of σ(w·x + c) is not.
    """

    def __init__(self, d_in: int = 1, output: str | None = None):
        self.d_in = positive_int("d_in", d_in)
        if output not in (None, "sigmoid"):
            raise LosslabError(f"expected output None or 'sigmoid', got output={output!r}")
        self.link = output
        self.shapes = {"w": (self.d_in,), "c": ()}
        self.affine_sets = (frozenset({"w", "c"}),)

    def init(self, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> Params:
        g = generator(seed, "init")
        return {"w": self._draw(g, (self.d_in,), 1 / math.sqrt(self.d_in), dtype), "c": torch.zeros((), dtype=dtype)}

    def logit(self, params: Params, X: torch.Tensor) -> torch.Tensor:
        return X @ params["w"] + params["c"]

    def affine_reason(self) -> str:
        return "the logit w·x + c is linear in (w, c)"

    def activations_per_example(self, x: torch.Tensor | None = None) -> int:
        return 2 + self.d_in

    def describe(self) -> str:
        return f"Linear(d_in={self.d_in}" + (", output='sigmoid')" if self.link else ")")
