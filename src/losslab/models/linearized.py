"""The network linearized around θ0: f_lin(θ, x) = f(θ0, x) + J(θ0, x)(θ − θ0).

One ``torch.func.jvp`` (as in neural-tangents' ``linearize``): the linearized network is just
another model, with the same parameter groups, affine in all of them by construction — the
"lazy" or kernel regime, where the features J(θ0, x) are frozen.
"""

from __future__ import annotations

import torch

from .base import Model, Params, check_params


class Linearized(Model):
    """First-order Taylor expansion of ``model`` at ``params0`` (the logit is expanded; the link kept)."""

    def __init__(self, model: Model, params0: Params):
        check_params(model, params0)
        self.model = model
        self.params0 = {k: v.detach().clone() for k, v in params0.items()}
        self.d_in = model.d_in
        self.shapes = dict(model.shapes)
        self.link = model.link
        self.float_inputs = model.float_inputs
        self.affine_sets = (frozenset(self.shapes),)

    def init(self, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> Params:
        """The expansion point θ0 (the seed is not used: θ0 is the linearization's own start)."""
        return {k: v.to(dtype).clone() for k, v in self.params0.items()}

    def logit(self, params: Params, X: torch.Tensor) -> torch.Tensor:
        p0 = {k: v.to(X.dtype) for k, v in self.params0.items()}
        delta = {k: params[k] - p0[k] for k in p0}
        f0, df = torch.func.jvp(lambda p: self.model.logit(p, X), (p0,), (delta,))
        return f0 + df

    def affine_reason(self) -> str:
        return "f(θ0) + J(θ0)(θ − θ0) is affine in θ (a first-order Taylor expansion)"

    def activations_per_example(self, x: torch.Tensor | None = None) -> int:
        return 3 * self.model.activations_per_example(x)

    def describe(self) -> str:
        return f"Linearized({self.model.describe()})"
