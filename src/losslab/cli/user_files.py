"""The user's own files for the command line: ``--model-file``, ``--weights``, ``--data``.

- ``--model-file net.py:build``: the Python file is the user's own code, imported with
  :mod:`importlib` from that path (its folder first on ``sys.path`` while it imports, so it may
  import its neighbours); ``build()`` is called with no arguments and must return a
  ``torch.nn.Module``.
- ``--weights ckpt.pt``: a state dict, read with ``torch.load(path, weights_only=True)`` (no
  arbitrary unpickling) or, for ``.safetensors``, with ``safetensors.torch.load_file``. A
  checkpoint dict holding the state dict under ``"state_dict"``, ``"model_state_dict"`` or
  ``"model"`` is accepted too. Keys and shapes must match the module exactly.
- ``--data``: ``.npz`` (``numpy.load(allow_pickle=False)``), ``.pt`` (``weights_only=True``) or
  ``.safetensors``, holding the inputs under ``X`` and the targets under ``y`` (other names with
  ``--x-key``/``--y-key``; several ``--x-key`` give a dict of inputs, passed as ``module(**inputs)``).

Every problem with a file is one line naming the file and what was expected (a
:class:`~losslab.LosslabError`), never a traceback. Nothing here reads a pickle.
"""

from __future__ import annotations

import inspect
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from .._checks import LosslabError
from .._user_code import existing_file, user_function, where_in
from .._user_code import short_error as _short

DATA_SUFFIXES = (".npz", ".pt", ".pth", ".safetensors")
STATE_KEYS = ("state_dict", "model_state_dict", "model")


def load_model_file(spec: str) -> torch.nn.Module:
    """Import ``FILE.py`` and return ``FUNCTION()`` for ``spec = "FILE.py:FUNCTION"``.

    Raises:
        LosslabError: no ``:FUNCTION``, a missing file, an import that raises, no such function,
            a function that needs arguments or raises, or a result that is not a ``torch.nn.Module``.
    """
    fn, path = user_function("--model-file", spec)
    file, name = str(path), spec.rpartition(":")[2]
    try:
        inspect.signature(fn).bind()
    except TypeError:
        raise LosslabError(f"expected {file}:{name} to take no arguments, got {name}{inspect.signature(fn)}; "
                           "give every argument a default") from None
    except ValueError:  # no signature (a builtin): just call it
        pass
    try:
        net = fn()
    except (Exception, SystemExit) as err:
        raise LosslabError(f"expected {file}:{name}() to return a torch.nn.Module, got {_short(err)}{where_in(err, path)}") from None
    if not isinstance(net, torch.nn.Module):
        raise LosslabError(f"expected {file}:{name}() to return a torch.nn.Module, got {type(net).__name__}")
    return net


def _read_torch(option: str, path: Path) -> object:
    """``torch.load(path, weights_only=True, map_location="cpu")``, with its refusals as one line."""
    allowed = ".pt (torch.save) or .safetensors" if option == "--weights" else ".pt (torch.save), .safetensors or .npz"
    if path.suffix == ".npz":
        raise LosslabError(f"expected {option} {path} as {allowed}, got a NumPy .npz; save the state dict with torch.save or safetensors")
    if not zipfile.is_zipfile(path):
        with path.open("rb") as f:
            head = f.read(2)
        if not head.startswith(b"\x80"):  # neither torch's zip format nor a legacy pickle
            raise LosslabError(f"expected {option} {path} to be a file written by torch.save, got something else; use {allowed}")
    try:
        with warnings.catch_warnings():  # a legacy pickle's UserWarning: the refusal below says it in one line
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError for anything beyond tensors, dicts, lists and numbers
        text = str(err)
        found = re.search(r"GLOBAL (\S+)", text) or re.search(r"Unsupported global: (\S+)", text)
        what = f" (it needs {found.group(1).rstrip(',.')})" if found else ""
        raise LosslabError(
            f"expected {option} {path} to load with torch.load(weights_only=True) (tensors, dicts, lists, numbers), "
            f"got a checkpoint that needs arbitrary unpickling{what}; save tensors only, e.g. torch.save(model.state_dict(), path), "
            "or use .safetensors"
        ) from None


def _read_safetensors(option: str, path: Path) -> dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise LosslabError(f"expected the safetensors package to read {option} {path}, got it not installed; "
                           "pip install safetensors") from None
    try:
        return load_file(str(path), device="cpu")
    except Exception as err:
        raise LosslabError(f"expected {option} {path} to be a safetensors file, got {_short(err)[:200]}") from None


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (``.safetensors``, or anything ``torch.load(weights_only=True)`` reads)."""
    p = existing_file("--weights", path, "an existing checkpoint (.pt or .safetensors)")
    state = _read_safetensors("--weights", p) if p.suffix == ".safetensors" else _read_torch("--weights", p)
    if isinstance(state, dict) and not all(isinstance(v, torch.Tensor) for v in state.values()):
        nested = [k for k in STATE_KEYS if isinstance(state.get(k), dict)]
        state = state[nested[0]] if nested else state
    if not isinstance(state, dict) or not state or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        got = type(state).__name__ if not isinstance(state, dict) else f"a dict with keys {list(state)[:6]}"
        raise LosslabError(f"expected --weights {p} to hold a state dict (parameter name → tensor), got {got}; "
                           "save it with torch.save(model.state_dict(), path)")
    return state


def apply_weights(net: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Load ``state`` into ``net`` (strict: the same names and shapes), or one line saying what differs."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = [f"missing {missing[:5]}" if missing else "", f"unexpected {unexpected[:5]}" if unexpected else "",
                 f"shapes differ ({'; '.join(shapes[:3])})" if shapes else ""]
        raise LosslabError(f"expected --weights {path} to match the module's state dict, got {', '.join(x for x in parts if x)}; "
                           "save model.state_dict() of the module --model-file builds")
    net.load_state_dict(state)


def is_data_file(value: str) -> bool:
    """Whether ``--data VALUE`` names a file (a data file suffix, a path separator, or an existing file)."""
    return Path(value).suffix in DATA_SUFFIXES or "/" in value or Path(value).is_file()


def _arrays(p: Path) -> dict[str, object]:
    if p.suffix == ".npz":
        try:
            return dict(np.load(p, allow_pickle=False))
        except ValueError as err:
            if "allow_pickle" in str(err) or "Object arrays" in str(err):
                raise LosslabError(f"expected --data {p} to hold numeric arrays, got object arrays (they need pickle, "
                                   "which losslab never loads); save numeric arrays, e.g. np.savez(path, X=X.astype(np.float32), y=y)"
                                   ) from None
            raise LosslabError(f"expected --data {p} to be a .npz file written by numpy.savez, got {_short(err)[:160]}") from None
        except (OSError, zipfile.BadZipFile) as err:
            raise LosslabError(f"expected --data {p} to be a .npz file written by numpy.savez, got {_short(err)[:160]}") from None
    if p.suffix == ".safetensors":
        return _read_safetensors("--data", p)
    loaded = _read_torch("--data", p)
    if not isinstance(loaded, dict):
        raise LosslabError(f"expected --data {p} to hold a dict of tensors {{'X': ..., 'y': ...}}, got {type(loaded).__name__}")
    return loaded


def load_data(path: str, *, x_keys: list[str], y_key: str) -> tuple[object, torch.Tensor]:
    """(inputs, targets) from a data file: inputs a tensor for one ``x_keys``, a dict of tensors for several."""
    p = existing_file("--data", path, "an existing data file (.npz, .pt or .safetensors)")
    if p.suffix not in DATA_SUFFIXES:
        raise LosslabError(f"expected --data as a .npz, .pt or .safetensors file (or a built-in data set name), got {path!r}")
    arrays = _arrays(p)
    missing = [k for k in [*x_keys, y_key] if k not in arrays]
    if missing:
        raise LosslabError(f"expected arrays named {[*x_keys, y_key]} in --data {p}, got {sorted(arrays)} (missing {missing}); "
                           "name them X and y, or pass --x-key/--y-key")
    out = {}
    for k in [*x_keys, y_key]:
        value = arrays[k]
        if isinstance(value, np.ndarray) and (value.dtype.kind not in "biuf"):
            raise LosslabError(f"expected numeric array {k!r} in --data {p}, got dtype {value.dtype}")
        if not isinstance(value, (np.ndarray, torch.Tensor)):
            raise LosslabError(f"expected {k!r} in --data {p} to be a tensor or array, got {type(value).__name__}")
        out[k] = torch.as_tensor(value)
    inputs = out[x_keys[0]] if len(x_keys) == 1 else {k: out[k] for k in x_keys}
    return inputs, out[y_key]
