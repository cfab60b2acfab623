"""What a :class:`~losslab.Problem` checks when it is built: one pass over the data, then probes.

* the device exists, and the module and in-memory data agree on it;
* every batch: the model runs on it, its output has one row per example and is finite, the
  targets suit the loss (labels in range, batch by batch);
* the loss is deterministic: two evaluations at one θ give the same number (active dropout or a
  random op in forward make every analysis meaningless), and a streamed loader yields the same
  first batch twice;
* the model re-evaluates in float64 (every witness is re-checked there);
* whether ``torch.func.vmap`` can batch the model (else points are evaluated one at a time);
* bce is not given probabilities (a final sigmoid would make it a different loss from the user's).
"""

from __future__ import annotations

import math

import torch

from ._checks import LosslabError, shape
from .batches import Batch, Batches, map_tensors, tensors
from .losses import check_targets
from .memory import require

__all__ = ["check_device", "validate"]


def check_device(model, data: Batches | None, device: object, dtype: torch.dtype) -> torch.device:
    """The problem's device: ``device`` if it exists, else the model's; in-memory data must agree."""
    if device is not None:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError, ValueError) as err:
            first = (str(err).strip().splitlines() or [""])[0]
            raise LosslabError(f"expected a device such as 'cpu' or 'cuda:0', got device={device!r} ({first})") from None
        if dev.type not in ("cpu", "cuda", "mps", "meta"):
            raise LosslabError(f"expected a device of type 'cpu', 'cuda' or 'mps', got device={str(dev)!r}; use device='cpu'")
        if dev.type == "cuda":
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            index = torch.cuda.current_device() if count and dev.index is None else dev.index or 0
            if index >= count:
                raise LosslabError(
                    f"expected an existing device, got device={str(dev)!r}: this machine has {count} CUDA device(s); "
                    "use device='cpu'" + (f" or an index below {count}" if count else "")
                )
            return torch.device("cuda", index)
        if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise LosslabError(f"expected an existing device, got device={str(dev)!r}: MPS is not available here; use device='cpu'")
        if dev.type == "meta":
            raise LosslabError("expected a device that computes ('cpu', 'cuda', …), got device='meta'")
        model_dev = next(iter(model.default_params(dtype=dtype).values())).device
        if model_dev.type == "meta":
            raise LosslabError("expected a module with real weights, got one on the 'meta' device; load its weights first")
        return dev
    params = model.default_params(dtype=dtype)
    model_dev = next(iter(params.values())).device
    if model_dev.type == "meta":
        raise LosslabError("expected a module with real weights, got one on the 'meta' device; load its weights first")
    if data is not None and data.cached is not None and data.origin.startswith("tensors"):
        data_devs = {t.device for b in data.cached[:1] for t in [*tensors(b.inputs), b.y]}
        if data_devs != {model_dev}:
            got = ", ".join(sorted(str(d) for d in data_devs))
            raise LosslabError(
                f"expected the data and the model on one device, got the model on {model_dev} and the data on {got}; "
                f"pass Problem(..., device='{model_dev}') (or 'cpu') to move both there"
            )
    return model_dev


def _describe(inputs) -> str:
    if isinstance(inputs, torch.Tensor):
        return f"inputs of shape {tuple(inputs.shape)} ({inputs.dtype})"
    if isinstance(inputs, tuple):
        return "inputs (" + ", ".join(f"{tuple(t.shape)}" for t in inputs) + ")"
    return "inputs {" + ", ".join(f"{k}: {tuple(t.shape)}" for k, t in inputs.items()) + "}"


def _forward(problem, params, inputs, index: int, count: int) -> torch.Tensor:
    model = problem.model
    where = f" in batch {index}" if count > 1 else ""
    if not isinstance(inputs, torch.Tensor) and not hasattr(model, "module"):
        raise LosslabError(f"expected a tensor X for {model.describe()}, got {_describe(inputs)}; tuple and dict inputs are for Module")
    if isinstance(inputs, torch.Tensor) and model.d_in is not None:
        shape("X", inputs, (None, model.d_in))
    try:
        with torch.no_grad():
            out = problem.loss_input(params, inputs)
    except LosslabError:
        raise
    except Exception as err:  # a model that cannot run on these inputs
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LosslabError(
            f"expected inputs that {model.describe()} can be applied to, got {_describe(inputs)}{where}, on which it fails: {first}"
        ) from None
    size = tensors(inputs)[0].shape[0]
    if not isinstance(out, torch.Tensor) or out.ndim not in (1, 2) or out.shape[0] != size:
        got = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise LosslabError(f"expected model outputs of shape (n,) or (n, k) with n={size}{where}, got {got}")
    if not torch.isfinite(out).all():
        bad = int((~torch.isfinite(out)).sum())
        raise LosslabError(
            f"expected finite model outputs on X at the model's initial parameters, got {bad} NaN/inf value(s){where} "
            f"from {model.describe()}; rescale X or lower the degree/depth"
        )
    return out


def validate(problem, data: Batches) -> None:
    """One pass over ``data`` at the default θ; sets ``problem.data`` (prepared batches when cached) and probes.

    Called by ``Problem.__init__`` on the problem it is building, before the problem is frozen (the only time its
    attributes may be set: ``data``, ``_out_ndim``, ``_bytes_per_point``).
    """
    model, loss = problem.model, problem.loss_fn
    if loss.name == "cross_entropy" and model.link is not None:
        raise LosslabError(f"cross_entropy expects a model that outputs logits, got {model.describe()} with a {model.link} output")
    theta = problem.default_theta(0)
    params = problem.unflatten(theta)
    prepared: list[Batch] | None = [] if data.cached is not None else None
    problem._out_ndim = 1
    largest, first_out, per_example = 0, None, None
    itemsize = torch.finfo(problem.dtype).bits // 8
    lo, hi = math.inf, -math.inf  # the range of the outputs over all batches (bce on probabilities)
    for index, raw in enumerate(data):
        where = f" in batch {index}" if data.count > 1 else ""
        for name, t in [("targets", raw.y), *(("inputs", t) for t in tensors(raw.inputs))]:
            if t.is_floating_point() and not torch.isfinite(t).all():
                bad = int((~torch.isfinite(t)).sum())
                raise LosslabError(f"expected finite {name}, got {bad} NaN/inf value(s){where}; drop or impute them first")
        inputs = problem.prepare(Batch(raw.inputs, raw.y[:0], raw.size)).inputs
        if per_example is None:
            per_example = _per_example(model, inputs)
        _check_forward_memory(problem, raw.size, per_example * itemsize * 3, data)
        out = _forward(problem, params, inputs, index, data.count)
        if first_out is None:
            first_out = out
            problem._out_ndim = out.ndim
        lo, hi = min(lo, float(out.min())), max(hi, float(out.max()))
        try:
            y = check_targets(loss, tuple(out.shape), raw.y.to(problem.device), problem.dtype)
        except LosslabError as err:
            raise LosslabError(f"in batch {index}: {err}" if data.count > 1 else str(err)) from None
        largest = max(largest, raw.size)
        if prepared is not None:
            prepared.append(Batch(inputs, y, raw.size))
    problem.data = Batches(prepared, data.source, data.n, data.count, data.origin, data.target_key, data.signature)
    first = next(problem.batches())
    problem._bytes_per_point = largest * per_example * itemsize * 3
    _check_probabilities(problem, lo, hi, data.n)
    _check_deterministic(problem, params, first, data)
    _check_float64(problem, first)
    _probe_vmap(problem, first, theta)


def _per_example(model, inputs) -> int:
    """Values one example's forward holds: the model's activations and the example's inputs (0 when the model
    cannot even run on two rows: the forward that follows says why)."""
    rows = min(2, tensors(inputs)[0].shape[0])  # two rows: BatchNorm in train mode cannot run on one
    example = map_tensors(inputs, lambda t: t[:rows])
    try:
        activations = model.activations_per_example(example)
    except LosslabError:
        raise
    except Exception:  # the full forward next raises the one-line error
        return 0
    return activations + sum(t[:1].numel() for t in tensors(example))


def _check_forward_memory(problem, rows: int, per_row: int, data: Batches) -> None:
    """Refuse, before it runs, a forward on ``rows`` examples whose activations and gradient graph (3 × the
    activations, the estimate :meth:`Problem.chunk_size` divides by) exceed the memory budget."""
    fit = problem.memory_budget // max(per_row, 1)
    if not fit:
        setting = "the model's size"
    else:
        setting = f"{'the loader' if data.source is not None else 'Problem(...)'}'s batch_size (at most {fit} rows per batch fit)"
    what = f"the forward and gradient graph of {problem.model.describe()} at one θ on a batch of {rows} examples"
    require(rows * per_row, problem.memory_budget, what, setting)


def _check_probabilities(problem, lo: float, hi: float, n: int) -> None:
    model = problem.model
    if problem.loss_fn.name != "bce" or model.link is not None or not hasattr(model, "module") or getattr(model, "link_declared", False):
        return
    if n > 1 and 0 <= lo <= hi <= 1 and lo < hi:
        raise LosslabError(
            f"bce takes logits, got outputs all in [{lo:.3g}, {hi:.3g}] (probabilities?) from {model.describe()}; drop the final "
            "sigmoid so the module returns logits (a final nn.Sigmoid or torch.sigmoid is read as a sigmoid link), "
            "or pass Module(net, link=None) if these are logits"
        )


def _check_deterministic(problem, params, batch: Batch, data: Batches) -> None:
    with torch.no_grad():
        a, b = problem.batch_loss(params, batch), problem.batch_loss(params, batch)
    if not torch.equal(a, b) and not (math.isnan(float(a)) and math.isnan(float(b))):
        raise LosslabError(
            f"expected a deterministic loss, got two evaluations at one θ that differ ({float(a):.6g} vs {float(b):.6g}): "
            "the forward is random (dropout active with training=True, or a random op) or changes state (a buffer updated in "
            "forward); losslab analyses a function of θ: use mode='eval', pass training=self.training to F.dropout, or remove "
            "the random op or the update"
        )
    if data.source is not None:  # a loader: its first batch must come back the same on a second pass
        one = data.first() if data.cached is None else data.cached[0]
        two = data.source_first()
        if not all(torch.equal(s, t) for s, t in zip([*tensors(one.inputs), one.y], [*tensors(two.inputs), two.y])):
            raise LosslabError(
                "expected a loader that yields the same batches on every pass, got a different first batch on a second pass: "
                "random augmentation or sampling; use a fixed transform and shuffle=False"
            )


def _check_float64(problem, batch: Batch) -> None:
    check = getattr(problem.model, "check_float64", None)
    if check is None:
        return
    small = map_tensors(batch.inputs, lambda t: (t[:4].to(torch.float64) if t.is_floating_point() else t[:4]))
    check(small)


def _probe_vmap(problem, batch: Batch, theta: torch.Tensor) -> None:
    small = Batch(map_tensors(batch.inputs, lambda t: t[:4]), batch.y[:4], min(4, batch.size))
    try:
        with torch.no_grad():
            torch.func.vmap(lambda t: problem._point_term(t, small, None, False))(torch.stack([theta, theta]))
    except Exception as err:  # vmap has no batching rule for something in the forward
        problem.stop_batching(err)
