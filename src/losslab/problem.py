"""The one abstraction: a training loss as a function of a flat parameter vector.

    L(θ) = (1/n) Σ_i ℓ(f(θ, x_i), y_i) + l2·‖θ_all‖²,   θ ∈ R^p

A :class:`Problem` holds a pure model, data (X of shape (n, d_in), y), a loss and an L2 weight,
and exposes ``loss(θ)`` for θ of shape (p,), ``loss_batch(Θ)`` for Θ of shape (K, p) in one
``torch.func.vmap`` call chunked to a memory budget, ``grad`` and ``hvp``. ``restrict(groups,
at)`` gives the same loss as a function of some parameter groups only, the others held fixed
— the problem in which "convex in v with W, b fixed" is a statement.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from ._checks import LosslabError, as_tensor, float_dtype, nonnegative_float, positive_int, shape
from .losses import Loss, check_targets, get_loss
from .models.base import Model, Params

__all__ = ["Problem"]

DEFAULT_MEMORY_BUDGET = 256 * 2**20


class Problem:
    """A model, data, a loss and an L2 weight, as L: R^p → R on a flat vector θ.

    Args:
        model: a :class:`~losslab.models.Model`.
        X: inputs, shape (n, d_in) (or (n,) when d_in == 1); tensor, array or nested list.
        y: targets, shape (n,) or (n, k) for mse, (n,) in [0, 1] for bce, (n,) labels for cross_entropy.
        loss: ``"mse"``, ``"bce"`` or ``"cross_entropy"`` (see :mod:`losslab.losses`). With a
            sigmoid-output model, bce is the cross-entropy of its probabilities, computed from its logit.
        l2: weight of l2·‖θ‖² summed over all parameter groups (fixed ones included).
        dtype: float32 or float64; default X's float dtype, else float64.
        memory_budget: bytes of intermediates one chunk of ``loss_batch`` may use.

    Example:
        >>> from losslab.models import Polynomial
        >>> x = torch.linspace(-1, 1, 5, dtype=torch.float64)
        >>> prob = Problem(Polynomial(1, 2), x, x**2)
        >>> float(prob.loss(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)))
        0.0
    """

    def __init__(
        self,
        model: Model,
        X: object,
        y: object,
        loss: str | Loss = "mse",
        l2: float = 0.0,
        *,
        dtype: torch.dtype | str | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
    ):
        if not isinstance(model, Model):
            raise LosslabError(
                f"expected a losslab model (e.g. losslab.models.TwoLayer), got {type(model).__name__}; "
                "wrap a torch.nn.Module with losslab.models.Module(module)"
            )
        self.model = model
        self.loss_fn = get_loss(loss)
        self.l2 = nonnegative_float("l2", l2)
        X = as_tensor("X", X)
        if dtype is None:
            dtype = X.dtype if X.dtype in (torch.float32, torch.float64) else torch.float64
        self.dtype = float_dtype(dtype)
        X = X.to(self.dtype)
        if X.ndim == 1 and model.d_in in (1, None):
            X = X[:, None]
        if model.d_in is not None:
            shape("X", X, (None, model.d_in))
        self.X = X
        self.n = X.shape[0]
        if self.loss_fn.name == "cross_entropy" and model.link is not None:
            raise LosslabError(f"cross_entropy expects a model that outputs logits, got {model.describe()} with a {model.link} output")
        self.memory_budget = positive_int("memory_budget", memory_budget)
        probe = model.default_params(dtype=self.dtype)
        try:
            with torch.no_grad():
                out = model.apply(probe, X)
        except LosslabError:
            raise
        except Exception as err:  # a model that cannot run on these inputs
            raise LosslabError(
                f"expected X that {model.describe()} can be applied to, got X of shape {tuple(X.shape)}, on which it fails: {err}"
            ) from None
        if out.ndim not in (1, 2) or out.shape[0] != self.n:
            raise LosslabError(f"expected model outputs of shape (n,) or (n, k) with n={self.n}, got shape {tuple(out.shape)}")
        if not torch.isfinite(out).all():
            bad = int((~torch.isfinite(out)).sum())
            raise LosslabError(
                f"expected finite model outputs on X at the model's initial parameters, got {bad} NaN/inf value(s) "
                f"from {model.describe()}; rescale X or lower the degree/depth"
            )
        self.y = check_targets(self.loss_fn, (self.n, *out.shape[1:]), as_tensor("y", y), self.dtype)
        self.free: tuple[str, ...] = model.groups
        self.fixed: Params = {}

    # ---- parameter vectors -------------------------------------------------------------
    @property
    def groups(self) -> tuple[str, ...]:
        """The free parameter groups (those in θ), in flattening order."""
        return self.free

    @property
    def n_params(self) -> int:
        """p, the length of θ."""
        return sum(math.prod(self.model.shapes[g]) for g in self.free)

    def slices(self) -> dict[str, slice]:
        """Where each free group sits in θ."""
        out, start = {}, 0
        for g in self.free:
            size = math.prod(self.model.shapes[g])
            out[g] = slice(start, start + size)
            start += size
        return out

    def flatten(self, params: Params) -> torch.Tensor:
        """Concatenate the free groups of ``params`` into θ of shape (p,)."""
        missing = [g for g in self.free if g not in params]
        if missing:
            raise LosslabError(f"expected parameter groups {list(self.free)}, got {list(params)} (missing {missing})")
        for g in self.free:
            if tuple(params[g].shape) != self.model.shapes[g]:
                raise LosslabError(f"expected group {g!r} of shape {self.model.shapes[g]}, got shape {tuple(params[g].shape)}")
        return torch.cat([params[g].reshape(-1).to(self.dtype) for g in self.free])

    def unflatten(self, theta: torch.Tensor) -> Params:
        """The full parameter dict: free groups read from θ (p,), fixed groups as held."""
        params = {g: theta[s].reshape(self.model.shapes[g]) for g, s in self.slices().items()}
        params.update({g: v.to(theta.dtype) for g, v in self.fixed.items()})
        return params

    def init(self, seed: int = 0) -> torch.Tensor:
        """θ from ``model.init(seed=seed)`` (free groups only)."""
        return self.flatten(self.model.init(seed=seed, dtype=self.dtype))

    def default_theta(self, seed: int = 0) -> torch.Tensor:
        """θ where analyses start by default: ``model.default_params`` (a wrapped module's own weights)."""
        return self.flatten(self.model.default_params(seed=seed, dtype=self.dtype))

    def as_theta(self, theta: object, name: str = "theta") -> torch.Tensor:
        """Validate θ (tensor/array of shape (p,), or a params dict) and cast it to the problem dtype."""
        if isinstance(theta, dict):
            theta = self.flatten({g: v.detach() if isinstance(v, torch.Tensor) else v for g, v in theta.items()})
        theta = as_tensor(name, theta, dtype=self.dtype)
        shape(name, theta, (self.n_params,))
        return theta

    # ---- restriction to groups ---------------------------------------------------------
    def restrict(self, groups: Iterable[str], at: Params | torch.Tensor | None = None) -> Problem:
        """The same loss as a function of ``groups`` only; the other groups fixed at ``at``.

        ``at`` is a params dict or a θ of this problem (default: :meth:`default_theta`).
        """
        groups = [groups] if isinstance(groups, str) else list(groups)
        unknown = [g for g in groups if g not in self.free]
        if not groups or unknown:
            raise LosslabError(f"expected groups among {list(self.free)}, got {groups}" + (f" (unknown: {unknown})" if unknown else ""))
        if at is None:
            at_params = self.unflatten(self.default_theta(0))
        elif isinstance(at, dict):
            at_params = {**self.fixed, **{g: at[g] for g in self.free if g in at}}
            self.flatten(at_params)
        else:
            at_params = self.unflatten(self.as_theta(at, "at"))
        sub = object.__new__(Problem)
        sub.__dict__.update(self.__dict__)
        sub.free = tuple(g for g in self.model.groups if g in groups)
        sub.fixed = {g: at_params[g].detach().to(self.dtype).clone() for g in self.model.groups if g not in groups}
        return sub

    def full(self) -> Problem:
        """This problem with every group free (the inverse of :meth:`restrict`)."""
        out = object.__new__(Problem)
        out.__dict__.update(self.__dict__)
        out.free, out.fixed = self.model.groups, {}
        return out

    def embed(self, theta: torch.Tensor) -> torch.Tensor:
        """θ of this (possibly restricted) problem as a vector of all parameters."""
        return self.full().flatten(self.unflatten(theta))

    def to(self, dtype: torch.dtype | str) -> Problem:
        """A copy computing in ``dtype`` (float32 or float64)."""
        dtype = float_dtype(dtype)
        out = object.__new__(Problem)
        out.__dict__.update(self.__dict__)
        out.dtype, out.X = dtype, self.X.to(dtype)
        out.y = self.y if not self.y.dtype.is_floating_point else self.y.to(dtype)
        out.fixed = {g: v.to(dtype) for g, v in self.fixed.items()}
        return out

    # ---- the loss and its derivatives ----------------------------------------------------
    def _objective(self, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_of_params(self.unflatten(theta), X, y)

    @property
    def loss_takes_logit(self) -> bool:
        """Whether the data loss reads the model's logit rather than its output.

        True for bce on a sigmoid-output model: the cross-entropy of σ(z) is computed stably
        from z. Otherwise (no link, or mse of a sigmoid output) the loss reads ``model.apply``.
        """
        return self.loss_fn.name == "bce" and self.model.link == "sigmoid"

    def loss_input(self, params: Params, X: torch.Tensor | None = None) -> torch.Tensor:
        """z: what the data loss is computed on — the logit or the output (see :attr:`loss_takes_logit`)."""
        X = self.X if X is None else X
        return self.model.logit(params, X) if self.loss_takes_logit else self.model.apply(params, X)

    def loss_of_params(self, params: Params, X: torch.Tensor | None = None, y: torch.Tensor | None = None) -> torch.Tensor:
        """L at a full parameter dict (every group), on (X, y) (default: the training data).

        The same function as :meth:`loss`, for callers that differentiate with respect to the
        groups' own tensors rather than a flat θ (which saves the slicing in double backward).
        """
        y = self.y if y is None else y
        data = self.loss_fn(self.loss_input(params, X), y)
        if self.l2:
            data = data + self.l2 * sum((p**2).sum() for p in params.values())
        return data

    def loss(self, theta: torch.Tensor, *, indices: torch.Tensor | None = None) -> torch.Tensor:
        """L(θ), a 0-dim tensor; ``indices`` restricts the data average to a minibatch."""
        if indices is None:
            return self._objective(theta, self.X, self.y)
        return self._objective(theta, self.X[indices], self.y[indices])

    def output(self, theta: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
        """The model output f(θ, X) (default: the training inputs)."""
        if X is None:
            return self.model.apply(self.unflatten(theta), self.X)
        X = as_tensor("X", X, dtype=self.dtype)
        if X.ndim == 1 and self.model.d_in in (1, None):
            X = X[:, None]
        if self.model.d_in is not None:
            shape("X", X, (None, self.model.d_in))
        return self.model.apply(self.unflatten(theta), X)

    def chunk_size(self) -> int:
        """How many parameter points one vmapped call evaluates within ``memory_budget``."""
        per_example = self.model.activations_per_example(self.X[:1]) + self.X[0].numel()
        per_point = self.n * per_example * self.X.element_size() * 3
        return max(1, self.memory_budget // max(per_point, 1))

    def loss_batch(self, Theta: torch.Tensor) -> torch.Tensor:
        """L at each row of Θ (K, p) → (K,), by ``torch.func.vmap`` in chunks of :meth:`chunk_size`."""
        Theta = torch.as_tensor(Theta)
        shape("Theta", Theta, (None, self.n_params))
        Theta = Theta.to(self.dtype)
        batched = torch.func.vmap(self.loss)
        size = self.chunk_size()
        with torch.no_grad():
            return torch.cat([batched(chunk) for chunk in Theta.split(size)]) if len(Theta) else Theta.new_zeros(0)

    def grad(self, theta: torch.Tensor) -> torch.Tensor:
        """∇L(θ), shape (p,)."""
        return torch.func.grad(self.loss)(theta)

    def hvp(self, theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """∇²L(θ)·v, shape (p,): forward-over-reverse, ``jvp(grad(L), θ, v)``."""
        return torch.func.jvp(torch.func.grad(self.loss), (theta,), (v,))[1]

    def describe(self) -> str:
        """One line: model, loss, data size, parameters analysed."""
        fixed = f", fixed {list(self.fixed)}" if self.fixed else ""
        reg = f" + {self.l2:g}·‖θ‖²" if self.l2 else ""
        return f"{self.model.describe()}, {self.loss_fn.name}{reg}, n={self.n}, p={self.n_params} in {list(self.free)}{fixed}"

    def __repr__(self) -> str:
        return f"Problem({self.describe()})"

