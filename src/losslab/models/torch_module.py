"""Any ``torch.nn.Module`` as a pure model, through ``torch.func.functional_call``.

The parameter groups are the module's named parameters; buffers stay fixed. No structural
proof is available for an arbitrary module, so its best convexity verdict without a witness
is "no violation found".
"""

from __future__ import annotations

import copy

import torch

from .._checks import LosslabError
from .base import Model, Params


class Module(Model):
    """Wrap ``nn_module`` (deep-copied, in eval mode) as f(params, X).

    Outputs of shape (n, 1) are squeezed to (n,). Inputs X may have any shape (n, ...); give
    ``d_in`` to have 2-D inputs checked to be (n, d_in). ``init(seed=None)`` returns the module's
    own parameters; an integer seed re-initialises a copy with ``reset_parameters``, drawing
    from the CPU generator only.

    Example:
        >>> net = Module(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)))
        >>> net.groups
        ('0.weight', '0.bias', '2.weight', '2.bias')
    """

    def __init__(self, nn_module: torch.nn.Module, d_in: int | None = None):
        if not isinstance(nn_module, torch.nn.Module):
            raise LosslabError(f"expected a torch.nn.Module, got {type(nn_module).__name__}")
        self.module = copy.deepcopy(nn_module).eval()
        self._params = {k: v.detach().clone() for k, v in self.module.named_parameters()}
        if not self._params:
            raise LosslabError(f"expected a module with parameters, got {type(nn_module).__name__} with none")
        self._buffers = {k: v.detach().clone() for k, v in self.module.named_buffers()}
        self.shapes = {k: tuple(v.shape) for k, v in self._params.items()}
        self.d_in = d_in
        self.affine_sets = ()
        self._activation_count: int | None = None

    def init(self, *, seed: int | None = None, dtype: torch.dtype = torch.float64) -> Params:
        if seed is None:
            return {k: v.to(dtype).clone() for k, v in self._params.items()}
        fresh = copy.deepcopy(self.module)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            for m in fresh.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()
        return {k: v.detach().to(dtype).clone() for k, v in fresh.named_parameters()}

    def default_params(self, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> Params:
        """The module's own weights (the seed is not used)."""
        return self.init(seed=None, dtype=dtype)

    def logit(self, params: Params, X: torch.Tensor) -> torch.Tensor:
        buffers = {k: (v.to(X.dtype) if v.is_floating_point() else v) for k, v in self._buffers.items()}
        out = torch.func.functional_call(self.module, {**params, **buffers}, (X,))
        return out[..., 0] if out.ndim == 2 and out.shape[-1] == 1 else out

    def affine_reason(self) -> str:
        return "none: an arbitrary nn.Module declares no affine structure"

    def activations_per_example(self, x: torch.Tensor | None = None) -> int:
        """Twice the number of values all submodules output on the example ``x`` (1, ...), measured once."""
        if self._activation_count is None and x is not None:
            total = 0

            def count(_module, _inputs, output):
                nonlocal total
                if isinstance(output, torch.Tensor):
                    total += output.numel()

            hooks = [m.register_forward_hook(count) for m in self.module.modules()]
            try:
                with torch.no_grad():
                    self.logit(self.init(seed=None, dtype=x.dtype), x)
            finally:
                for h in hooks:
                    h.remove()
            self._activation_count = max(1, 2 * total)
        return self._activation_count or 4 * self.n_params

    def describe(self) -> str:
        return f"Module({type(self.module).__name__}, {self.n_params} parameters)"
