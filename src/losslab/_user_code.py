"""The user's own Python files: ``FILE.py:FUNCTION`` specs, imported by path.

A file is imported with :mod:`importlib` under the module name ``losslab_user_<stem>`` (its folder
first on ``sys.path`` while it imports, so it may import its neighbours). The name is fixed by the
file's stem, so a worker process that imports the same file gets the same module name, and objects
of the user's classes pickled by a sweep's driver unpickle there (:mod:`losslab.sweep.worker`).

Every problem with a file is one line naming the option, the file and what was expected (a
:class:`~losslab.LosslabError`), never a traceback.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from ._checks import LosslabError

__all__ = ["existing_file", "import_user_file", "parse_spec", "short_error", "user_function", "where_in"]


def where_in(err: BaseException, path: Path) -> str:
    """' (net.py, line 7)': the deepest frame of the traceback inside the user's file, if any."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if Path(f.filename).resolve() == path.resolve()]
    if isinstance(err, SyntaxError) and err.lineno:
        return f" ({path.name}, line {err.lineno})"
    return f" ({path.name}, line {frames[-1].lineno})" if frames else ""


def short_error(err: BaseException) -> str:
    """``Type: first line of the message`` (a SyntaxError without the location that :func:`where_in` gives)."""
    if isinstance(err, SyntaxError):
        return f"SyntaxError: {err.msg}"
    try:
        text = str(err).strip().splitlines()
    except Exception:  # an exception whose __str__ raises
        text = ["(its message could not be printed)"]
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def parse_spec(option: str, spec: object, example: str = "net.py:build") -> tuple[Path, str]:
    """``(path, function name)`` of ``"FILE.py:FUNCTION"``; the file must exist."""
    if not isinstance(spec, str):
        raise LosslabError(f"expected {option} as a string FILE.py:FUNCTION (e.g. {example}), got {type(spec).__name__} {spec!r}")
    file, sep, name = spec.rpartition(":")
    if not sep or not file or not name.isidentifier():
        raise LosslabError(f"expected {option} FILE.py:FUNCTION (e.g. {example}), got {spec!r}")
    return existing_file(option, file, "an existing Python file"), name


def existing_file(option: str, path: str | Path, what: str) -> Path:
    """``path`` as a Path if it is a file, else one line: expected ``option`` to name ``what``, got a folder / no such file."""
    p = Path(path)
    if not p.is_file():
        reason = "a folder" if p.is_dir() else "no such file"
        raise LosslabError(f"expected {option} to name {what}, got {str(path)!r} ({reason})")
    return p


def module_name(path: Path) -> str:
    return "losslab_user_" + re.sub(r"\W", "_", path.stem)


def import_user_file(option: str, path: Path) -> ModuleType:
    """Import the Python file ``path`` afresh (a file edited since is read again), as ``losslab_user_<stem>``."""
    name = module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LosslabError(f"expected {option} to name a Python file (.py), got {str(path)!r}")
    code = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    sys.modules[name] = code
    try:
        spec.loader.exec_module(code)
    except (Exception, SystemExit) as err:  # the user's code: say where it failed, in one line
        sys.modules.pop(name, None)
        raise LosslabError(f"expected {option} {path} to import, got {short_error(err)}{where_in(err, path)}") from None
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    return code


def user_function(option: str, spec: object, *, example: str = "net.py:build") -> tuple[Callable, Path]:
    """The function ``FUNCTION`` of ``FILE.py`` for ``spec = "FILE.py:FUNCTION"``, and the file's path.

    Raises:
        LosslabError: no ``:FUNCTION``, a missing file, an import that raises, no such function or not a callable.
    """
    path, name = parse_spec(option, spec, example)
    code = import_user_file(option, path)
    fn = getattr(code, name, None)
    if fn is None:
        found = sorted(k for k, v in vars(code).items() if inspect.isfunction(v) and v.__module__ == code.__name__)
        raise LosslabError(f"expected a function {name!r} in {path}, got none; functions there: {found}")
    if not callable(fn):
        raise LosslabError(f"expected {path}:{name} to be a function, got {type(fn).__name__}")
    return fn, path
