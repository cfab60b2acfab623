"""Sparse monomial targets in high dimension: y = Σ_t c_t·x^{α_t} over a few hidden monomials.

A target that depends on a handful of coordinates through a low-degree polynomial is cheap for
a network that learns its features (it finds the few relevant directions) and expensive for a
fixed-feature model, which must span all C(d + k, k) monomials of degree ≤ k — the classic
separation between feature learning and kernel methods (e.g. Abbe, Boix-Adserà & Misiakiewicz
2022 on the staircase/merged-staircase property; Ghorbani et al. 2019 on the limits of random
features and kernels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import LosslabError, as_tensor, nonnegative_float, positive_int, shape
from ._common import DTYPE, generator

__all__ = ["SparseMonomials", "sparse_monomials", "sparse_monomials_target"]

_MAX_TRIES = 100


@dataclass(frozen=True)
class SparseMonomials:
    """The hidden target f*(x) = Σ_t coefs[t]·Π_j x_j^{exponents[t, j]}.

    Attributes:
        exponents: int64 tensor (n_terms, d), row t the exponent vector α_t of term t.
        coefs: float64 tensor (n_terms,).
    """

    exponents: torch.Tensor
    coefs: torch.Tensor

    @property
    def d(self) -> int:
        """The input dimension."""
        return int(self.exponents.shape[1])

    @property
    def degree(self) -> int:
        """The largest total degree |α_t| among the terms."""
        return int(self.exponents.sum(dim=1).max())

    def support(self) -> list[int]:
        """The coordinates the target depends on, ascending."""
        return sorted(int(j) for j in torch.nonzero(self.exponents.sum(dim=0)).flatten())

    def __call__(self, X: object) -> torch.Tensor:
        """f*(X) for X of shape (n, d): shape (n,), computed in X's float dtype (float64 for other inputs)."""
        X = as_tensor("X", X)
        if not X.dtype.is_floating_point:
            X = X.to(DTYPE)
        shape("X", X, (None, self.d))
        monomials = torch.prod(X[:, None, :] ** self.exponents.to(X.device), dim=-1)
        return monomials @ self.coefs.to(X.dtype)

    def formula(self) -> str:
        """The target as text, e.g. ``"0.83·x3·x7² − 1.2·x5"`` (coordinates numbered from 0)."""
        sup = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
        parts = []
        for alpha, c in zip(self.exponents.tolist(), self.coefs.tolist()):
            factors = [f"x{j}" + (str(a).translate(sup) if a > 1 else "") for j, a in enumerate(alpha) if a]
            body = "·".join([f"{abs(c):.3g}", *factors])
            parts.append(("− " if c < 0 else "+ ") + body)
        text = " ".join(parts)
        return text[2:] if text.startswith("+ ") else "−" + text[2:]


def _count_monomials(d: int, degree: int) -> int:
    """How many exponent vectors the terms are drawn from: 1 ≤ |α| ≤ degree (only α = 0 if degree = 0)."""
    return 1 if degree == 0 else math.comb(d + degree, degree) - 1


def sparse_monomials_target(d: int = 20, degree: int = 3, n_terms: int = 3, seed: int = 0) -> SparseMonomials:
    """Draw a hidden sparse polynomial of total degree ``degree`` in ``d`` variables.

    Term 0 has total degree exactly ``degree`` (so the target has that degree); every other term
    has a degree drawn uniformly from {1, …, degree}. A term of degree k picks k coordinates
    uniformly with replacement (so squares such as x_3² can occur); terms are distinct.
    Coefficients are ±U(0.5, 1.5) with a random sign, so no term is negligible. ``degree = 0``
    gives the constant target (``n_terms`` must then be 1).

    Args:
        d: input dimension (>= 1).
        degree: total degree of the target (>= 0).
        n_terms: number of distinct monomials (1 ≤ n_terms ≤ number of monomials available).
        seed: seed of the target (its ``"target"`` stream, :mod:`losslab.random_streams`).

    Returns:
        A :class:`SparseMonomials` with ``exponents`` (n_terms, d) and ``coefs`` (n_terms,).

    Example:
        >>> t = sparse_monomials_target(d=10, degree=2, n_terms=2, seed=0)
        >>> tuple(t.exponents.shape), t.degree
        ((2, 10), 2)
    """
    d = positive_int("d", d)
    degree = positive_int("degree", degree, minimum=0)
    n_terms = positive_int("n_terms", n_terms)
    available = _count_monomials(d, degree)
    if n_terms > available:
        raise LosslabError(
            f"expected n_terms <= {available} (the distinct monomials of degree 1..{degree} in d={d} variables), "
            f"got n_terms={n_terms}; lower n_terms or raise d or degree"
        )
    g = generator(seed, purpose="target")
    rows: list[tuple[int, ...]] = []
    seen: set[tuple[int, ...]] = set()
    tries = 0
    while len(rows) < n_terms:
        tries += 1
        if tries > _MAX_TRIES * n_terms + 10_000:
            raise LosslabError(
                f"could not draw n_terms={n_terms} distinct monomials of degree <= {degree} in d={d} variables "
                f"(only {available} exist); lower n_terms"
            )
        if not rows or degree == 0:
            k = degree
        else:
            k = int(torch.randint(1, degree + 1, (1,), generator=g))
        alpha = torch.bincount(torch.randint(0, d, (k,), generator=g), minlength=d)
        key = tuple(alpha.tolist())
        if key in seen:
            continue
        seen.add(key)
        rows.append(key)
    exponents = torch.tensor(rows, dtype=torch.int64).reshape(n_terms, d)
    signs = torch.where(torch.rand(n_terms, generator=g, dtype=DTYPE) < 0.5, -1.0, 1.0).to(DTYPE)
    coefs = signs * (0.5 + torch.rand(n_terms, generator=g, dtype=DTYPE))
    return SparseMonomials(exponents, coefs)


def sparse_monomials(
    n: int, *, d: int = 20, degree: int = 3, n_terms: int = 3, noise: float = 0.0, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian inputs x ~ N(0, I_d) and y = f*(x) + noise·ε for a hidden sparse polynomial f*.

    f* is ``sparse_monomials_target(d, degree, n_terms, seed)`` (the ``"target"`` stream of the
    seed); the inputs and the noise come from its ``"data"`` stream (:mod:`losslab.random_streams`).

    Args:
        n: number of examples (>= 1).
        d: input dimension (>= 1).
        degree: total degree of the target (>= 0).
        n_terms: number of monomials in the target (>= 1).
        noise: standard deviation of the Gaussian noise ε (>= 0).
        seed: seed of the target and of the data.

    Returns:
        ``(X, y)``: float64 tensors of shapes (n, d) and (n,).

    Example:
        >>> X, y = sparse_monomials(8, d=5, degree=2, n_terms=2, seed=3)
        >>> bool(torch.equal(y, sparse_monomials_target(5, 2, 2, seed=3)(X)))
        True
    """
    n = positive_int("n", n)
    noise = nonnegative_float("noise", noise)
    target = sparse_monomials_target(d, degree, n_terms, seed)
    g = generator(seed)
    X = torch.randn(n, target.d, generator=g, dtype=DTYPE)
    return X, target(X) + noise * torch.randn(n, generator=g, dtype=DTYPE)
