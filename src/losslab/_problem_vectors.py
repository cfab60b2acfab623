"""The parameter side of a :class:`~losslab.problem.Problem`: θ, the flat vector of its free groups, and back."""

from __future__ import annotations

import math

import torch

from ._checks import LosslabError, as_tensor, shape
from .models.base import Params

__all__ = ["ParameterVectors"]

_INTEGERS = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


class ParameterVectors:
    """Methods of :class:`~losslab.problem.Problem` between parameter dicts and θ (its free groups ``self.free``)."""

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
        """Concatenate the free groups of ``params`` into θ of shape (p,), on :attr:`device`."""
        missing = [g for g in self.free if g not in params]
        if missing:
            raise LosslabError(f"expected parameter groups {list(self.free)}, got {list(params)} (missing {missing})")
        for g in self.free:
            if tuple(params[g].shape) != self.model.shapes[g]:
                raise LosslabError(f"expected group {g!r} of shape {self.model.shapes[g]}, got shape {tuple(params[g].shape)}")
        return torch.cat([params[g].reshape(-1).to(device=self.device, dtype=self.dtype) for g in self.free])

    def unflatten(self, theta: torch.Tensor) -> Params:
        """The full parameter dict: free groups read from θ (p,), fixed groups as held.

        θ of another floating dtype or device is cast (differentiably); one of another shape, or not
        a real tensor, raises a LosslabError.
        """
        theta = self._point(theta, "theta")
        params = {g: theta[s].reshape(self.model.shapes[g]) for g, s in self.slices().items()}
        params.update({g: v.to(theta.dtype) for g, v in self._fixed.items()})
        return params

    def _point(self, theta: object, name: str) -> torch.Tensor:
        if not isinstance(theta, torch.Tensor) or not (theta.is_floating_point() or theta.dtype in _INTEGERS):
            got = f"dtype {theta.dtype}" if isinstance(theta, torch.Tensor) else type(theta).__name__
            raise LosslabError(f"expected {name} as a real torch tensor of shape ({self.n_params},), got {got}; "
                               "use problem.as_theta(value) to convert an array, list or params dict")
        if tuple(theta.shape) != (self.n_params,):
            raise LosslabError(f"expected {name} of shape ({self.n_params},) (the free groups {list(self.free)}), got shape "
                               f"{tuple(theta.shape)}")
        return theta if theta.dtype == self.dtype and theta.device == self.device else theta.to(self.device, self.dtype)

    def init(self, seed: int = 0) -> torch.Tensor:
        """θ from ``model.init(seed=seed)`` (free groups only)."""
        return self.flatten(self.model.init(seed=seed, dtype=self.dtype))

    def default_theta(self, seed: int = 0) -> torch.Tensor:
        """θ where analyses start by default: ``model.default_params`` (a wrapped module's own weights)."""
        return self.flatten(self.model.default_params(seed=seed, dtype=self.dtype))

    def as_theta(self, theta: object, name: str = "theta") -> torch.Tensor:
        """Validate θ (tensor/array of shape (p,), or a params dict), cast to the problem dtype and device."""
        if isinstance(theta, dict):
            theta = self.flatten({g: v.detach() if isinstance(v, torch.Tensor) else v for g, v in theta.items()})
        theta = as_tensor(name, theta, dtype=self.dtype)
        shape(name, theta, (self.n_params,))
        return theta.to(self.device)

