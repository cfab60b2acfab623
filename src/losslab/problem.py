"""The one abstraction: a training loss as a function of a flat parameter vector.

    L(θ) = Σ_b (n_b/n) · ℓ_b(θ) + l2·‖θ_all‖²,   θ ∈ R^p,   ℓ_b = mean loss on batch b

A :class:`Problem` holds a pure model, data (tensors X, y, or a DataLoader / re-iterable of
batches, see :mod:`losslab.batches`), a loss and an L2 weight, on one device. It exposes
``loss(θ)`` for θ of shape (p,), ``loss_batch(Θ)`` for Θ of shape (K, p) (one
``torch.func.vmap`` call per memory-budget chunk and batch), ``grad`` and ``hvp``, each
accumulated exactly over the whole dataset. ``restrict(groups, at)`` gives the same loss as a
function of some parameter groups only, the others held fixed — the problem in which "convex in
v with W, b fixed" is a statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import torch

from ._checks import LosslabError, as_tensor, finite_result, float_dtype, nonnegative_float, positive_int, shape
from ._problem_build import check_device, validate
from ._problem_copies import converted, restricted
from ._problem_data import ProblemData
from ._problem_objective import Objective, ObjectiveProblems
from ._problem_points import losses_at_points
from ._problem_vectors import ParameterVectors
from .batches import DEFAULT_CACHE_BYTES, Batch, Batches, map_tensors, tensors
from .losses import Loss, get_loss
from .memory import DEFAULT_MEMORY_BUDGET
from .models.base import Model, Params

__all__ = ["Problem"]


# What a Problem is made of: every copy (restrict, full, to, with_memory_budget) is these parts, some replaced,
# passed through Problem._from_parts.
_PARTS = ("model", "loss_fn", "l2", "memory_budget", "dtype", "device", "data", "free", "_fixed", "_out_ndim",
          "_bytes_per_point", "_batched", "batching_note")
# The method that gives a copy with the attribute changed, for the error on an assignment.
_HOW_TO_CHANGE = {
    "memory_budget": "problem.with_memory_budget(bytes)",
    "dtype": "problem.to(dtype)",
    "device": "problem.to(device)",
    "free": "problem.restrict(groups, at=...) or problem.full()",
    "fixed": "problem.restrict(groups, at=...) or problem.full()",
    "groups": "problem.restrict(groups, at=...) or problem.full()",
}


class Problem(ProblemData, ParameterVectors, ObjectiveProblems):
    """A model, data, a loss and an L2 weight, as L: R^p → R on a flat vector θ.

    Args:
        model: a :class:`~losslab.models.Model` (wrap a ``torch.nn.Module`` in
            :class:`~losslab.models.Module`).
        X: inputs, shape (n, d_in) (or (n,) when d_in == 1); a tensor, array or nested list, or a
            tuple/dict of tensors for a module taking several inputs. Or, with ``y`` omitted, a
            ``torch.utils.data.DataLoader`` or any re-iterable of batches ``(inputs, targets)`` or
            dicts with the targets under ``target_key`` (see :mod:`losslab.batches`).
        y: targets, shape (n,) or (n, k) for mse, (n,) in [0, 1] for bce, (n,) labels for cross_entropy.
        loss: ``"mse"``, ``"bce"`` or ``"cross_entropy"`` (see :mod:`losslab.losses`). With a
            sigmoid-output model, bce is the cross-entropy of its probabilities, computed from its logit.
        l2: weight of l2·‖θ‖² summed over all parameter groups (fixed ones included).
        dtype: float32 or float64; default X's float dtype (the first floating input of a batch), else float64.
            Only floating inputs follow it: integer inputs (token ids) keep their dtype.
        device: where everything runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``, …); default the wrapped
            module's device (CPU for built-in models). Data batches move there one at a time.
        batch_size: with tensors, evaluate them in slices of this many rows (memory); the loss is the same,
            except for a module in train mode, whose BatchNorm layers use each batch's own statistics.
        target_key: the targets' key in dict batches.
        memory_budget: bytes of intermediates any analysis of this problem may allocate (default 256 MiB):
            what it allocates beyond the problem's own data and parameters and the arrays its caller
            passes — activations of a chunk of points (``loss_batch``, slices, chords, ensembles), probe
            blocks and Lanczos bases (SLQ, Hutchinson, Hutch++, XTrace, ``eigs``), Jacobians and kernel
            matrices (least squares), and the parameter rows an ensemble holds. Analyses work in blocks
            that fit; where the smallest block does not (one point's forward and gradient graph on the largest batch, one
            probe's Lanczos basis, a dense p × p matrix) they raise a LosslabError before allocating it,
            naming the bytes needed and the setting to lower (:mod:`losslab.memory`). The autograd graphs
            a curvature operator caches are its own: it caches them only when they fit in four budgets.
        cache_bytes: a re-iterable holding at most this many bytes is kept in memory after the
            first pass; a larger one is read again on every pass.

    Attributes:
        model, loss_fn, l2, dtype, device, memory_budget: as given (``loss_fn`` the :class:`~losslab.losses.Loss`).
        free: the free parameter groups, those in θ, in flattening order (also :attr:`groups`).
        fixed: the groups held fixed, name → tensor (in :attr:`dtype`, on :attr:`device`), a read-only mapping:
            empty for a problem built here, the held values after :meth:`restrict`. ``unflatten`` puts them
            beside the free groups, the L2 term counts them, and analyses read them (proof texts, witnesses,
            the landscape kernels). The tensors are the problem's own: read them, do not modify them in place.
        batching_note: why points are evaluated one at a time, or None while ``torch.func.vmap`` batches them.

    :meth:`from_objective` builds one from an analytic objective L(params) instead (no model, no data).

    A problem is immutable: assigning an attribute raises an AttributeError that names the method
    giving a copy with it changed (:meth:`restrict`, :meth:`full`, :meth:`to`, :meth:`with_memory_budget`).
    Copies share the data and the model; they are built by one constructor path from the original's
    validated parts, so they are not validated again. The one thing a problem learns after it is built
    is whether ``torch.func.vmap`` can batch its model (:meth:`stop_batching`, :attr:`batching_note`),
    a fact about the model rather than a setting.

    Raises:
        LosslabError: bad data (no batches, mixed shapes, labels out of range, …), a forward on one
            batch whose activations would exceed ``memory_budget`` (lower ``batch_size``), a device that
            does not exist, data and module on different devices, a forward returning something
            unusable, a loss that differs between two evaluations at one θ (dropout, random ops),
            a model that cannot be re-evaluated in float64.

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
        y: object = None,
        loss: str | Loss = "mse",
        l2: float = 0.0,
        *,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        batch_size: int | None = None,
        target_key: str = "labels",
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ):
        if not isinstance(model, Model):
            raise LosslabError(
                f"expected a losslab model (e.g. losslab.models.TwoLayer), got {type(model).__name__}; "
                "wrap a torch.nn.Module with losslab.models.Module(module)"
            )
        loss_fn = get_loss(loss)
        l2 = nonnegative_float("l2", l2)
        memory_budget = positive_int("memory_budget", memory_budget)
        batch_size = None if batch_size is None else positive_int("batch_size", batch_size)
        if y is None:
            if isinstance(X, torch.Tensor) or not isinstance(X, Iterable) or isinstance(X, (str, bytes)):
                raise LosslabError(
                    f"expected targets y with tensor inputs X, or X as a DataLoader / re-iterable of batches, "
                    f"got X={type(X).__name__} and y=None"
                )
            if batch_size is not None:
                raise LosslabError("expected batch_size only with tensors X, y, got it with a DataLoader; set the loader's batch_size")
            cache = positive_int("cache_bytes", cache_bytes, minimum=0)
            data = Batches.from_iterable(X, target_key=target_key, cache_bytes=cache)
        else:
            if isinstance(y, (str, Loss)):
                raise LosslabError(
                    f"expected targets y, got {y!r}; with a DataLoader pass the loss by keyword: Problem(model, loader, loss={y!r})"
                )
            data = Batches.from_tensors(X, y, batch_size)
        if dtype is None:
            firsts = [t for t in tensors(data.first().inputs) if t.is_floating_point()]
            dtype = firsts[0].dtype if firsts and firsts[0].dtype in (torch.float32, torch.float64) else torch.float64
        dtype = float_dtype(dtype)
        self._assign(
            model=model, loss_fn=loss_fn, l2=l2, memory_budget=memory_budget, dtype=dtype,
            device=check_device(model, data, device, dtype), data=data, free=model.groups, _fixed={},
            _out_ndim=1, _bytes_per_point=0, _batched=True, batching_note=None,
        )
        # One pass: shapes, targets, finiteness, determinism, float64, vmap. While the problem is being built it sets
        # data (the prepared batches), _out_ndim and _bytes_per_point, and _batched when vmap cannot batch the model.
        validate(self, data)
        object.__setattr__(self, "_frozen", True)

    # ---- immutability: one constructor path ----------------------------------------------
    _frozen = False  # True from the end of __init__ / _from_parts on

    def _assign(self, **parts) -> None:
        if set(parts) != set(_PARTS):
            raise TypeError(f"expected the parts {sorted(_PARTS)}, got {sorted(parts)}")
        for name in _PARTS:
            value = parts[name]
            object.__setattr__(self, name, dict(value) if name == "_fixed" else value)

    @classmethod
    def _from_parts(cls, **parts) -> Problem:
        """A problem from validated parts (:data:`_PARTS`), not validated again: the path of every copy."""
        out = cls.__new__(cls)
        out._assign(**parts)
        object.__setattr__(out, "_frozen", True)
        return out

    def _replace(self, **changes) -> Problem:
        """A copy with some parts replaced (the others shared)."""
        unknown = set(changes) - set(_PARTS)
        if unknown:
            raise TypeError(f"expected parts among {sorted(_PARTS)}, got {sorted(unknown)}")
        return self._from_parts(**{name: getattr(self, name) for name in _PARTS} | changes)

    def __setattr__(self, name: str, value: object) -> None:
        if not self._frozen:
            object.__setattr__(self, name, value)
            return
        how = _HOW_TO_CHANGE.get(name, "a new Problem(...)")
        raise AttributeError(f"expected no assignment to a Problem, got problem.{name} = ...: a Problem is immutable; "
                             f"use {how}, which returns a new problem")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"expected no deletion from a Problem, got del problem.{name}: a Problem is immutable")

    @property
    def fixed(self) -> Mapping[str, torch.Tensor]:
        """The groups held fixed, name → tensor, read-only (empty unless :meth:`restrict` held some; see the class doc)."""
        return MappingProxyType(self._fixed)

    # ---- copies ----------------------------------------------------------------------------
    def restrict(self, groups: Iterable[str], at: Params | torch.Tensor | None = None) -> Problem:
        """The same loss as a function of ``groups`` only; the other groups fixed at ``at``.

        ``at`` is a params dict or a θ of this problem (default: :meth:`default_theta`).
        """
        return restricted(self, groups, at)

    def full(self) -> Problem:
        """This problem with every group free (the inverse of :meth:`restrict`)."""
        return self._replace(free=self.model.groups, _fixed={})

    def embed(self, theta: torch.Tensor) -> torch.Tensor:
        """θ of this (possibly restricted) problem as a vector of all parameters."""
        return self.full().flatten(self.unflatten(theta))

    def to(self, *targets: torch.dtype | torch.device | str) -> Problem:
        """A copy computing in another dtype (float32/float64) and/or on another device.

        Example: ``problem.to(torch.float64)``, ``problem.to("cuda")``, ``problem.to("cuda", torch.float32)``.
        """
        return converted(self, targets)

    def with_memory_budget(self, memory_budget: int) -> Problem:
        """A copy whose analyses may allocate ``memory_budget`` bytes of intermediates (see the class doc).

        Unlike the constructor it accepts a budget below one point's forward (analyses then work a point at a
        time, or refuse with a :class:`~losslab.MemoryBudgetError`).
        """
        return self._replace(memory_budget=positive_int("memory_budget", memory_budget))

    # ---- the loss and its derivatives ----------------------------------------------------
    @property
    def loss_takes_logit(self) -> bool:
        """Whether the data loss reads the model's logit rather than its output.

        True for bce on a sigmoid-output model: the cross-entropy of σ(z) is computed stably
        from z. Otherwise (no link, or mse of a sigmoid output) the loss reads ``model.apply``.
        """
        return self.loss_fn.name == "bce" and self.model.link == "sigmoid"

    def loss_input(self, params: Params, X: object = None) -> torch.Tensor:
        """z: what the data loss is computed on — the logit or the output (see :attr:`loss_takes_logit`)."""
        X = self.X if X is None else X
        return self.loss_input_of_logit(self.model.logit(params, X))

    def loss_input_of_logit(self, z: torch.Tensor) -> torch.Tensor:
        """What the data loss reads from the model's logit z (any shape): z itself when :attr:`loss_takes_logit`,
        else the model's output, z through its link (the one place that choice is made, for :meth:`loss_input`
        and the K-point kernels of :mod:`losslab.landscape.fast`)."""
        return z if self.loss_takes_logit else self.model.output_of_logit(z)

    def batch_loss(self, params: Params, batch: Batch) -> torch.Tensor:
        """ℓ_b: the mean data loss on one prepared batch, without L2."""
        return self.loss_fn(self.loss_input(params, batch.inputs), batch.y)

    def penalty(self, params: Params) -> torch.Tensor | float:
        """l2·‖θ_all‖² (0.0 without L2) at one point, from its full parameter dict (free and fixed groups)."""
        return self.l2 * sum((p**2).sum() for p in params.values()) if self.l2 else 0.0

    def penalty_of_squares(self, squares: torch.Tensor) -> torch.Tensor:
        """The L2 term at K points from ‖θ_k‖² (K,) of their free groups: l2·(‖θ_k‖² + ‖fixed‖²), the fixed groups'
        part summed once in float64. The same term as :meth:`penalty`, for kernels that hold no parameter dicts
        (:mod:`losslab.landscape.fast`)."""
        fixed = sum(float((v.to(torch.float64) ** 2).sum()) for v in self._fixed.values())
        return self.l2 * (squares + fixed)

    def loss_of_params(self, params: Params, X: object = None, y: torch.Tensor | None = None) -> torch.Tensor:
        """L at a full parameter dict (every group), on (X, y) (default: the whole training data).

        The same function as :meth:`loss`, for callers that differentiate with respect to the
        groups' own tensors rather than a flat θ (which saves the slicing in double backward).
        """
        if X is not None:
            data = self.loss_fn(self.loss_input(params, X), self.y if y is None else y)
        else:
            data = None
            for b, w in self._weights():
                term = self.batch_loss(params, b)
                term = term if w is None else w * term
                data = term if data is None else data + term
        return data + self.penalty(params) if self.l2 else data

    def loss(self, theta: torch.Tensor, *, indices: torch.Tensor | None = None) -> torch.Tensor:
        """L(θ), a 0-dim tensor; ``indices`` restricts the data average to a minibatch (in-memory data).

        An overflowing loss is returned as computed (inf or NaN), as :meth:`loss_batch` does: slices count
        such points and training reports divergence; :meth:`grad`, :meth:`hvp` and every analysis raise.
        """
        params = self.unflatten(theta)
        if indices is None:
            return self.loss_of_params(params)
        X, y = self.X, self.y
        return self.loss_of_params(params, map_tensors(X, lambda t: t[indices]), y[indices])

    def minibatch_loss(self, theta: torch.Tensor, batch: Batch) -> torch.Tensor:
        """ℓ_b(θ) + l2·‖θ_all‖² on one prepared batch (an SGD step's loss)."""
        return self._point_term(theta, batch, None, True)

    def output(self, theta: torch.Tensor, X: object = None) -> torch.Tensor:
        """The model output f(θ, X) (default: the training inputs, all batches concatenated)."""
        params = self.unflatten(theta)
        if X is None:
            return torch.cat([self.model.apply(params, b.inputs) for b in self.batches()])
        if not isinstance(X, (tuple, dict)):
            X = as_tensor("X", X)
        X = self.prepare(Batch(X, torch.zeros(1), 1)).inputs
        if isinstance(X, torch.Tensor) and self.model.d_in is not None:
            shape("X", X, (None, self.model.d_in))
        return self.model.apply(params, X)

    @property
    def point_bytes(self) -> int:
        """Estimated bytes of one θ's forward and gradient graph on the largest batch: 3 × rows × the model's
        activations per example (``model.activations_per_example``), in :attr:`dtype`; at most ``memory_budget``."""
        return self._bytes_per_point

    def chunk_size(self) -> int:
        """How many parameter points one vmapped call evaluates within ``memory_budget`` (≥ 1)."""
        return max(1, min(self.memory_budget // max(self._bytes_per_point, 1), 2**31))  # a huge budget: still an index

    def _point_term(self, theta: torch.Tensor, batch: Batch, weight: float | None, with_penalty: bool) -> torch.Tensor:
        params = self.unflatten(theta)
        term = self.batch_loss(params, batch)
        term = term if weight is None else weight * term
        return term + self.penalty(params) if with_penalty and self.l2 else term

    def loss_batch(self, Theta: torch.Tensor) -> torch.Tensor:
        """L at each row of Θ (K, p) → (K,): ``torch.func.vmap`` in chunks of :meth:`chunk_size`, batch by batch.

        A model vmap cannot batch (an LSTM, data-dependent control flow) is evaluated one point at a
        time instead (:attr:`batching_note` says why).
        """
        return losses_at_points(self, Theta)

    def stop_batching(self, err: Exception) -> None:
        """Evaluate points one at a time from now on, saying why in :attr:`batching_note` (and so in describe())."""
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        # The one change after construction (see the class doc): a fact about the model, learnt when vmap fails.
        object.__setattr__(self, "_batched", False)
        object.__setattr__(self, "batching_note", f"points evaluated one at a time (torch.func.vmap cannot batch this model: {reason})")

    def _accumulate(self, fn) -> torch.Tensor:
        """Σ_b fn(b, n_b/n, first) over the batches (the L2 term goes with the first batch only)."""
        total = None
        for i, (b, w) in enumerate(self._weights()):
            part = fn(b, w, i == 0)
            total = part if total is None else total + part
        return total

    def grad(self, theta: torch.Tensor) -> torch.Tensor:
        """∇L(θ), shape (p,), accumulated batch by batch."""
        theta = self._point(theta, "theta")
        grad = self._accumulate(lambda b, w, first: torch.func.grad(lambda t: self._point_term(t, b, w, first))(theta))
        return finite_result("gradient", theta, grad)

    def hvp(self, theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """∇²L(θ)·v, shape (p,): forward-over-reverse, ``jvp(grad(L), θ, v)``, batch by batch."""

        theta, v = self._point(theta, "theta"), self._point(v, "v")

        def part(b, w, first):
            return torch.func.jvp(torch.func.grad(lambda t: self._point_term(t, b, w, first)), (theta,), (v,))[1]

        return finite_result("Hessian-vector product", theta, self._accumulate(part))

    def describe(self) -> str:
        """One line: model, loss, data, device, parameters analysed, how points are batched."""
        fixed = f", fixed {list(self._fixed)}" if self._fixed else ""
        reg = f" + {self.l2:g}·‖θ‖²" if self.l2 else ""
        data = "" if self.data.origin == "tensors" else f" ({self.data.origin})"
        device = "" if self.device.type == "cpu" else f", on {self.device}"
        note = f"; {self.batching_note}" if self.batching_note else ""
        if getattr(self.model, "mode", "eval") == "train" and self.data.count > 1:
            note += "; train mode: each batch normalised by its own statistics (the batching is part of the loss)"
        where = f"n={self.n}{data}{device}, p={self.n_params} in {list(self.free)}{fixed}"
        if isinstance(self.model, Objective):  # no data, no data loss: Problem.from_objective
            return f"{self.model.describe()}{reg}, p={self.n_params} in {list(self.free)}{fixed}{device}{note}"
        return f"{self.model.describe()}, {self.loss_fn.name}{reg}, {where}{note}"

    def __repr__(self) -> str:
        return f"Problem({self.describe()})"

