"""The loss at K parameter points of a layered model: the K-point kernels of :func:`~losslab.models.layers.forward`.

A model that declares a layer spec (``model.layers()``: :class:`~losslab.models.TwoLayer`,
:class:`~losslab.models.MLP`, a :class:`~losslab.models.Module` wrapping an ``nn.Sequential``
of ``nn.Linear`` and elementwise activations) is evaluated at many points with plain tensor
operations under ``torch.no_grad()``, by one of two kernels of the same forward:

* ``"layers"`` (small problems, where per-call overhead dominates): a chunk of K points is one
  product per layer on stacked weights, features first (a ``addmm`` of all K first layers with
  Xᵀ, then ``baddbmm``), activations in place, chunks sized to stay in cache.
* ``"layers per point"`` (large problems, where one point's products already fill the machine and
  K points' activations would fall out of cache): a loop over points of ``addmm`` per layer on
  views of θ.

The data loss is ``problem.loss_fn`` itself (``torch.func.vmap`` over the K points), read through
the model's link as :meth:`Problem.batch_loss` reads it; the data come from
:meth:`Problem.batches` (consecutive batches concatenated up to ``MERGE_ACTIVATIONS``, so a
DataLoader of small batches runs as fast as one tensor), each weighted rows/n, and the L2 term is added once — the formula of
:meth:`Problem.loss`, so the kernels agree with :meth:`Problem.loss_batch` to rounding (tests:
1e-12 relative in float64, 1e-6 in float32). Frozen parameters of a wrapped module enter as
held constants, like the groups a restricted problem holds fixed.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..models.layers import Layer, forward
from ..problem import Problem

__all__ = ["BATCH_ACTIVATIONS", "MERGE_ACTIVATIONS", "PER_POINT_MIN_ACTIVATIONS", "layer_spec", "loss_batch", "per_point_activations"]

# Measured with benchmarks/landscape_eval_scratch.py and landscape_kernels.py on a 2-core x86 machine (float32):
# batching wins ~3× at n × width = 2^15, the two are even around 2^17–2^18, and the per-point loop wins from
# 2^19 (batched activations fall out of cache); chunks of K points hold n × width × K ≤ BATCH_ACTIVATIONS
# values (2^19 float32 = 2 MiB, this machine's L2 per core; 2^21 measured 2× slower at width 32, n = 256).
PER_POINT_MIN_ACTIVATIONS = 2**18  # rows × (widest layer) from which the per-point loop is used
BATCH_ACTIVATIONS = 2**19  # rows × (widest layer) × K per chunk of the batched kernel
# Consecutive data batches are concatenated up to rows × (widest layer) ≤ MERGE_ACTIVATIONS: a DataLoader of
# 8 batches of 512 rows (MLP 20-256-256-1) ran 2× slower per point than the same data as one tensor.
MERGE_ACTIVATIONS = 2**21


def layer_spec(problem: Problem) -> tuple[Layer, ...] | None:
    """The model's layer spec when the layer kernels can evaluate ``problem``, else None.

    Needs ``model.layers()``, declared by the class that defines its ``logit`` (a subclass overriding
    ``logit`` alone does not inherit the spec), and inputs that are one floating tensor (n, d_in).
    """
    declared = getattr(problem.model, "layers", None)
    owner = {name: next((c for c in type(problem.model).__mro__ if name in vars(c)), None) for name in ("layers", "logit")}
    spec = declared() if callable(declared) and owner["layers"] is owner["logit"] else None
    if spec is None:
        return None
    x = problem.data.first().inputs
    if not isinstance(x, torch.Tensor) or x.ndim > 2 or not (x.is_floating_point() or problem.model.float_inputs):
        return None
    return spec


def _widest(problem: Problem, spec: tuple[Layer, ...]) -> int:
    shapes = {**problem.model.shapes, **{k: tuple(v.shape) for k, v in _held(problem, problem.dtype, problem.device).items()}}
    return max(shapes[w][0] if len(shapes[w]) == 2 else 1 for w, _, _ in spec)


def per_point_activations(problem: Problem, spec: tuple[Layer, ...]) -> int:
    """rows × (widest layer output) of the largest merged batch: the size that decides between the two kernels."""
    widest = _widest(problem, spec)
    rows = min(problem.n, max(problem.data.first().size, MERGE_ACTIVATIONS // widest))
    return rows * widest


def _merged(problem: Problem, widest: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, float | None]]:
    """(inputs (rows, d_in), targets, weight rows/n or None for all data at once): consecutive batches concatenated.

    A batch is never split, so each merged batch's mean is Σ_b (n_b/rows)·ℓ_b to rounding.
    """
    cap = max(1, MERGE_ACTIVATIONS // widest)
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    rows = 0

    def flush(last: bool):
        x = xs[0] if len(xs) == 1 else torch.cat(xs)
        y = ys[0] if len(ys) == 1 else torch.cat(ys)
        return x if x.ndim == 2 else x[:, None], y, (None if last and rows == problem.n else rows / problem.n)

    for b in problem.batches():
        if xs and rows + b.size > cap:
            yield flush(False)
            xs, ys, rows = [], [], 0
        xs.append(b.inputs)
        ys.append(b.y)
        rows += b.size
    yield flush(True)


def _held(problem: Problem, dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
    """Constants of the forward: a wrapped module's frozen parameters, and the problem's fixed groups."""
    held = getattr(problem.model, "held", None)
    consts = held(dtype, device) if callable(held) else {}
    return {**consts, **{g: v.to(device=device, dtype=dtype) for g, v in problem.fixed.items()}}


def _point_params(problem: Problem, Theta: torch.Tensor) -> Iterator[dict[str, torch.Tensor]]:
    """One group dict per point: views of θ, the held constants shared."""
    consts = _held(problem, Theta.dtype, Theta.device)
    shapes, where = problem.model.shapes, problem.slices()
    for theta in Theta:
        yield {**consts, **{g: theta[s].view(shapes[g]) for g, s in where.items()}}


def _chunk_params(problem: Problem, Theta: torch.Tensor, size: int) -> Iterator[dict[str, torch.Tensor]]:
    """One group dict per chunk of ≤ ``size`` points: (K, *shape) views of Θ, constants expanded."""
    consts = _held(problem, Theta.dtype, Theta.device)
    shapes, where = problem.model.shapes, problem.slices()
    for chunk in Theta.split(size):
        K = len(chunk)
        out = {g: v.expand(K, *v.shape) for g, v in consts.items()}
        yield out | {g: chunk[:, s].reshape(K, *shapes[g]) for g, s in where.items()}


def _data_loss(problem: Problem, z: torch.Tensor, y: torch.Tensor, points: bool) -> torch.Tensor:
    """ℓ_b of the layer output z, (K, n[, k]) → (K,) with ``points``, else (n[, k]) → (), as :meth:`Problem.batch_loss`."""
    if problem.model.link == "sigmoid" and not problem.loss_takes_logit:
        z = torch.sigmoid(z)
    fn = problem.loss_fn
    return torch.func.vmap(fn, in_dims=(0, None))(z, y) if points else fn(z, y)


def loss_batch(problem: Problem, Theta: torch.Tensor, implementation: str) -> torch.Tensor:
    """L at each row of Θ (K, p) → (K,) by ``"layers"`` or ``"layers per point"``, without autograd.

    Θ must be in the problem's dtype and on its device; the model must have a :func:`layer_spec`.
    """
    spec = layer_spec(problem)
    if spec is None:
        raise ValueError(f"no layer spec for {problem.model.describe()}")  # callers check first
    if not len(Theta):
        return Theta.new_zeros(0)
    total = None
    with torch.no_grad():
        if implementation == "layers per point":
            params = list(_point_params(problem, Theta))
        else:
            size = max(1, min(problem.chunk_size(), BATCH_ACTIVATIONS // max(per_point_activations(problem, spec), 1)))
            params = list(_chunk_params(problem, Theta, size))
        for x, y, weight in _merged(problem, _widest(problem, spec)):
            if implementation == "layers per point":
                part = torch.stack([_data_loss(problem, forward(spec, p, x, inplace=True), y, False) for p in params])
            else:  # the outputs of all chunks, then one call of the loss (its vmap costs as much as a small chunk)
                z = torch.cat([forward(spec, p, x, points=True, inplace=True) for p in params])
                part = _data_loss(problem, z, y, True)
            part = part if weight is None else part * weight
            total = part if total is None else total + part
        if problem.l2:
            fixed = sum(float((v.to(torch.float64) ** 2).sum()) for v in problem.fixed.values())
            total = total + problem.l2 * (Theta.square().sum(dim=1) + fixed)
    return total
