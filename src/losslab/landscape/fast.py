"""Fast loss evaluation for many points of a TwoLayer or MLP problem: pure tensor forwards.

:meth:`Problem.loss_batch` runs any model under ``torch.func.vmap``; for the two network
families whose forward is a chain of affine layers and elementwise activations this module
evaluates the same loss with plain tensor operations under ``torch.no_grad()``, chosen by size:

* ``"batched matmul"`` (small problems, where per-call overhead dominates): a chunk of K
  points is one batched product per layer on stacked weights — ``torch.baddbmm`` with W of shape
  (K, h_out, h_in), the bias added by the same call — with the activation applied in place. When
  the input is narrow (d_in ≤ ``BROADCAST_MAX_IN``, e.g. the seed's 1-d regressions) the first layer
  is instead the broadcast multiply-add Z[k] = 1 b_kᵀ + Σ_i X[:, i] w_{k,i}ᵀ (``torch.addcmul``,
  one pass over the K × n × h activations per input column): a ``bmm`` with inner dimension 1
  is ~6× slower than that on this machine.
* ``"per-point"`` (large problems, where one point's products already fill the machine and
  K points' activations would fall out of cache): a loop over points of ``torch.addmm`` per
  layer (fused bias add) with in-place activations, on views of θ (no copies of the model).

tanh is the floor of both paths (it costs as much as the matrix products of the MLP benchmark),
and ``torch.tanh`` on CPU is slow: NumPy's SIMD ``np.tanh`` (in place on the tensor's memory,
float32/float64 CPU tensors) measured 6× faster in float32 and 2× in float64, with ≤ 1 ulp
difference (max relative 1.1e-7 / 2.2e-16 against a float64 / exact reference); other tensors
use ``torch.tanh_``.

Both compute exactly the formula of :class:`~losslab.models.TwoLayer` / :class:`~losslab.models.MLP`
and of :meth:`Problem.loss` (loss of the logit for bce with a sigmoid link, the L2 term over all
groups), so they agree with ``loss_batch`` to rounding; tests hold them to 1e-12 relative in
float64 and 1e-6 in float32.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..models import MLP, TwoLayer
from ..problem import Problem

__all__ = ["BROADCAST_MAX_IN", "PER_POINT_MIN_ACTIVATIONS", "layers", "loss_batch", "path"]

# Measured with benchmarks/landscape_eval_scratch.py on a 2-core x86 machine (float32): batching wins ~3× at
# n × width = 2^15, the two are even around 2^17–2^18, and the per-point loop wins from 2^19 (batched
# activations fall out of cache); chunks of K points hold n × width × K ≤ 2^21 values (8 MB in float32).
PER_POINT_MIN_ACTIVATIONS = 2**18  # n × (widest layer) from which the per-point loop is used
BATCH_ACTIVATIONS = 2**21  # n × (widest layer) × K per chunk of the batched path
BROADCAST_MAX_IN = 4  # first layers with at most this many inputs use addcmul, not baddbmm
_LEGACY = False  # private: the previous kernels (baddbmm first layer, torch.tanh_), for benchmarks only

Layer = tuple[str, str | None, str | None]  # (weight group, bias group or None, activation name or None)


def _tanh_(h: torch.Tensor) -> None:
    """tanh in place: NumPy's SIMD kernel on the tensor's memory where it can, else ``torch.tanh_``."""
    if not _LEGACY and h.device.type == "cpu" and h.dtype in (torch.float32, torch.float64) and not h.requires_grad:
        a = h.numpy()
        np.tanh(a, out=a)
    else:
        h.tanh_()


def _inplace(name: str | None) -> Callable[[torch.Tensor], object] | None:
    return {"relu": torch.relu_, "tanh": _tanh_, "sigmoid": torch.sigmoid_}.get(name) if name != "identity" else None


def layers(problem: Problem) -> list[Layer] | None:
    """The model as affine layers with activations, or None for models without a fast path.

    TwoLayer: [(W, b, σ), (v, c or None, None)]; MLP: [(W_l, b_l, σ), …, (W_last, b_last, out_activation)].
    """
    model = problem.model
    if type(model) is TwoLayer:
        return [("W", "b", model.activation), ("v", "c" if model.out_bias else None, None)]
    if type(model) is MLP:
        last = model.depth - 1
        acts = [model.activation] * last + [model.out_activation if model.out_activation in ("relu", "tanh") else None]
        return [(f"W{i}", f"b{i}", acts[i]) for i in range(model.depth)]
    return None


def path(problem: Problem) -> str | None:
    """``"batched matmul"``, ``"per-point"``, or None when ``problem``'s model has no fast path."""
    if layers(problem) is None:
        return None
    widest = max(s[0] for s in problem.model.shapes.values() if len(s) >= 1)
    return "per-point" if problem.n * widest >= PER_POINT_MIN_ACTIVATIONS else "batched matmul"


def _loss(problem: Problem, logits: torch.Tensor) -> torch.Tensor:
    """The data loss of (K, n[, k]) logits → (K,), as :meth:`Problem.loss` computes it for one point."""
    fn = problem.loss_fn
    out = logits if problem.model.link is None or problem.loss_takes_logit else torch.sigmoid(logits)
    if fn.name == "mse":
        return (out - problem.y).square_().reshape(len(out), -1).mean(dim=1)
    return torch.func.vmap(fn, in_dims=(0, None))(out, problem.y)


def _groups(problem: Problem, Theta: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every group as a (K, *shape) tensor: views of Θ for free groups, expanded fixed ones."""
    K, out = len(Theta), {}
    for g, where in problem.slices().items():
        out[g] = Theta[:, where].reshape(K, *problem.model.shapes[g])
    for g, value in problem.fixed.items():
        out[g] = value.to(Theta.dtype).expand(K, *value.shape)
    return out


def _batched(problem: Problem, Theta: torch.Tensor, spec: list[Layer]) -> torch.Tensor:
    params = _groups(problem, Theta)
    K = len(Theta)
    X = problem.X
    h = X.expand(K, *X.shape)
    for i, (w, b, act) in enumerate(spec):
        W = params[w]
        W = W.reshape(K, 1, -1) if W.ndim == 2 else W  # TwoLayer's v: one output unit
        bias = params[b].reshape(K, 1, -1) if b is not None else torch.zeros((), dtype=Theta.dtype)
        if i == 0 and X.shape[1] <= BROADCAST_MAX_IN and not _LEGACY:
            # Z[k, :, j] = b[k, j] + Σ_i X[:, i] · W[k, j, i]: one broadcast multiply-add per input column
            h = torch.addcmul(bias, X[None, :, :1], W[:, None, :, 0])
            for c in range(1, X.shape[1]):
                h.addcmul_(X[None, :, c : c + 1], W[:, None, :, c])
        else:
            h = torch.baddbmm(bias, h, W.transpose(1, 2))
        fn = _inplace(act)
        if fn is not None:
            fn(h)
    logits = h[..., 0] if h.shape[-1] == 1 else h
    return _loss(problem, logits)


def _per_point(problem: Problem, Theta: torch.Tensor, spec: list[Layer]) -> torch.Tensor:
    out = torch.empty(len(Theta), dtype=Theta.dtype)
    fixed = {g: v.to(Theta.dtype) for g, v in problem.fixed.items()}
    where = problem.slices()
    shapes = problem.model.shapes
    for k, theta in enumerate(Theta):
        params = {g: theta[s].view(shapes[g]) for g, s in where.items()} | fixed
        h = problem.X
        for w, b, act in spec:
            W = params[w]
            W = W.view(1, -1) if W.ndim == 1 else W
            h = torch.addmm(params[b].view(-1), h, W.T) if b is not None else h @ W.T
            fn = _inplace(act)
            if fn is not None:
                fn(h)
        out[k] = _loss(problem, (h[:, 0] if h.shape[1] == 1 else h)[None])[0]
    return out


def _l2(problem: Problem, Theta: torch.Tensor) -> torch.Tensor:
    fixed = sum(float((v.to(torch.float64) ** 2).sum()) for v in problem.fixed.values())
    return problem.l2 * (Theta.square().sum(dim=1) + fixed)


def loss_batch(problem: Problem, Theta: torch.Tensor, how: str) -> torch.Tensor:
    """L at each row of Θ (K, p) → (K,) by the fast path ``how`` (see :func:`path`), without autograd."""
    spec = layers(problem)
    assert spec is not None, "no fast path for this model"
    with torch.no_grad():
        if how == "per-point":
            data = _per_point(problem, Theta, spec)
        else:
            widest = max(s[0] for s in problem.model.shapes.values() if len(s) >= 1)
            size = max(1, min(problem.chunk_size(), BATCH_ACTIVATIONS // max(problem.n * widest, 1)))
            data = torch.cat([_batched(problem, chunk, spec) for chunk in Theta.split(size)]) if len(Theta) else Theta.new_zeros(0)
        return data + _l2(problem, Theta) if problem.l2 else data
