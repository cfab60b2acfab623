"""The monomial basis: f(x; θ) = Σ_α θ_α x^α over all multi-indices α with |α| ≤ k.

In d variables there are C(d + k, k) monomials of total degree ≤ k (degree 4 in 100 variables:
4,598,126). The model is linear in θ by construction: fixed features, convex squared loss.

Features are built degree by degree as a product tree: each monomial of degree k is a monomial
of degree k − 1 (its *parent*) times one variable x_j with j ≥ the parent's last variable, so
the n × C(d+k, k) feature matrix costs one multiply per entry and no (n, C(d+k, k), d) power table.
"""

from __future__ import annotations

import itertools
import math

import torch

from .._checks import LosslabError, positive_int
from ..random_streams import generator
from .base import Model, Params

MAX_MONOMIALS = 5_000_000  # the parent/variable index tables: 80 MB of int64
MAX_FEATURE_ENTRIES = 100_000_000  # one n × C(d+k, k) feature matrix: 800 MB in float64
MAX_EXPONENT_ENTRIES = 20_000_000  # the dense (monomials, d_in) exponent table, built only on request


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


def product_tree(d_in: int, degree: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(parent, variable), each shape (C(d+k, k) − 1,): monomial m + 1 = monomial parent[m] · x_variable[m].

    Monomials are numbered by degree, then lexicographically in their sorted variable indices
    (the order of :func:`monomial_exponents`); monomial 0 is the constant 1.
    """
    parents, variables = [], []
    level = torch.zeros(1, dtype=torch.int64)  # global indices of the current degree's monomials
    last = torch.zeros(1, dtype=torch.int64)  # their last variable (the constant may be followed by any)
    start = 1
    for _ in range(degree):
        children = d_in - last  # each monomial extends by x_j for j >= its last variable
        parent = torch.repeat_interleave(level, children)
        offsets = torch.arange(int(children.sum())) - torch.repeat_interleave(torch.cumsum(children, 0) - children, children)
        variable = torch.repeat_interleave(last, children) + offsets
        parents.append(parent)
        variables.append(variable)
        level = torch.arange(start, start + len(parent))
        last = variable
        start += len(parent)
    empty = torch.zeros(0, dtype=torch.int64)
    return (torch.cat(parents) if parents else empty), (torch.cat(variables) if variables else empty)


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
        if count > MAX_MONOMIALS:
            raise LosslabError(
                f"expected at most {MAX_MONOMIALS:,} monomials, got Polynomial(d_in={d_in}, degree={degree}) with "
                f"C({d_in}+{degree}, {degree}) = {count:,}; lower the degree or fit by kernel ridge (losslab.fit.kernel_ridge)"
            )
        self.parent, self.variable = product_tree(self.d_in, degree)
        self._exponents: torch.Tensor | None = None
        self.shapes = {"coef": (count,)}
        self.affine_sets = (frozenset({"coef"}),)

    @property
    def exponents(self) -> torch.Tensor:
        """The exponent vectors α of the monomials, shape (C(d+k, k), d_in) (built on first use)."""
        if self._exponents is None:
            if self.n_params * self.d_in > MAX_EXPONENT_ENTRIES:
                raise LosslabError(
                    f"expected at most {MAX_EXPONENT_ENTRIES:,} exponent entries, got {self.n_params:,} monomials × {self.d_in} inputs"
                )
            self._exponents = monomial_exponents(self.d_in, self.degree)
        return self._exponents

    def features(self, X: torch.Tensor) -> torch.Tensor:
        """The monomials x^α of every row of X (n, d_in): shape (n, C(d+k, k))."""
        n, count = X.shape[0], self.n_params
        if n * count > MAX_FEATURE_ENTRIES:
            raise LosslabError(
                f"expected at most {MAX_FEATURE_ENTRIES:,} feature entries, got n={n} × {count:,} monomials; "
                "use fewer examples, a lower degree, or kernel ridge (losslab.fit.kernel_ridge)"
            )
        feats = X.new_empty(n, count)
        feats[:, 0] = 1.0
        start = 1
        for k in range(1, self.degree + 1):  # one degree at a time: parents are all computed before children
            size = math.comb(self.d_in + k - 1, k)
            idx = slice(start - 1, start - 1 + size)
            feats[:, start : start + size] = feats[:, self.parent[idx]] * X[:, self.variable[idx]]
            start += size
        return feats

    def init(self, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> Params:
        g = generator(seed, "init")
        return {"coef": self._draw(g, self.shapes["coef"], 1 / math.sqrt(self.n_params), dtype)}

    def logit(self, params: Params, X: torch.Tensor) -> torch.Tensor:
        return self.features(X) @ params["coef"]

    def affine_reason(self) -> str:
        return "f(x; θ) = Σ_α θ_α x^α is linear in θ (fixed monomial features)"

    def activations_per_example(self, x: torch.Tensor | None = None) -> int:
        return 2 * self.n_params + self.d_in

    def describe(self) -> str:
        return f"Polynomial(d_in={self.d_in}, degree={self.degree}): {self.n_params} monomials"
