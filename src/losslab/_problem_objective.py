"""A :class:`~losslab.Problem` built from an analytic objective L(params), not from a model and data.

``Problem.from_objective(fn, shapes={"W": (n, d)}, init=0.5)`` is the loss as a closed-form function of named
parameter groups — a population loss, a test function, a regularised surrogate — with the interface of every
other problem: ``loss``, ``loss_batch`` (one ``torch.func.vmap`` over the rows of Θ), ``grad``, ``hvp``,
``restrict``, ``to``, and so :func:`~losslab.check_convexity`, :mod:`losslab.curvature`,
:mod:`losslab.landscape`, :func:`~losslab.fit.train` and :func:`~losslab.fit.train_ensemble` all work on it.

How. The function becomes an :class:`Objective` model whose logit on a one-row placeholder input is the
objective's value, and the data loss is the identity (:data:`OBJECTIVE_LOSS`, the mean of that one value), so
L(θ) = fn(params(θ)) exactly, with no data term. The objective declares no affine parameter sets: a convexity
verdict on it is never "convex (proven)" — an opaque function has no structure to prove from — but either a
float64-certified witness of non-convexity or "no violation found" (DESIGN.md, "Verdicts are honest"). Its GGN
(:class:`~losslab.curvature.GGNOperator`) is zero: the identity loss has no curvature in its output. And
:func:`~losslab.curvature.classify` measures criticality by the absolute ‖∇_G L‖ (there is no output or target
to scale it by), so its ``grad_tol`` is in the objective's units.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch

from ._checks import LosslabError, finite_float, float_dtype
from .losses import Loss
from .models.base import Model, Params, check_params
from .random_streams import generator

__all__ = ["OBJECTIVE_LOSS", "Objective", "ObjectiveProblems"]


def _identity_mean(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return f.mean()


OBJECTIVE_LOSS = Loss("objective", _identity_mean, True, "the identity of the objective's value is affine, hence convex")
"""The data loss of an objective problem: the objective's value itself (its one placeholder row)."""


MAX_PARAMETERS = 2**31  # 16 GiB of float64: larger shapes are a typo, not an objective


def _shapes(shapes: object) -> dict[str, tuple[int, ...]]:
    if not isinstance(shapes, Mapping) or not shapes:
        raise LosslabError(f"expected shapes as a non-empty dict of group name → shape, got {shapes!r}; "
                           "e.g. shapes={'W': (4, 3)}")
    out = {}
    for name, s in shapes.items():
        s = (s,) if isinstance(s, int) and not isinstance(s, bool) else s
        ok = isinstance(name, str) and name and isinstance(s, (tuple, list)) and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in s)
        if not ok:
            raise LosslabError(f"expected shapes as group name → tuple of positive ints, got {name!r}: {s!r}; "
                               "e.g. shapes={'W': (4, 3)}")
        out[name] = tuple(s)
    total = sum(math.prod(s) for s in out.values())
    if total > MAX_PARAMETERS:
        raise LosslabError(f"expected at most {MAX_PARAMETERS:,} parameters in shapes, got {total:,}; "
                           "an objective's θ, its gradient and a few work vectors must fit in memory")
    return out


class Objective(Model):
    """An analytic objective ``fn(params) -> scalar`` as a losslab model of a one-row placeholder input.

    Args:
        fn: the objective, a function of a dict of tensors (one per group, of ``shapes``) returning a 0-dim
            tensor; it must be written with torch operations (autograd, ``torch.func.vmap`` where possible).
        shapes: group name → shape, in flattening order.
        init: the initial parameters: a float s (each entry N(0, s²)) or a callable ``init(g) -> params``
            drawing from the ``torch.Generator`` g of the ``"init"`` stream of the seed (float64 tensors; they
            are cast to the problem's dtype).
        name: how :meth:`describe` names the objective (default ``fn.__name__``).
    """

    d_in = None
    unit_gradient_scale = True  # criticality (classify) measures ‖∇L‖ in the objective's units: there is no output scale

    def __init__(self, fn: Callable[[Params], torch.Tensor], shapes: Mapping[str, tuple[int, ...]],
                 init: float | Callable[[torch.Generator], Params] = 1.0, name: str | None = None):
        if not callable(fn):
            raise LosslabError(f"expected fn as a callable of a params dict returning a scalar tensor, got {type(fn).__name__}")
        self.fn = fn
        self.shapes = _shapes(shapes)
        if not callable(init):
            init = finite_float("init", init, positive=True)
        self._init = init
        self.name = name if name is not None else getattr(fn, "__name__", type(fn).__name__)

    def init(self, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> Params:
        """Parameters from the ``"init"`` stream of ``seed``: N(0, s²) entries, or the ``init`` callable's draw."""
        g = generator(seed, "init")
        if callable(self._init):
            try:
                params = self._init(g)
            except LosslabError:
                raise
            except Exception as err:  # a user's init that fails
                raise LosslabError(f"expected init(generator) to return a params dict, got an error: {_first(err)}") from None
            if isinstance(params, dict):
                for k, v in params.items():
                    if not isinstance(v, torch.Tensor) or v.is_complex() or v.dtype == torch.bool:
                        got = type(v).__name__ if not isinstance(v, torch.Tensor) else f"a {v.dtype} tensor"
                        raise LosslabError(f"expected init(generator) to return real tensors, got {got} for group {k!r}; "
                                           "return torch tensors, e.g. {'x': torch.randn(3, generator=g, dtype=torch.float64)}")
            check_params(self, params)
            return {k: params[k].to(dtype) for k in self.shapes}
        return {k: self._draw(g, s, self._init, dtype) for k, s in self.shapes.items()}

    def logit(self, params: Params, X: torch.Tensor) -> torch.Tensor:
        """The objective's value, once per placeholder row: shape (rows,)."""
        value = self.fn({k: v.clone() for k, v in params.items()})  # copies: an in-place edit in fn never reaches θ
        return value.reshape(1).expand(X.shape[0])

    def activations_per_example(self, x: torch.Tensor | None = None) -> int:
        return 8 * self.n_params

    def describe(self) -> str:
        return f"objective {self.name}"


def _first(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def _check_value(model: Objective, dtype: torch.dtype) -> None:
    """Evaluate fn once at init(seed=0), its params requiring grad: a 0-dim finite tensor with a gradient path,
    else a one-line LosslabError (fn that edits its params in place, or leaves autograd, fails here, not in train)."""
    params = {k: v.detach().clone().requires_grad_(True) for k, v in model.init(seed=0, dtype=dtype).items()}
    try:
        value = model.fn(params)
    except LosslabError:
        raise
    except Exception as err:
        if "in-place" in str(err) or "inplace" in str(err):
            raise LosslabError(f"expected fn to leave its params unchanged, got an in-place edit ({_first(err)}); "
                               "compute new tensors instead (x = x + 1, not x += 1 or x[0] = ...)") from None
        shapes = ", ".join(f"{k}: {tuple(v.shape)}" for k, v in params.items())
        raise LosslabError(f"expected fn to evaluate at params of shapes {{{shapes}}}, got an error: {_first(err)}; "
                           "check shapes= against what fn indexes") from None
    if not isinstance(value, torch.Tensor):
        raise LosslabError(f"expected fn to return a 0-dim torch tensor, got {type(value).__name__}; "
                           "compute it with torch operations on the params")
    if value.numel() != 1 or value.ndim > 1:
        raise LosslabError(f"expected fn to return a scalar (0-dim) tensor, got shape {tuple(value.shape)}; "
                           "sum or average it to one number")
    if not value.is_floating_point():
        raise LosslabError(f"expected fn to return a floating-point tensor, got dtype {value.dtype}")
    if value.dtype != dtype:
        raise LosslabError(f"expected fn to return a {dtype} value like its params, got {value.dtype}; compute in the "
                           "problem's dtype (no .float()/.half() inside fn), or pass dtype= to from_objective: a "
                           "lower-precision value would make rounding look like non-convexity")
    if not math.isfinite(float(value.detach())):
        raise LosslabError(f"expected a finite objective at init(seed=0), got {float(value.detach())}; "
                           "check fn at the initial point, or choose another init=")
    if not value.requires_grad:
        raise LosslabError("expected fn to be differentiable in its params, got a value with no gradient path to them "
                           "(.item(), .detach(), NumPy, or a constant); write fn with torch operations on the params")


class ObjectiveProblems:
    """The :class:`~losslab.Problem` constructor from an analytic objective (mixed into Problem)."""

    @classmethod
    def from_objective(cls, fn: Callable[[Params], torch.Tensor], *, shapes: Mapping[str, tuple[int, ...]],
                       init: float | Callable[[torch.Generator], Params] = 1.0, dtype: torch.dtype | str = torch.float64,
                       name: str | None = None, device: torch.device | str | None = None):
        """A Problem whose loss is ``fn(params)``: L(θ) = fn(unflatten(θ)), no data, no L2.

        There is no model output to linearise: the problem's GGN is zero, so ‖H − GGN‖_F — the
        ``"nonlinearity"`` that :func:`~losslab.fit.train` can track, and
        :class:`~losslab.curvature.NonlinearityOperator` — is ‖∇²L‖_F, the whole Hessian. A
        convexity verdict on it is never "convex (proven)" (an opaque function has no structure to
        prove from). :func:`~losslab.landscape.plane`'s drawn directions are filter-normalised
        (Li et al. 2018): scaled to the centre's groups, so at θ = 0 there is nothing to scale by
        and it asks for your own ``d1``, ``d2`` (e.g. unit coordinate vectors).

        Args:
            fn: params dict → 0-dim tensor (see :class:`Objective`).
            shapes: group name → shape, e.g. ``{"W": (n, d)}``.
            init: a float scale s (N(0, s²) entries) or a callable ``init(generator) -> params``.
            dtype: float32 or float64 (default float64).
            name: the objective's name in ``describe()`` (default ``fn.__name__``).
            device: where it runs (default CPU).

        Raises:
            LosslabError: shapes that are not name → tuple of positive ints; an init that does not match them;
                fn failing at init(seed=0), returning a non-tensor, a non-scalar or a non-finite value, editing
                its params in place, or returning a value with no gradient path to them (``.item()``,
                ``.detach()``, NumPy).

        Example:
            >>> from losslab import Problem
            >>> prob = Problem.from_objective(lambda p: (p["x"] ** 2).sum(), shapes={"x": (3,)})
            >>> float(prob.loss(torch.ones(3, dtype=torch.float64)))
            3.0
        """
        model = Objective(fn, shapes, init, name)
        dtype = float_dtype(dtype)
        _check_value(model, dtype)
        placeholder = torch.zeros(1, 1, dtype=dtype)
        return cls(model, placeholder, torch.zeros(1, dtype=dtype), loss=OBJECTIVE_LOSS, dtype=dtype, device=device)
