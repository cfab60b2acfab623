"""Multi-index targets: y = g(Uᵀx) + noise, a function of r ≪ d hidden directions of x ∈ R^d.

U is a random d × r matrix with orthonormal columns (Haar-distributed: the Q factor of a
Gaussian matrix with the signs of R's diagonal fixed positive), x ~ N(0, I_d), so z = Uᵀx ~
N(0, I_r). A network f(x) = v·σ(Wx + b) can fit such a target by turning the rows of W towards
span(U) (feature learning); a fixed basis — monomials of degree ≤ k, random features, a kernel —
must span functions of all d coordinates, and its sample cost grows with d (Ghorbani, Mei,
Misiakiewicz & Montanari 2019/2021 on the limits of linearized networks and kernels; Damian,
Lee & Soltanolkotabi 2022 and Abbe, Boix-Adserà & Misiakiewicz 2022 on networks learning
the hidden directions with gradient descent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .._checks import LosslabError, as_tensor, choice, nonnegative_float, positive_int, shape
from ._common import DTYPE, generator

__all__ = ["LINKS", "MultiIndex", "multi_index", "multi_index_target"]

LINKS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh-sum": lambda z: torch.tanh(2.0 * z).sum(dim=-1),
    "relu-sum": lambda z: torch.relu(z).sum(dim=-1),
    "product": lambda z: z.prod(dim=-1),
}
"""Link name → g(z) for z of shape (n, r): Σ_i tanh(2 z_i), Σ_i relu(z_i), Π_i z_i."""


@dataclass(frozen=True)
class MultiIndex:
    """The hidden target f*(x) = g(Uᵀx).

    Attributes:
        U: float64 (d, r) with orthonormal columns: the hidden directions.
        link: the name of g in :data:`LINKS`.
    """

    U: torch.Tensor
    link: str

    @property
    def d(self) -> int:
        """The input dimension."""
        return int(self.U.shape[0])

    @property
    def r(self) -> int:
        """The number of hidden directions."""
        return int(self.U.shape[1])

    def g(self, Z: torch.Tensor) -> torch.Tensor:
        """The link g applied to the hidden coordinates Z (n, r): shape (n,)."""
        return LINKS[self.link](Z)

    def __call__(self, X: object) -> torch.Tensor:
        """f*(X) = g(X U) for X of shape (n, d): shape (n,), in X's float dtype (float64 for other inputs)."""
        X = as_tensor("X", X)
        if not X.dtype.is_floating_point:
            X = X.to(DTYPE)
        shape("X", X, (None, self.d))
        return self.g(X @ self.U.to(X.dtype))


def multi_index_target(d: int = 30, r: int = 2, link: str = "tanh-sum", seed: int = 0) -> MultiIndex:
    """Draw r orthonormal hidden directions in R^d (Haar) for the link ``link``.

    Args:
        d: input dimension (>= 1).
        r: number of hidden directions, 1 ≤ r ≤ d.
        link: a key of :data:`LINKS`.
        seed: seed of U (its ``"target"`` stream, :mod:`losslab.random_streams`).

    Returns:
        A :class:`MultiIndex`.

    Example:
        >>> t = multi_index_target(d=5, r=2, seed=0)
        >>> torch.allclose(t.U.T @ t.U, torch.eye(2, dtype=torch.float64))
        True
    """
    d = positive_int("d", d)
    r = positive_int("r", r)
    if r > d:
        raise LosslabError(f"expected at most d={d} hidden directions, got r={r}; lower r or raise d")
    link = choice("link", link, LINKS)
    G = torch.randn(d, r, generator=generator(seed, purpose="target"), dtype=DTYPE)
    Q, R = torch.linalg.qr(G)
    signs = torch.sign(torch.diagonal(R))
    signs[signs == 0] = 1.0
    return MultiIndex(U=Q * signs, link=link)


def multi_index(
    n: int,
    *,
    d: int = 30,
    r: int = 2,
    link: str = "tanh-sum",
    noise: float = 0.1,
    seed: int = 0,
    sample_seed: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gaussian inputs x ~ N(0, I_d) and y = g(Uᵀx) + noise·ε; returns the hidden directions too.

    U is ``multi_index_target(d, r, link, seed).U``. The inputs and the noise come from the
    ``"data"`` stream of ``sample_seed`` if given (draw a training and a test set for the same U
    with two sample seeds), else of ``seed`` (:mod:`losslab.random_streams`).

    Args:
        n: number of examples (>= 1).
        d: input dimension.
        r: number of hidden directions (1 ≤ r ≤ d).
        link: g, a key of :data:`LINKS`.
        noise: standard deviation of the Gaussian noise ε (>= 0).
        seed: seed of U (and of the samples when ``sample_seed`` is None).
        sample_seed: seed of X and ε.

    Returns:
        ``(X, y, U)``: float64 tensors of shapes (n, d), (n,) and (d, r).

    Example:
        >>> X, y, U = multi_index(6, d=4, r=1, noise=0.0, seed=2)
        >>> tuple(X.shape), tuple(U.shape), bool(torch.equal(y, torch.tanh(2 * X @ U)[:, 0]))
        ((6, 4), (4, 1), True)
    """
    n = positive_int("n", n)
    noise = nonnegative_float("noise", noise)
    target = multi_index_target(d, r, link, seed)
    g = generator(seed) if sample_seed is None else generator(sample_seed, "sample_seed")
    X = torch.randn(n, target.d, generator=g, dtype=DTYPE)
    return X, target(X) + noise * torch.randn(n, generator=g, dtype=DTYPE), target.U
