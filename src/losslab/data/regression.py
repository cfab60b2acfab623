"""Regression targets in low dimension: noisy 1-D polynomials and sines, and teacher networks.

Every generator draws in float64 from the ``"data"`` stream of its seed (the teacher's weights from
the ``"target"`` stream; :mod:`losslab.random_streams`): the same call with the same seed returns
identical tensors. The inputs are drawn before the noise, so
changing ``noise`` (and nothing else) keeps X and rescales only the noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .._checks import LosslabError, as_tensor, nonnegative_float, positive_int, seed_int, shape
from ..models import TwoLayer
from ..models.base import Params
from ..random_streams import child_seed
from ._common import DTYPE, finite_float, generator, interval

__all__ = ["Teacher", "cubic", "polynomial_1d", "sine", "teacher", "teacher_params", "teacher_target"]


def _noise(g: torch.Generator, n: int, noise: float) -> torch.Tensor:
    return noise * torch.randn(n, generator=g, dtype=DTYPE)


def polynomial_1d(
    n: int,
    *,
    coefs: Sequence[float] = (0.0, -1.0, 0.0, 1.0),
    noise: float = 0.1,
    x_range: tuple[float, float] = (-1.0, 1.0),
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A noisy 1-D polynomial: y = Σ_k coefs[k]·x^k + noise·ε.

    x ~ Uniform(x_range), ε ~ N(0, 1), independent. The default is the cubic x³ − x.

    Args:
        n: number of examples (>= 1).
        coefs: polynomial coefficients, constant term first (at least one).
        noise: standard deviation of the additive Gaussian noise (>= 0).
        x_range: the interval (lo, hi), lo < hi, that x is drawn from.
        seed: seed of the generator (its ``"data"`` stream, :mod:`losslab.random_streams`).

    Returns:
        ``(X, y)``: float64 tensors of shapes (n, 1) and (n,).

    Example:
        >>> X, y = polynomial_1d(4, coefs=(1.0, 2.0), noise=0.0)
        >>> bool(torch.allclose(y, 1 + 2 * X[:, 0]))
        True
    """
    n = positive_int("n", n)
    noise = nonnegative_float("noise", noise)
    lo, hi = interval("x_range", x_range)
    c = as_tensor("coefs", list(coefs) if not isinstance(coefs, torch.Tensor) else coefs, dtype=DTYPE)
    if c.ndim != 1:
        raise LosslabError(f"expected coefs as a flat sequence of numbers (constant term first), got shape {tuple(c.shape)}")
    g = generator(seed)
    x = lo + (hi - lo) * torch.rand(n, generator=g, dtype=DTYPE)
    powers = x[:, None] ** torch.arange(len(c), dtype=DTYPE)
    y = powers @ c + _noise(g, n, noise)
    return x[:, None], y


def cubic(n: int, *, noise: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The cubic y = x³ − x + noise·ε on x ~ Uniform(−1, 1): :func:`polynomial_1d` with its defaults.

    Returns:
        ``(X, y)``: float64 tensors of shapes (n, 1) and (n,).
    """
    return polynomial_1d(n, noise=noise, seed=seed)


def sine(n: int, *, noise: float = 0.1, frequency: float = 1.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A noisy sine y = sin(frequency·x) + noise·ε on x ~ Uniform(−π, π).

    Args:
        n: number of examples (>= 1).
        noise: standard deviation of the Gaussian noise ε (>= 0).
        frequency: angular frequency (> 0); ``frequency`` full periods fit in [−π, π].
        seed: seed of the generator (its ``"data"`` stream, :mod:`losslab.random_streams`).

    Returns:
        ``(X, y)``: float64 tensors of shapes (n, 1) and (n,).
    """
    n = positive_int("n", n)
    noise = nonnegative_float("noise", noise)
    frequency = finite_float("frequency", frequency, positive=True)
    g = generator(seed)
    x = math.pi * (2 * torch.rand(n, generator=g, dtype=DTYPE) - 1)
    return x[:, None], torch.sin(frequency * x) + _noise(g, n, noise)


@dataclass(frozen=True)
class Teacher:
    """A fixed random network used as a regression target: ``teacher(X) = model.apply(params, X)``.

    Attributes:
        model: the :class:`~losslab.models.TwoLayer` architecture.
        params: its weights ``{"W": (width, d_in), "b": (width,), "v": (width,)}``.
    """

    model: TwoLayer
    params: Params

    def __call__(self, X: object) -> torch.Tensor:
        """The teacher's output on X (n, d_in): shape (n,)."""
        X = as_tensor("X", X, dtype=DTYPE)
        shape("X", X, (None, self.model.d_in))
        return self.model.apply(self.params, X)


def teacher_target(*, d_in: int = 1, width: int = 4, activation: str = "tanh", seed: int = 0) -> Teacher:
    """The teacher network f*(x) = v·σ(Wx + b) with weights ``TwoLayer(...).init(seed=child_seed(seed, "target"))``.

    Weights: W ~ N(0, 1/d_in), b ~ N(0, 1), v ~ N(0, 1/width) (the TwoLayer initialisation), from
    the ``"target"`` stream of ``seed`` (:mod:`losslab.random_streams`): a student
    ``TwoLayer(...).init(seed=seed)`` does not start at the teacher.
    """
    model = TwoLayer(d_in=d_in, width=width, activation=activation)
    seed = seed_int("seed", seed)
    return Teacher(model, model.init(seed=child_seed(seed, "target"), dtype=DTYPE))


def teacher_params(*, d_in: int = 1, width: int = 4, activation: str = "tanh", seed: int = 0) -> Params:
    """The weights of :func:`teacher_target` (the network behind ``teacher(n, seed=seed, ...)``)."""
    return teacher_target(d_in=d_in, width=width, activation=activation, seed=seed).params


def teacher(
    n: int, *, d_in: int = 1, width: int = 4, activation: str = "tanh", noise: float = 0.0, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets from a random two-layer teacher: y = v·σ(Wx + b) + noise·ε, x ~ N(0, I_{d_in}).

    The teacher is ``teacher_target(d_in=d_in, width=width, activation=activation, seed=seed)``;
    the inputs and noise come from the ``"data"`` stream of the same seed, independent of the
    teacher's weights (its ``"target"`` stream).

    Args:
        n: number of examples (>= 1).
        d_in: input dimension.
        width: number of hidden units of the teacher.
        activation: relu, tanh, sigmoid or identity.
        noise: standard deviation of the Gaussian noise ε (>= 0).
        seed: seed of the teacher weights and of the data.

    Returns:
        ``(X, y)``: float64 tensors of shapes (n, d_in) and (n,).

    Example:
        >>> X, y = teacher(5, d_in=3, seed=1)
        >>> bool(torch.equal(y, teacher_target(d_in=3, seed=1)(X)))
        True
    """
    n = positive_int("n", n)
    noise = nonnegative_float("noise", noise)
    target = teacher_target(d_in=d_in, width=width, activation=activation, seed=seed)
    g = generator(seed)
    X = torch.randn(n, target.model.d_in, generator=g, dtype=DTYPE)
    return X, target(X) + _noise(g, n, noise)
