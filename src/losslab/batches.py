"""The data a :class:`~losslab.Problem` averages over: in-memory tensors or a re-iterable of batches.

The training loss is an average over the whole dataset. With the data given as B batches of
sizes n_1 … n_B (n = Σ n_b) and ℓ_b the mean loss on batch b,

    L(θ) = Σ_b (n_b / n) · ℓ_b(θ)

is exactly the full-batch mean, the last short batch included; gradients, Hessian- and
GGN-vector products and batched losses accumulate the same way (curvlinops does the same over a
DataLoader, Dangel et al.). Every pass visits the batches in one fixed order, so the loss at a θ
is the same number on every call:

* tensors ``X, y`` are one batch (or ``batch_size`` slices of them, in order);
* a ``torch.utils.data.DataLoader`` with a random sampler (``shuffle=True``, a weighted or
  subset random sampler) is refused: the
  full-dataset loss does not depend on the order, and a fixed order makes it reproducible to the
  last bit (and fixes the batches BatchNorm sees in train mode);
* any other re-iterable (a list of batches, a generator *function's* result is not re-iterable and
  is refused) is read once when the problem is built, validated batch by batch, and kept in
  memory when it fits ``cache_bytes`` (then every later pass reads the cache); a larger one is
  streamed again on every pass. Its first batch is read twice when the problem is built: a
  loader whose batches change between passes (random augmentation) is refused; a change in a
  later batch of a streamed loader cannot be seen there.

A batch is ``(inputs, targets)`` or a dict holding the targets under ``target_key`` (default
``"labels"``, the Hugging Face convention) with the other entries as keyword inputs. Inputs are
a tensor, a tuple of tensors (positional arguments) or a dict of tensors (keyword arguments).
Floating inputs are cast to the problem's dtype; integer inputs (token ids) keep their dtype.
Batches move to the problem's device one at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from ._checks import LosslabError, as_tensor, dense
from .models.module_io import map_tensors
from .models.module_io import tensors_of as tensors

__all__ = ["DEFAULT_CACHE_BYTES", "Batch", "Batches", "Inputs", "map_tensors"]

Inputs = torch.Tensor | tuple[torch.Tensor, ...] | dict[str, torch.Tensor]
DEFAULT_CACHE_BYTES = 2 * 2**30  # data kept in memory when a re-iterable holds at most this much


@dataclass(frozen=True)
class Batch:
    """One batch: ``inputs`` (tensor, tuple or dict of tensors, leading dimension ``size``), targets ``y``."""

    inputs: Inputs
    y: torch.Tensor
    size: int


def signature(inputs: Inputs) -> object:
    """Structure, trailing shapes and dtypes: what must agree across batches."""
    if isinstance(inputs, torch.Tensor):
        return (tuple(inputs.shape[1:]), inputs.dtype)
    if isinstance(inputs, tuple):
        return tuple(signature(t) for t in inputs)
    return {k: signature(t) for k, t in inputs.items()}


def _as_inputs(value: object, where: str) -> Inputs:
    if isinstance(value, torch.Tensor):
        return dense(f"the inputs of {where}", value)
    if isinstance(value, (tuple, list)) and value and all(isinstance(t, torch.Tensor) for t in value):
        return tuple(dense(f"the inputs of {where}", t) for t in value)
    if isinstance(value, dict) and value and all(isinstance(k, str) and isinstance(t, torch.Tensor) for k, t in value.items()):
        return {k: dense(f"input {k!r} of {where}", t) for k, t in value.items()}
    raise LosslabError(
        f"expected the inputs of {where} to be a tensor, a tuple of tensors or a dict of tensors, got {_kind(value)}"
    )


def _kind(value: object) -> str:
    """What stands where a batch, its inputs or its targets should be, by its layout: a sequence's length and element
    types, a tensor's shape, a dict's keys, else the type. Not ``module_io``'s description of what a forward returned,
    which names the dtype (outputs must be floating) and what an ``output=`` selector could read."""
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} ({', '.join(type(v).__name__ for v in value[:4])})"
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a dict with keys {list(value)[:8]}" if isinstance(value, dict) else type(value).__name__


def parse_batch(raw: object, index: int, target_key: str) -> Batch:
    """A raw batch from the user's iterable → :class:`Batch` (on its own device, dtypes untouched)."""
    where = f"batch {index}"
    if isinstance(raw, dict):
        if target_key not in raw:
            raise LosslabError(
                f"expected {where} (a dict) to hold the targets under {target_key!r}, got keys {list(raw)}; "
                f"pass Problem(..., target_key=KEY) naming the targets' key"
            )
        inputs = _as_inputs({k: v for k, v in raw.items() if k != target_key}, where)
        y = raw[target_key]
    elif isinstance(raw, (tuple, list)) and len(raw) == 2:
        inputs, y = _as_inputs(raw[0], where), raw[1]
    else:
        raise LosslabError(
            f"expected each batch to be (inputs, targets) or a dict with the targets under {target_key!r}, "
            f"got {where} as {_kind(raw)}"
        )
    if not isinstance(y, torch.Tensor):
        raise LosslabError(f"expected the targets of {where} to be a tensor, got {_kind(y)}")
    y = dense(f"the targets of {where}", y)
    if y.ndim == 0 or y.shape[0] == 0:
        raise LosslabError(f"expected the targets of {where} to have a leading batch dimension ≥ 1, got shape {tuple(y.shape)}")
    size = y.shape[0]
    for t in tensors(inputs):
        if t.ndim == 0 or t.shape[0] != size:
            raise LosslabError(
                f"expected every input tensor of {where} to have {size} rows (as its targets), got one of shape {tuple(t.shape)}"
            )
    return Batch(inputs, y, size)


def _random_sampler(loader: object) -> str | None:
    """The name of a DataLoader's sampler when it draws at random (not sequential), else None."""
    if not isinstance(loader, torch.utils.data.DataLoader):
        return None
    fixed = (torch.utils.data.SequentialSampler, torch.utils.data.dataloader._InfiniteConstantSampler)
    batch_sampler = getattr(loader, "batch_sampler", None)
    for s in (loader.sampler, getattr(batch_sampler, "sampler", None)):
        if s is not None and not isinstance(s, fixed):
            return type(s).__name__
    return None


def _nbytes(batch: Batch) -> int:
    return sum(t.numel() * t.element_size() for t in [*tensors(batch.inputs), batch.y])


class Batches:
    """The batches of a problem's data, in one fixed order, validated once.

    Build with :meth:`from_tensors` or :meth:`from_iterable`. ``n`` is the number of examples,
    ``count`` the number of batches; iterating yields :class:`Batch` es as stored (CPU or the
    user's device, original dtypes); :meth:`on` casts and moves them.
    """

    def __init__(self, cached: list[Batch] | None, source: Iterable | None, n: int, count: int, origin: str, target_key: str,
                 signature: tuple | None = None):
        self.signature = signature  # shapes and dtypes of every batch, from the first pass (a streamed source is checked on each)
        self.cached = cached
        self.source = source
        self.n = n
        self.count = count
        self.origin = origin
        self.target_key = target_key

    @classmethod
    def from_tensors(cls, X: object, y: object, batch_size: int | None = None) -> Batches:
        """``X`` (tensor/array, or a tuple/dict of tensors) and ``y`` as one batch, or slices of ``batch_size``."""
        if isinstance(X, (tuple, dict)):
            inputs = _as_inputs(X, "X")
        else:
            inputs = as_tensor("X", X)
        y = as_tensor("y", y)
        lead = {t.shape[0] if t.ndim else 0 for t in tensors(inputs)}
        if len(lead) != 1 or lead != {y.shape[0] if y.ndim else -1}:
            raise LosslabError(f"expected X and y with the same number of rows, got X with {sorted(lead)} and y of shape {tuple(y.shape)}")
        n = y.shape[0]
        size = n if batch_size is None else min(batch_size, n)
        parts = [
            Batch(map_tensors(inputs, lambda t, s=start: t[s : s + size]), y[start : start + size], min(size, n - start))
            for start in range(0, n, size)
        ]
        return cls(parts, None, n, len(parts), "tensors" if len(parts) == 1 else f"tensors in {len(parts)} batches of {size}", "y")

    @classmethod
    def from_iterable(cls, data: Iterable, *, target_key: str = "labels", cache_bytes: int = DEFAULT_CACHE_BYTES) -> Batches:
        """A DataLoader or re-iterable of batches, read once here (see the module docstring)."""
        sampler = _random_sampler(data)
        if sampler is not None:
            what = "shuffle=True (a RandomSampler)" if sampler == "RandomSampler" else f"a {sampler}"
            raise LosslabError(
                f"expected a DataLoader with a fixed order over the whole dataset, got one with {what}; build it with "
                "shuffle=False and no sampler: the full-dataset loss does not depend on the order, and a fixed order makes it "
                "the same on every call (for a subset, pass torch.utils.data.Subset as the dataset)"
            )
        if iter(data) is data:
            raise LosslabError(
                f"expected a re-iterable of batches (a DataLoader, a list), got a one-shot iterator ({type(data).__name__}); "
                "losslab passes over the data many times: pass list(batches) or the DataLoader itself"
            )
        cached: list[Batch] = []
        total, n, count, first = 0, 0, 0, None
        for index, raw in enumerate(data):
            batch = parse_batch(raw, index, target_key)
            sig = (signature(batch.inputs), tuple(batch.y.shape[1:]))
            if first is None:
                first = sig
            elif sig != first:
                raise LosslabError(
                    f"expected every batch to have the shapes and dtypes of batch 0 {first}, got batch {index} with {sig}; "
                    "pad or bucket the batches to one shape"
                )
            n += batch.size
            count += 1
            total += _nbytes(batch)
            if cached is not None:
                cached.append(batch)
                if total > cache_bytes:
                    cached = None  # too large to keep: streamed on every pass
        if count == 0:
            raise LosslabError(f"expected data with at least one batch, got {type(data).__name__} that yields nothing")
        origin = f"{type(data).__name__} of {count} batch{'es' if count > 1 else ''}" + ("" if cached is not None else ", streamed")
        return cls(cached, data, n, count, origin, target_key, first)

    def __iter__(self) -> Iterator[Batch]:
        if self.cached is not None:
            yield from self.cached
            return
        rows, count = 0, 0
        for index, raw in enumerate(self.source):
            batch = parse_batch(raw, index, self.target_key)
            rows, count = rows + batch.size, count + 1
            if rows > self.n or count > self.count:
                raise self._changed(f"more than {self.count} batches / {self.n} rows")
            sig = (signature(batch.inputs), tuple(batch.y.shape[1:]))
            if self.signature is not None and sig != self.signature:
                raise self._changed(f"batch {index} with shapes and dtypes {sig} instead of {self.signature}")
            yield batch
        if (rows, count) != (self.n, self.count):
            raise self._changed(f"{count} batches / {rows} rows")

    def _changed(self, got: str) -> LosslabError:
        return LosslabError(
            f"expected every pass over the data to yield the {self.count} batches / {self.n} rows of the first pass, got {got}; "
            f"the source ({self.source.__class__.__name__}) must be re-iterable with the same batches (a DataLoader over a fixed "
            "dataset, or a list), not a one-shot iterator behind a wrapper"
        )

    def source_first(self) -> Batch:
        """The source's first batch, read afresh (not from the cache)."""
        try:
            raw = next(iter(self.source))
        except StopIteration:
            raise self._changed("nothing") from None
        return parse_batch(raw, 0, self.target_key)

    def first(self) -> Batch:
        """The first batch (as stored)."""
        try:
            return next(iter(self))
        except StopIteration:
            raise self._changed("nothing") from None

    def transformed(self, fn) -> Batches:
        """A copy whose cached batches are ``fn(batch)`` (e.g. moved to a device); streamed ones are left to :meth:`on`."""
        cached = None if self.cached is None else [fn(b) for b in self.cached]
        return Batches(cached, self.source, self.n, self.count, self.origin, self.target_key, self.signature)
