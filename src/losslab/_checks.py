"""Validation at the public boundary: every error says what was expected and what was got."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

_WIDE_UNSIGNED = tuple(getattr(torch, name) for name in ("uint16", "uint32", "uint64") if hasattr(torch, name))


class LosslabError(ValueError):
    """A bad input to losslab: the message says what was expected, what was got, and the fix."""


class NonFiniteError(LosslabError):
    """A loss, gradient or product went NaN/inf (or too large to square in float64) at some θ: the model or loss
    overflows there. Raised by :func:`finite_result` and the curvature operators; the message names where and θ's scale."""


def choice(name: str, value: object, valid: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``valid``, else raise naming the valid ones."""
    valid = list(valid)
    if not isinstance(value, str) or value not in valid:
        raise LosslabError(f"unknown {name} {value!r}: expected one of {', '.join(map(repr, valid))}")
    return value


def positive_int(name: str, value: object, *, minimum: int = 1) -> int:
    """Return ``value`` as an int >= ``minimum``; reject bools, floats and smaller ints."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise LosslabError(f"expected {name} to be an integer >= {minimum}, got {name}={value!r}")
    return int(value)


def finite_float(name: str, value: object, *, positive: bool = False, nonnegative: bool = False) -> float:
    """Return ``value`` as a finite float (> 0 when ``positive``, >= 0 when ``nonnegative``); reject bools and strings."""
    cond = " > 0" if positive else " >= 0" if nonnegative else ""
    if isinstance(value, (bool, str, bytes)):
        raise LosslabError(f"expected {name} to be a number{cond}, got {name}={value!r}")
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise LosslabError(f"expected {name} to be a number{cond}, got {name}={value!r}") from None
    if not np.isfinite(out) or (positive and out <= 0) or (nonnegative and out < 0):
        raise LosslabError(f"expected {name} to be a finite number{cond}, got {name}={value!r}")
    return out


def seed_int(name: str, value: object) -> int:
    """Return ``value`` as a seed: an integer in [0, 2**63 − 1] (what ``torch.Generator.manual_seed`` takes)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < 2**63:
        raise LosslabError(f"expected {name} to be an integer in [0, 2**63 - 1], got {name}={value!r}")
    return int(value)


def nonnegative_float(name: str, value: object) -> float:
    """Return ``value`` as a finite float >= 0."""
    return finite_float(name, value, nonnegative=True)


def dense(name: str, value: torch.Tensor) -> torch.Tensor:
    """``value`` detached, or a LosslabError for a tensor without ordinary data (meta, sparse)."""
    if value.is_meta or value.layout != torch.strided:
        kind = "a meta tensor (no data)" if value.is_meta else f"a {str(value.layout).removeprefix('torch.')} tensor"
        raise LosslabError(f"expected {name} as a dense tensor with data, got {kind}; pass real data (sparse: .to_dense())")
    return value.detach()


def as_tensor(name: str, value: object, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Convert a tensor, NumPy array or nested list to a tensor; reject NaN/inf and empty data.

    Floating inputs keep their float dtype (NumPy float64 stays float64) unless ``dtype`` is
    given; integer inputs stay integer unless ``dtype`` is given.
    """
    if isinstance(value, torch.Tensor):
        out = dense(name, value)
    else:
        try:
            out = torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError) as err:
            raise LosslabError(f"expected {name} to be a tensor or array of numbers, got {type(value).__name__}: {err}") from None
    if out.dtype == torch.bool:
        out = out.to(torch.int64)
    if out.dtype in _WIDE_UNSIGNED:  # uint16/32/64 (NumPy labels): few torch ops take them
        out = out.to(torch.int64)
    if not (out.dtype.is_floating_point or out.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)):
        raise LosslabError(f"expected {name} to hold real numbers, got dtype {out.dtype}")
    if dtype is not None:
        out = out.to(dtype)
    if out.numel() == 0:
        raise LosslabError(f"expected {name} to hold at least one value, got an empty array of shape {tuple(out.shape)}")
    if out.dtype.is_floating_point and not torch.isfinite(out).all():
        bad = int((~torch.isfinite(out)).sum())
        raise LosslabError(f"expected {name} to be finite, got {bad} NaN/inf value(s); drop or impute them first")
    return out


def shape(name: str, tensor: torch.Tensor, expected: Sequence[int | None]) -> None:
    """Raise unless ``tensor.shape`` matches ``expected`` (``None`` matches any size)."""
    got = tuple(tensor.shape)
    ok = len(got) == len(expected) and all(e is None or e == g for e, g in zip(expected, got))
    if not ok:
        pretty = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ("," if len(expected) == 1 else "") + ")"
        raise LosslabError(f"expected {name} of shape {pretty}, got shape {got}")


def float_dtype(value: object) -> torch.dtype:
    """Accept torch.float32/float64 or the strings 'float32'/'float64'."""
    table = {"float32": torch.float32, "float64": torch.float64, torch.float32: torch.float32, torch.float64: torch.float64}
    if not isinstance(value, (str, torch.dtype)) or value not in table:
        raise LosslabError(f"expected dtype float32 or float64, got {value!r}")
    return table[value]  # type: ignore[index]


def finite_result(what: str, theta: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``value``, or a LosslabError saying ``what`` went NaN/inf at θ and θ's scale (an analysis never returns NaN).

    Inside a torch.func transform (``vmap`` over points, ``grad`` of a gradient) the value is passed
    through unchecked: a data-dependent branch cannot be batched, and the caller checks the result.
    """
    if _transformed(value):
        return value
    if not bool(torch.isfinite(value).all()):
        raise NonFiniteError(nonfinite_message(f"a finite {what}", int((~torch.isfinite(value)).sum()), "", theta, value.dtype))
    return value


def nonfinite_message(expected: str, bad: int, where: str, theta: torch.Tensor | None, dtype: torch.dtype) -> str:
    """The one line every NaN/inf error says: what was expected, how many entries went bad ``where`` (e.g. " in
    product 3"), θ's scale when known, and the fix for ``dtype``."""
    at = "" if theta is None else f" at θ with {theta_scale(theta)}"
    return (
        f"expected {expected}, got {bad} NaN/inf entries{where}{at}: the model or loss overflows there "
        f"(e.g. exp of a large logit); {overflow_fix(dtype)}"
    )


def overflow_fix(dtype: torch.dtype) -> str:
    """The fix for an overflow in ``dtype``: a smaller θ, and float64 unless it is float64 already."""
    if dtype == torch.float64:
        return "evaluate at a smaller θ, or rescale the model or data so the loss stays below 1e308"
    return "evaluate at a smaller θ, or use float64 (problem.to(torch.float64))"


def _transformed(value: torch.Tensor) -> bool:
    """Whether ``value`` is a torch.func wrapper (vmap's batched or grad's tracking tensor), not a plain tensor."""
    functorch = getattr(torch._C, "_functorch", None)
    return bool(functorch is not None and functorch.is_functorch_wrapped_tensor(value))


def theta_scale(theta: torch.Tensor) -> str:
    """"‖θ‖ = …, max |θ_i| = …" for messages, without overflowing the norm of a finite θ."""
    t = theta.detach().to(torch.float64)
    top = float(t.abs().max()) if t.numel() else 0.0
    norm = top * float((t / top).norm()) if 0 < top < float("inf") else float(t.norm())
    return f"‖θ‖ = {norm:.3g}, max |θ_i| = {top:.3g}"
