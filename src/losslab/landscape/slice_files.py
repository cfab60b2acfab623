"""Slice files: ``.npz`` of plain arrays and strings, written atomically, read back only after validation.

A file is read with ``numpy.load(allow_pickle=False)`` (nothing in it is executed) and checked
before any array reaches a slice: its kind (``"line"`` or ``"plane"``), format version, that every
array is there with a numeric dtype, that the shapes agree (``losses`` is ``(len(t),)`` or
``(len(alphas), len(betas))``; the points all have the same length p), one floating dtype for the
coordinates and points, finite coordinates and points, increasing coordinates, and losses that are
numbers: no NaN, no −∞, at least one finite value (+∞ is kept: a loss that overflowed where it was
evaluated). Every problem found is one line of a single :class:`~losslab.LosslabError`.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .._checks import LosslabError

FORMAT_VERSION = 1
METHODS = ("grid", "exact quadratic")
_ARRAYS = {"line": (("t",), ("a", "b")), "plane": (("alphas", "betas"), ("center", "d1", "d2"))}  # coordinates, points


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to exactly ``path`` (no suffix added), atomically: temp file, then rename. The file gets the
    permissions of any new file (0o666 less the umask), not the temp file's private 0o600."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], list[str]]:
    """The arrays of an ``.npz`` file (no pickle), and a line for each array that could not be read."""
    if not isinstance(path, (str, os.PathLike)):
        raise LosslabError(f"expected the path of a slice file (str or pathlib.Path), got {type(path).__name__}")
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise LosslabError(f"expected a slice file written by losslab (.save), got no file at {path}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise LosslabError(f"expected a slice file written by losslab (.save, an .npz of arrays), got {path}, which numpy cannot "
                           f"read without unpickling ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise LosslabError(f"expected a slice file written by losslab (.save, an .npz of arrays), got {path}, a single .npy array")
    arrays, unreadable = {}, []
    with data:
        for k in data.files:
            try:
                arrays[k] = data[k]
            except (ValueError, OSError, zipfile.BadZipFile) as err:
                unreadable.append(f"{k}: cannot be read without unpickling ({str(err).splitlines()[0]}), expected plain numbers or text")
    return arrays, unreadable


def _text(arrays: dict, key: str) -> str | None:
    value = arrays.get(key)
    return str(value) if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind == "U" else None


def slice_kind(path: str | os.PathLike) -> str | None:
    """The ``kind`` recorded in a slice file (``"line"``, ``"plane"``, or None when it has none)."""
    return _text(_read(path)[0], "kind")


def _shapes(kind: str, a: dict[str, np.ndarray]) -> list[str]:
    """A line for each shape that disagrees with the others (arrays present with numeric dtypes only)."""
    coords, points = _ARRAYS[kind]
    problems = []
    for k in coords:
        if k in a and (a[k].ndim != 1 or a[k].shape[0] < 2):
            problems.append(f"{k}: shape {a[k].shape}, expected (steps,) with steps >= 2")
    lengths = {k: a[k].shape[0] for k in coords if k in a and a[k].ndim == 1}
    if "losses" in a and len(lengths) == len(coords):
        want = tuple(lengths[k] for k in coords)
        if a["losses"].shape != want:
            names = ", ".join(f"len({k})" for k in coords)
            problems.append(f"losses: shape {a['losses'].shape}, expected {want} = ({names}{',' if len(coords) == 1 else ''})")
    sizes = {k: a[k].shape for k in points if k in a}
    bad = {k: s for k, s in sizes.items() if len(s) != 1 or s[0] < 1}
    problems += [f"{k}: shape {s}, expected (p,) with p >= 1 (a flat parameter vector)" for k, s in bad.items()]
    good = {k: s for k, s in sizes.items() if k not in bad}
    if len(set(good.values())) > 1:
        problems.append("points of different lengths: " + ", ".join(f"{k} {s}" for k, s in good.items()) + ", expected one (p,)")
    return problems


def _values(kind: str, a: dict[str, np.ndarray]) -> list[str]:
    """A line for each non-finite point or coordinate, coordinates out of order, and losses that are not numbers."""
    coords, points = _ARRAYS[kind]
    problems = []
    for k in (*coords, *points):
        if k not in a:
            continue
        if not np.isfinite(a[k]).all():
            problems.append(f"{k}: {int((~np.isfinite(a[k])).sum())} non-finite of {a[k].size} values, expected finite numbers")
        elif k in coords and a[k].ndim == 1 and not (np.diff(a[k]) > 0).all():
            problems.append(f"{k}: not increasing, expected the slice's coordinates in increasing order")
    if "losses" in a:
        L = a["losses"]
        nan, neg_inf = int(np.isnan(L).sum()), int(np.isneginf(L).sum())
        if L.size and not np.isfinite(L).any():
            problems.append(f"losses: none of the {L.size} values is finite, expected numbers (+inf only where a loss overflowed)")
        elif nan or neg_inf:
            what = " and ".join(w for w in (f"{nan} NaN" if nan else "", f"{neg_inf} -inf" if neg_inf else "") if w)
            problems.append(f"losses: {what} of {L.size} values, expected numbers (+inf only where a loss overflowed)")
    return problems


def _plane_extras(a: dict[str, np.ndarray]) -> list[str]:
    """Seed, method and coefficients of a plane."""
    problems = []
    seed = a.get("seed")
    if seed is not None and not (seed.dtype.kind in "iu" and seed.shape in ((0,), (1,)) and (seed >= 0).all()):
        problems.append(f"seed: {seed.dtype} array of shape {seed.shape}, expected an integer array of shape (0,) or (1,), >= 0")
    method = _text(a, "method")
    if "method" in a and method not in METHODS:
        problems.append(f"method: {method if method is not None else a['method'].dtype!r}, expected one of {', '.join(map(repr, METHODS))}")
    coef = a.get("coefficients")
    if coef is not None:
        want = (6,) if method == "exact quadratic" else (0,)
        if coef.dtype.kind != "f" or coef.shape != want or not np.isfinite(coef).all():
            problems.append(f"coefficients: {coef.dtype} array of shape {coef.shape}, expected finite floats of shape {want} "
                            f"for method {method!r}")
    return problems


def load_npz(path: str | os.PathLike, kind: str | None) -> dict[str, np.ndarray]:
    """The validated arrays of the slice file ``path`` (``kind``: ``"line"``, ``"plane"``, or None for either).

    Raises:
        LosslabError: not a losslab slice file, a slice of the other kind, or any problem with its
            arrays (one line per problem: missing, unreadable, non-numeric, shapes, dtypes, values).
    """
    arrays, problems = _read(path)
    got = _text(arrays, "kind")
    if got not in _ARRAYS or (kind is not None and got != kind):
        want = f"a {kind} slice" if kind else "a slice"
        what = f"a {got} slice" if got in _ARRAYS else f"a file with keys {sorted(arrays)}"
        raise LosslabError(f"expected {want} file written by losslab (.save), got {what}")
    coords, points = _ARRAYS[got]
    numeric = (*coords, "losses", *points)
    required = (*numeric, *(("seed", "method", "coefficients") if got == "plane" else ()))
    problems += [f"{k}: missing" for k in required if k not in arrays and not any(p.startswith(f"{k}:") for p in problems)]
    version = arrays.get("version")
    if version is None or version.shape != () or version.dtype.kind not in "iu" or not 1 <= int(version) <= FORMAT_VERSION:
        shown = "missing" if version is None else f"{version!r}"
        problems.append(f"version: {shown}, expected an integer from 1 to {FORMAT_VERSION} (this losslab's slice format)")
    if "description" in arrays and _text(arrays, "description") is None:
        problems.append(f"description: {arrays['description'].dtype} array of shape {arrays['description'].shape}, expected text")
    floats = {}
    for k in numeric:
        if k in arrays and arrays[k].dtype not in (np.float32, np.float64):
            problems.append(f"{k}: dtype {arrays[k].dtype}, expected float32 or float64 numbers (a problem's dtypes)")
        elif k in arrays:
            floats[k] = arrays[k]
    dtypes = {str(floats[k].dtype) for k in (*coords, *points) if k in floats}
    if len(dtypes) > 1:
        problems.append("mixed dtypes: " + ", ".join(f"{k} {floats[k].dtype}" for k in (*coords, *points) if k in floats)
                        + ", expected one floating dtype (the problem's)")
    problems += _shapes(got, floats) + _values(got, floats)
    if got == "plane":
        problems += _plane_extras(arrays)
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        raise LosslabError(f"expected a {got} slice file written by losslab (.save), got {path} with {len(problems)} "
                           f"problem{'s' if len(problems) > 1 else ''}:\n{lines}")
    return arrays
