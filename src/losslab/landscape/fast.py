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
DataLoader of small batches runs as fast as one tensor), each weighted rows/n, and the L2 term is added once
(:meth:`Problem.penalty_of_squares`) — the formula of :meth:`Problem.loss`, so the kernels agree with
:meth:`Problem.loss_batch` to rounding (tests: 1e-12 relative in float64, 1e-6 in float32). Frozen parameters of a wrapped module enter as
held constants, like the groups a restricted problem holds fixed.

Points that are combinations θ_k = base + Σ_j c_kj·v_j (a plane, a line: :func:`loss_combinations`)
skip the first layer's per-point weights: its pre-activation is affine in θ, so
z_1(θ_k) = Z_base + Σ_j c_kj·Z_j with Z_base = W_base xᵀ + b_base and Z_j = W_{v_j} xᵀ + b_{v_j}, each
computed once per batch, and the K points' pre-activations are one matrix product [1, c_k] · [Z_base; Z_j]
(inner dimension m + 1 instead of d_in, no per-point bias copy, no per-point first-layer weights).

Memory: chunks of points are sized to the problem's ``memory_budget`` too (:func:`chunk_points`),
the later layers' weights of a combination are built a chunk at a time, and the outputs of at most
a quarter budget of points are held before their losses are taken — so a 1001 × 1001 plane holds
one chunk, not a million points' weights or outputs.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..models.layers import IN_PLACE, Layer, _affine, forward
from ..problem import Problem
from .implementation import Implementation

__all__ = [
    "BATCH_ACTIVATIONS", "MERGE_ACTIVATIONS", "PER_POINT_MIN_ACTIVATIONS", "chunk_points", "layer_spec", "loss_batch", "loss_combinations",
    "per_point_activations",
]

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
    """ℓ_b of the layer output z (the logit), (K, n[, k]) → (K,) with ``points``, else (n[, k]) → (), as
    :meth:`Problem.batch_loss`: the loss reads what :meth:`Problem.loss_input_of_logit` makes of z."""
    z = problem.loss_input_of_logit(z)
    fn = problem.loss_fn
    return torch.func.vmap(fn, in_dims=(0, None))(z, y) if points else fn(z, y)


def loss_batch(problem: Problem, Theta: torch.Tensor, implementation: Implementation | str) -> torch.Tensor:
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
        if implementation == Implementation.LAYERS_PER_POINT:
            params = list(_point_params(problem, Theta))  # views of Θ
        size = chunk_points(problem, spec)
        for x, y, weight in _merged(problem, _widest(problem, spec)):
            if implementation == Implementation.LAYERS_PER_POINT:
                part = torch.stack([_data_loss(problem, forward(spec, p, x, inplace=True), y, False) for p in params])
            else:  # the outputs of many chunks, then one call of the loss (its vmap costs as much as a small chunk)
                outputs = _Outputs(problem, y)
                for p in _chunk_params(problem, Theta, size):
                    outputs.add(forward(spec, p, x, points=True, inplace=True))
                part = outputs.losses()
            part = part if weight is None else part * weight
            total = part if total is None else total + part
        if problem.l2:
            total = total + problem.penalty_of_squares(torch.cat([chunk.square().sum(dim=1) for chunk in Theta.split(size)]))
    return total


def chunk_points(problem: Problem, spec: tuple[Layer, ...]) -> int:
    """Points per chunk of the batched kernel: activations within ``BATCH_ACTIVATIONS`` (cache) and the chunk's
    activations and parameter copies within the problem's ``memory_budget``."""
    itemsize = torch.finfo(problem.dtype).bits // 8
    by_cache = BATCH_ACTIVATIONS // max(per_point_activations(problem, spec), 1)
    by_params = problem.memory_budget // max(2 * problem.n_params * itemsize, 1)
    return max(1, min(problem.chunk_size(), by_cache, by_params))


class _Outputs:
    """Model outputs (K_chunk, n[, k]) of consecutive chunks, turned into losses whenever they hold a quarter of
    the memory budget (and at the end): one call of the loss for many chunks, never all K points' outputs at once."""

    def __init__(self, problem: Problem, y: torch.Tensor):
        self.problem, self.y = problem, y
        self.held: list[torch.Tensor] = []
        self.bytes = 0
        self.done: list[torch.Tensor] = []

    def add(self, z: torch.Tensor) -> None:
        self.held.append(z)
        self.bytes += z.numel() * z.element_size()
        if self.bytes >= self.problem.memory_budget // 4:
            self._flush()

    def _flush(self) -> None:
        if self.held:
            self.done.append(_data_loss(self.problem, torch.cat(self.held), self.y, True))
            self.held, self.bytes = [], 0

    def losses(self) -> torch.Tensor:
        self._flush()
        return torch.cat(self.done)


def loss_combinations(problem: Problem, coords: torch.Tensor, vectors: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """L at θ_k = base + Σ_j coords[k, j]·vectors[j] → (K,), by the ``"layers"`` kernel with the first layer shared.

    coords (K, m), vectors (m, p), base (p,), all in the problem's dtype and on its device; the
    model must have a :func:`layer_spec`. Equal to :func:`loss_batch` of the combined points to
    rounding (the first layer's pre-activation is summed as Z_base + Σ_j c_j·Z_j rather than from
    the combined weights).
    """
    spec = layer_spec(problem)
    if spec is None:
        raise ValueError(f"no layer spec for {problem.model.describe()}")  # callers check first
    if not len(coords):
        return coords.new_zeros(0)
    first, rest = spec[0], spec[1:]
    where, shapes = problem.slices(), problem.model.shapes
    consts = _held(problem, base.dtype, base.device)
    first_groups = [g for g in (first.weight, first.bias) if g is not None]

    def first_params(vec: torch.Tensor, with_held: bool) -> dict[str, torch.Tensor]:
        out = {}
        for g in first_groups:
            if g in where:
                out[g] = vec[where[g]].view(shapes[g])
            else:  # held: part of the base point only
                out[g] = consts[g] if with_held else torch.zeros_like(consts[g])
        return out

    generators = [first_params(base, True)] + [first_params(v, False) for v in vectors]
    rest_groups = [g for layer in rest for g in (layer.weight, layer.bias) if g is not None and g in where]
    if rest_groups:  # the later layers' groups at a chunk of points: base + coords · vectors, on those columns only
        columns = torch.cat([torch.arange(where[g].start, where[g].stop, device=base.device) for g in rest_groups])
        base_rest, vectors_rest = base[columns], vectors[:, columns]
        sizes = [where[g].stop - where[g].start for g in rest_groups]

    def later(chunk: torch.Tensor) -> dict[str, torch.Tensor]:
        if not rest_groups:
            return {}
        pieces = (base_rest + chunk @ vectors_rest).split(sizes, dim=1)
        return {g: piece.reshape(len(chunk), *shapes[g]) for g, piece in zip(rest_groups, pieces)}

    widest = _widest(problem, spec)
    size = chunk_points(problem, spec)
    total = None
    with torch.no_grad():
        for x, y, weight in _merged(problem, widest):
            n = x.shape[0]
            Z = torch.stack([_first_preactivation(x, gp, first) for gp in generators]).reshape(len(generators), -1)  # (1 + m, h_1·n)
            buffer = Z.new_empty(min(size, len(coords)), Z.shape[1])  # reused by every chunk: fresh pages cost as much as the sums
            outputs = _Outputs(problem, y)
            for chunk in coords.split(size):
                K = len(chunk)
                h = _combined(chunk, Z, buffer[:K]).view(K, -1, n)  # (K, h_1, n), features first
                if first.activation is not None:
                    h = IN_PLACE[first.activation](h)
                params = {g: v.expand(K, *v.shape) for g, v in consts.items() if g not in first_groups}
                params |= later(chunk)
                z = forward(rest, params, h, points=True, inplace=True)  # no layers left: a view of the buffer, copied
                outputs.add(z if rest else z.clone())
            part = outputs.losses()
            part = part if weight is None else part * weight
            total = part if total is None else total + part
        if problem.l2:
            total = total + problem.penalty_of_squares(torch.cat([(base + c @ vectors).square().sum(dim=1) for c in coords.split(size)]))
    return total


def _first_preactivation(x: torch.Tensor, params: dict[str, torch.Tensor], layer: Layer) -> torch.Tensor:
    """x Wᵀ + b of the first layer at one generator (the one-point map of the layers module), features first: (h_1, n)."""
    z = _affine(x, params[layer.weight], params[layer.bias] if layer.bias is not None else None, inplace=False)
    return z.unsqueeze(0) if z.ndim == 1 else z.T


def _combined(coords: torch.Tensor, Z: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Z[0] + Σ_j coords[:, j]·Z[1 + j] → ``out`` (K, F): fused multiply-adds, row by row of Z.

    Not ``torch.mm([1, coords], Z)``: with an inner dimension of 2–3, the BLAS product was 1.2–3× slower
    on a 2-core x86 machine (K = 64–1681 points, F = 1,600–8,192).
    """
    torch.addcmul(Z[0], coords[:, :1], Z[1], out=out)
    for j in range(1, coords.shape[1]):
        out.addcmul_(coords[:, j : j + 1], Z[1 + j])
    return out
