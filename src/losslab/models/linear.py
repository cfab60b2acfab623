"""The linear model f(x) = w·x + c (or w·x without an intercept), optionally through a sigmoid (a linear classifier)."""

from __future__ import annotations

import math

import torch

from .._checks import LosslabError, positive_int
from ..random_streams import generator
from .base import Model, Params


class Linear(Model):
    """w·x + c with groups ``"w"`` (d_in,) and ``"c"`` (); ``bias=False`` gives w·x, group ``"w"`` only.

    ``output="sigmoid"`` gives σ(w·x + c). With it the logit w·x + c is affine, so cross-entropy
    (bce) is convex (logistic regression) while the squared error of σ(w·x + c) is not.

    ``bias=False`` is the model of the double-descent analyses (Belkin, Hsu & Xu 2020; Hastie,
    Montanari, Rosset & Tibshirani 2022), which are stated without an intercept: f(x; w) = w·x,
    linear (not only affine) in w, with p = d_in parameters.

    Args:
        d_in: input width, an integer >= 1.
        output: None (f = logit) or ``"sigmoid"``.
        bias: whether the model has the intercept group ``"c"`` (keyword only; default True).

    Raises:
        LosslabError: d_in not a positive integer, output not None/'sigmoid', bias not a bool.

    Example:
        >>> model = Linear(3, bias=False)
        >>> model.groups, model.n_params, model.describe()
        (('w',), 3, 'Linear(d_in=3, bias=False)')
    """

    def __init__(self, d_in: int = 1, output: str | None = None, *, bias: bool = True):
        self.d_in = positive_int("d_in", d_in)
        if output not in (None, "sigmoid"):
            raise LosslabError(f"expected output None or 'sigmoid', got output={output!r}")
        if not isinstance(bias, bool):
            raise LosslabError(f"expected bias True or False, got bias={bias!r}; pass bias=False for w·x without an intercept")
        self.link = output
        self.bias = bias
        self.shapes = {"w": (self.d_in,), "c": ()} if bias else {"w": (self.d_in,)}
        self.affine_sets = (frozenset(self.shapes),)

    def init(self, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> Params:
        g = generator(seed, "init")
        params = {"w": self._draw(g, (self.d_in,), 1 / math.sqrt(self.d_in), dtype)}
        if self.bias:
            params["c"] = torch.zeros((), dtype=dtype)
        return params

    def logit(self, params: Params, X: torch.Tensor) -> torch.Tensor:
        return X @ params["w"] + params["c"] if self.bias else X @ params["w"]

    def affine_reason(self) -> str:
        return "the logit w·x + c is linear in (w, c)" if self.bias else "the logit w·x is linear in w"

    def activations_per_example(self, x: torch.Tensor | None = None) -> int:
        return 1 + self.bias + self.d_in

    def describe(self) -> str:
        extras = (", output='sigmoid'" if self.link else "") + ("" if self.bias else ", bias=False")
        return f"Linear(d_in={self.d_in}{extras})"
