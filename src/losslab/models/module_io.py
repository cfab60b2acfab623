"""How a wrapped ``nn.Module`` is called and what it returns: structured inputs, output selectors.

Inputs are a tensor (``module(x)``), a tuple of tensors (``module(*x)``) or a dict of tensors
(``module(**x)``, as Hugging Face models take ``input_ids`` and ``attention_mask``); the leading
dimension of every tensor is the batch. They are never cast: int64 token ids stay int64.

The forward's return value is reduced to one floating tensor by an output selector: ``None``
(the forward returns a tensor), a name (a dict key or an attribute, as in Hugging Face's
``ModelOutput``) or an integer (an index into a returned tuple or list).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .._checks import LosslabError

Inputs = torch.Tensor | tuple | list | Mapping
Selector = str | int | None


def call_args(inputs: object) -> tuple[tuple, dict]:
    """The positional and keyword arguments the module is called with for ``inputs``."""
    if isinstance(inputs, torch.Tensor):
        return (inputs,), {}
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    if isinstance(inputs, Mapping):
        bad = [k for k in inputs if not isinstance(k, str)]
        if bad:
            raise LosslabError(f"expected a dict of inputs with string keys (forward's argument names), got keys {bad!r}")
        return (), dict(inputs)
    raise LosslabError(
        f"expected inputs as a tensor, a tuple of tensors (module(*x)) or a dict of tensors (module(**x)), got {type(inputs).__name__}"
    )


def tensors_of(inputs: object) -> list[torch.Tensor]:
    """The tensors among ``inputs`` (a tensor, a tuple or a dict), in order."""
    args, kwargs = call_args(inputs)
    return [v for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor)]


def map_tensors(inputs: object, fn: Any) -> object:
    """``inputs`` with ``fn`` applied to every tensor, the structure kept."""
    if isinstance(inputs, torch.Tensor):
        return fn(inputs)
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(fn(v) if isinstance(v, torch.Tensor) else v for v in inputs)
    return {k: fn(v) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


def check_selector(output: object) -> Selector:
    """Return ``output`` if it is None, a name or a non-negative index; else raise."""
    if output is None or isinstance(output, str) or (isinstance(output, int) and not isinstance(output, bool) and output >= 0):
        return output
    raise LosslabError(
        f"expected output to be None, a key/attribute name (e.g. 'logits') or a tuple index >= 0, got output={output!r}"
    )


def _fields(value: object) -> list[str]:
    """The names a selector can read from ``value``: dict keys, else its public attributes."""
    if isinstance(value, Mapping):
        return [str(k) for k in value]
    fields = getattr(value, "_fields", None)  # a namedtuple
    if fields is not None:
        return list(fields)
    return [k for k in getattr(value, "__dict__", {}) if not k.startswith("_")]


def _usable(value: object) -> bool:
    return isinstance(value, torch.Tensor) and value.is_floating_point() and value.ndim >= 1


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, Mapping):
        return f"a {type(value).__name__} with keys {_fields(value)}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    fields = _fields(value)
    return f"a {type(value).__name__} with attributes {fields}" if fields else f"a {type(value).__name__}"


def _suggest(value: object) -> str:
    """The fix for a forward that returns a structure: the selector of its first floating tensor."""
    if isinstance(value, Mapping) or (not isinstance(value, (tuple, list)) and _fields(value)):
        names = _fields(value)
        get = (lambda k: value[k]) if isinstance(value, Mapping) else (lambda k: getattr(value, k))
        best = next((k for k in names if _usable(get(k))), names[0] if names else "name")
        return f"pass Module(net, output={best!r})"
    best = next((i for i, v in enumerate(value) if _usable(v)), 0)
    return f"pass Module(net, output={best})"


def select_output(out: object, output: Selector) -> torch.Tensor:
    """The floating tensor chosen by ``output`` from the forward's return value ``out``."""
    if output is None:
        if isinstance(out, torch.Tensor):
            value = out
        elif isinstance(out, (Mapping, tuple, list)) or _fields(out):
            raise LosslabError(f"forward returned {_describe(out)}; {_suggest(out)}")
        else:
            value = out
    elif isinstance(output, str):
        if isinstance(out, Mapping) and output in out:
            value = out[output]
        elif not isinstance(out, (torch.Tensor, Mapping)) and hasattr(out, output):
            value = getattr(out, output)
        else:
            raise LosslabError(f"expected output={output!r} to name a key or attribute of what forward returns, got {_describe(out)}; "
                               "pass one of those, or output=None for a tensor")
    else:
        if not isinstance(out, (tuple, list)) or output >= len(out):
            raise LosslabError(f"expected output={output} to index the tuple forward returns, got {_describe(out)}; "
                               "pass an index in range, a name for a dict, or output=None for a tensor")
        value = out[output]
    if not _usable(value):
        raise LosslabError(f"forward returned something unusable: expected a floating tensor of shape (n, …), got {_describe(value)}")
    return value
