"""The monomial basis: f(x; θ) = Σ_α θ_α x^α over all multi-indices α with |α| ≤ k.

In d variables there are C(d + k, k) monomials of total degree ≤ k (degree 4 in 100 variables:
4,598,126). The model is linear in θ by construction: fixed features, convex squared loss.
"""

from __future__ import annotations

import itertools
import math

import torch

from .._checks import LosslabError, positive_int
from .base import Model, Params

MAX_EXPONENT_ENTRIES = 20_000_000  # the (monomials, d_in) exponent table: 160 MB of int64


def monomial_exponents(d_in: int, degree: int) -> torch.Tensor:
    """All exponent vectors α ∈ N^d with |α| ≤ degree, shape (C(d+k, k), d), by degree then lexicographic."""
    rows = []
    for k in range(degree + 1):
        for combo in itertools.combinations_with_replacement(range(d_in), k):
            alpha = [0] * d_in
            for j in combo:
                alpha[j] += 1
            rows.append(alpha)
    return torch.tensor(rows, dtype=torch.int64).reshape(len(rows), d_in)


class Polynomial(Model):
    """All monomials of total degree ≤ ``degree`` in ``d_in`` variables; one group ``"coef"``.

    Example:
        >>> m = Polynomial(d_in=2, degree=2)
        >>> m.n_params  # 1, x1, x2, x1², x1x2, x2²
        6
    """

    def __init__(self, d_in: int = 1, degree: int = 3):
        self.d_in = positive_int("d_in", d_in)
        if isinstance(degree, bool) or not isinstance(degree, int) or degree < 0:
            raise LosslabError(f"expected degree to be an integer >= 0, got degree={degree!r}")
        self.degree = degree
        count = math.comb(self.d_in + degree, degree)
        if count * self.d_in > MAX_EXPONENT_ENTRIES:
            raise LosslabError(
                f"expected at most {MAX_EXPONENT_ENTRIES:,} monomials × inputs, got Polynomial(d_in={d_in}, degree={degree}) with "
                f"C({d_in}+{degree}, {degree}) = {count:,} monomials × {d_in} inputs; lower the degree or use a kernel method"
            )
        self.exponents = monomial_exponents(self.d_in, degree)
        self.shapes = {"coef": (count,)}
        self.affine_sets = (frozenset({"coef"}),)

    def features(self, X: torch.Tensor) -> torch.Tensor:
        """The monomials x^α of every row of X (n, d_in): shape (n, C(d+k, k))."""
        return torch.prod(X.unsqueeze(1) ** self.exponents.to(X.device), dim=-1)

    def init(self, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> Params:
        g = torch.Generator().manual_seed(seed)
        return {"coef": self._draw(g, self.shapes["coef"], 1 / math.sqrt(self.n_params), dtype)}

    def logit(self, params: Params, X: torch.Tensor) -> torch.Tensor:
        return self.features(X) @ params["coef"]

    def affine_reason(self) -> str:
        return "f(x; θ) = Σ_α θ_α x^α is linear in θ (fixed monomial features)"

    def activations_per_example(self) -> int:
        return 2 * self.n_params + self.d_in

    def describe(self) -> str:
        return f"Polynomial(d_in={self.d_in}, degree={self.degree}): {self.n_params} monomials"
