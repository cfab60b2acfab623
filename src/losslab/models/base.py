"""The model interface: a pure function f(params, X) with named parameter groups.

A model is stateless apart from fixed buffers (random features, an expansion point): its
parameters live in a ``dict[str, Tensor]`` that :meth:`Model.init` creates and
:meth:`Model.apply` consumes. Every model declares, *by construction*, the sets of groups in
which its logit is affine when the other groups are held fixed (``affine_sets``); the
convexity proofs rely on those declarations and on nothing numerical.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable

import torch

from .._checks import LosslabError

Params = dict[str, torch.Tensor]


class Model(ABC):
    """A pure model ``f(params, X)``.

    Subclasses set ``d_in`` (input width, or None when unchecked), ``shapes`` (group name →
    shape, in flattening order), ``affine_sets`` and ``link``, and implement :meth:`init` and
    :meth:`logit`.

    Attributes:
        link: ``None`` (``apply == logit``) or ``"sigmoid"`` (``apply = σ(logit)``, a probability).
        affine_sets: each a set of groups in which the logit is jointly affine with all other
            groups held fixed — a statement about the formula, not a numerical finding.
    """

    d_in: int | None
    shapes: dict[str, tuple[int, ...]]
    affine_sets: tuple[frozenset[str], ...] = ()
    link: str | None = None
    float_inputs: bool = True  # inputs are numbers cast to the problem's dtype (a wrapped Module keeps integer ids)

    @abstractmethod
    def init(self, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> Params:
        """Parameters drawn from the ``"init"`` stream of ``seed`` (:mod:`losslab.random_streams`): same seed, same numbers."""

    def default_params(self, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> Params:
        """The point an analysis starts from when none is given: ``init(seed=seed)``.

        A wrapped ``nn.Module`` returns its own weights instead — the network the user holds.
        """
        return self.init(seed=seed, dtype=dtype)

    @abstractmethod
    def logit(self, params: Params, X: torch.Tensor) -> torch.Tensor:
        """The pre-link output, shape (n,) for scalar models or (n, k); X has shape (n, d_in)."""

    def apply(self, params: Params, X: torch.Tensor) -> torch.Tensor:
        """The model output f(params, X): ``logit`` through the ``link`` (if any)."""
        return self.output_of_logit(self.logit(params, X))

    def output_of_logit(self, z: torch.Tensor) -> torch.Tensor:
        """The link: the output σ(z) of a logit z (any shape) for a sigmoid link, z itself without one."""
        return torch.sigmoid(z) if self.link == "sigmoid" else z

    __call__ = apply

    @property
    def groups(self) -> tuple[str, ...]:
        """Names of the parameter groups, in flattening order."""
        return tuple(self.shapes)

    @property
    def n_params(self) -> int:
        """Total number of scalar parameters p."""
        return sum(math.prod(s) for s in self.shapes.values())

    def is_affine_in(self, groups: Iterable[str]) -> bool:
        """Whether the logit is affine in ``groups`` jointly, by construction."""
        wanted = frozenset(groups)
        return any(wanted <= s for s in self.affine_sets)

    def affine_reason(self) -> str:
        """The formula that makes the declared ``affine_sets`` true (used in proofs)."""
        return "declared by the model"

    def symmetries(self, params: Params, generator: torch.Generator) -> list[tuple[str, Params]]:
        """Other parameter points with the same output on every input, each with a name."""
        return []

    def activations_per_example(self, x: torch.Tensor | None = None) -> int:
        """Rough count of intermediate values per example and parameter point (memory budgets).

        ``x`` is one example input, shape (1, ...), for models that measure it by a forward pass.
        """
        return 4 * self.n_params

    def describe(self) -> str:
        """One line naming the model and its sizes."""
        return type(self).__name__

    def _draw(self, generator: torch.Generator, shape: tuple[int, ...], std: float, dtype: torch.dtype) -> torch.Tensor:
        return std * torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)


def check_params(model: Model, params: Params) -> None:
    """Raise unless ``params`` has exactly the model's groups with the model's shapes."""
    if not isinstance(params, dict):
        raise LosslabError(f"expected params as a dict of tensors with groups {list(model.groups)}, got {type(params).__name__}")
    missing = [g for g in model.groups if g not in params]
    extra = [g for g in params if g not in model.shapes]
    if missing or extra:
        raise LosslabError(f"expected parameter groups {list(model.groups)}, got {list(params)} (missing {missing}, unexpected {extra})")
    for g, s in model.shapes.items():
        if tuple(params[g].shape) != s:
            raise LosslabError(f"expected group {g!r} of shape {s}, got shape {tuple(params[g].shape)}")
