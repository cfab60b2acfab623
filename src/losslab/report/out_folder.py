"""The one rule for every ``--out`` folder losslab writes (``landscape``, ``spectrum``, ``demo``, ``experiment``).

* ``--out`` may be a new folder (its parent must exist: nothing is created silently), an empty
  folder, or a folder the same kind of command wrote before: each write leaves a manifest,
  ``losslab-manifest.json``, listing the files it wrote, and a folder is recognised as losslab's
  own only when every file in it is listed there. Anything else is refused before any work,
  with one line naming the foreign files and the fix.
* The new folder is built as a hidden sibling, ``.NAME.losslab-partial-PID-XXXX``, and renamed
  into place only when complete; the earlier folder is replaced only then (and put back if the
  rename fails). A failed write removes its partial folder; a run killed outright leaves it, and
  the next run into the same ``--out`` removes it (its process id is in its name, and a partial
  folder whose process is still running is left alone).

So a re-run replaces the whole folder: no file of an earlier run (the plane's HTML beside a
line's files) survives beside the new one.
"""

from __future__ import annotations

try:
    import fcntl
except ImportError:  # Windows: stale partial folders are recognised by their PID only
    fcntl = None

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .._checks import LosslabError

__all__ = ["KINDS", "MANIFEST", "check_out_folder", "writing_folder"]

MANIFEST = "losslab-manifest.json"
KINDS = ("report", "landscape", "spectrum")  # report: demo and experiment
_PARTIAL = "losslab-partial"
_OLD = "losslab-old"
_LEGACY_REPORT = {"index.html", "results.json", "plotly.min.js"}  # reports written before the manifest


def _files(folder: Path) -> list[str]:
    """Every file under ``folder`` (symbolic links included, not followed), as sorted POSIX relative paths."""
    found = []
    for root, dirs, names in os.walk(folder):
        links = [d for d in dirs if os.path.islink(os.path.join(root, d))]
        dirs[:] = [d for d in dirs if d not in links]
        found += [Path(root, n).relative_to(folder).as_posix() for n in names + links]
    return sorted(found)


def _manifest(folder: Path) -> dict | None:
    """The folder's manifest as a dict with ``kind`` and ``files``, or None when absent or malformed."""
    try:
        doc = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("kind") not in KINDS or not isinstance(doc.get("files"), list):
        return None
    if not all(isinstance(f, str) for f in doc["files"]):
        return None
    return doc


def _legacy_report(folder: Path, files: list[str]) -> bool:
    """A report written before manifests existed: results.json from losslab, index.html, figures/*.png."""
    if not all(f in _LEGACY_REPORT or re.fullmatch(r"figures/[^/]+\.png", f) for f in files) or "results.json" not in files:
        return False
    try:
        return isinstance(doc := json.loads((folder / "results.json").read_text(encoding="utf-8")), dict) and "losslab" in doc
    except (OSError, ValueError):
        return False


def _foreign(folder: Path, kind: str) -> tuple[list[str], str | None]:
    """(files in ``folder`` that a ``kind`` write of losslab did not make, the kind that did write the folder if another)."""
    files = _files(folder)
    if not files:
        return [], None
    manifest = _manifest(folder)
    if manifest is None:
        return ([], None) if kind == "report" and _legacy_report(folder, files) else (files, None)
    if manifest["kind"] != kind:
        return files, manifest["kind"]
    return [f for f in files if f != MANIFEST and f not in set(manifest["files"])], None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


_LOCK = ".losslab-lock"  # held (flock) by the run writing a partial folder; the kernel releases it when the run dies


def _hold_lock(folder: Path):
    """An open file holding an exclusive lock on ``folder``'s lock file (None without fcntl: Windows)."""
    if fcntl is None:
        return None
    handle = open(folder / _LOCK, "w")  # held open until the write ends
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


def _held(lock: Path) -> bool:
    """Whether a live run holds ``lock`` (a PID can be reused, or be 1 in every container: the lock cannot)."""
    try:
        with open(lock) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def _remove_stale(parent: Path, name: str) -> None:
    """Remove partial folders of ``name`` left by runs that were killed (their process is gone).

    A run killed between moving the earlier folder aside and renaming the new one into place left
    the earlier folder in ``.NAME.losslab-old-…/previous``: it is put back first.
    """
    pattern = re.compile(rf"\.{re.escape(name)}\.({_PARTIAL}|{_OLD})-(\d+)-[^/]+")
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            match = pattern.fullmatch(entry.name)
            if not match:
                continue
            if fcntl is not None and (entry / _LOCK).exists():
                if _held(entry / _LOCK):
                    continue
            elif int(match.group(2)) == os.getpid() or _alive(int(match.group(2))):
                continue
            if match.group(1) == _OLD and (entry / "previous").is_dir() and not (parent / name).exists():
                os.replace(entry / "previous", parent / name)
            shutil.rmtree(entry, ignore_errors=True)


def _quote(names: list[str], most: int = 5) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" (and {len(names) - most} more)" if len(names) > most else "")


def check_out_folder(out: str | os.PathLike, kind: str) -> Path:
    """``out`` as a Path if a ``kind`` write may go there, else one LosslabError saying why and the fix.

    Accepted: a new folder in an existing parent, an empty folder, or a folder whose every file is
    listed in its ``kind`` manifest (an earlier write of the same kind). Also removes partial
    folders of ``out`` left by killed runs. Raises LosslabError for an existing file, a missing
    parent, foreign files (named, at most five), or a parent losslab cannot write in.
    """
    if kind not in KINDS:
        raise LosslabError(f"unknown output kind {kind!r}: expected one of {', '.join(map(repr, KINDS))}")
    out = Path(out)
    real = Path(os.path.realpath(out))
    if not real.name:
        raise LosslabError(f"expected --out to be a folder losslab can create or replace, got {str(out)!r}; choose a new folder")
    if real == Path.cwd() or real in Path.cwd().parents:
        raise LosslabError(f"expected --out to be a folder beside or below the current one, got {str(out)!r}, which holds the "
                           "current folder (--out is replaced whole); choose a new folder such as --out results")
    if out.exists() and not out.is_dir():
        raise LosslabError(f"expected --out to be a folder, got an existing file {out}; choose a new or empty folder")
    if not real.parent.is_dir():
        raise LosslabError(f"expected --out inside an existing folder, got {out}, whose parent {real.parent} does not exist; "
                           "create it first (mkdir -p) or choose another --out")
    if out.is_dir():
        foreign, other = _foreign(real, kind)
        if other:
            raise LosslabError(f"expected --out to be a new or empty folder or an earlier losslab {kind}, got {out}, which holds a "
                               f"losslab {other} ({_quote(foreign)}); choose another --out (an empty or new folder)")
        if foreign:
            raise LosslabError(f"expected --out to be a new or empty folder or an earlier losslab {kind}, got {out}, which holds "
                               f"files losslab did not write there: {_quote(foreign)}; choose another --out (an empty or new folder)")
    try:  # a real probe: os.access says yes for root even where nothing can be created (/proc)
        os.rmdir(tempfile.mkdtemp(prefix=f".{real.name}.probe-", dir=real.parent))
    except OSError as err:
        raise LosslabError(f"expected --out to be a folder losslab can write, but cannot write in {real.parent} ({err.strerror})") from None
    _remove_stale(real.parent, real.name)
    return out


def _swap(new: Path, target: Path) -> None:
    """Rename ``new`` to ``target``; an existing ``target`` is moved aside first, and put back if the rename fails."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.{_OLD}-{os.getpid()}-", dir=target.parent))
        os.replace(target, old / "previous")
    try:
        os.replace(new, target)
    except OSError:
        if old is not None:
            os.replace(old / "previous", target)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def writing_folder(out: str | os.PathLike, kind: str, *, version: str) -> Iterator[Path]:
    """Yield an empty hidden sibling folder of ``out`` to write into; when the block ends, it becomes ``out``.

    On success the manifest (``kind``, ``version``, every file written) is added and the folder
    renamed to ``out``, replacing an earlier one only then (which is put back if that rename
    fails). On any exception the partial folder is removed and ``out`` is left as it was. The
    target is checked first with :func:`check_out_folder` (LosslabError if refused).
    """
    out = check_out_folder(out, kind)
    real = Path(os.path.realpath(out))
    parent = real.parent
    tmp = Path(tempfile.mkdtemp(prefix=f".{real.name}.{_PARTIAL}-{os.getpid()}-", dir=parent))
    lock = _hold_lock(tmp)
    try:
        yield tmp
        if lock is not None:
            (tmp / _LOCK).unlink()  # not part of the output; the PID check covers the instant before the rename
        manifest = {"losslab": version, "kind": kind, "files": _files(tmp)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        os.chmod(tmp, 0o755)
        try:
            _swap(tmp, real)
        except OSError as err:
            raise LosslabError(f"expected --out to be a folder losslab can replace, got {out}, which could not be replaced "
                               f"({err.strerror or err}); the earlier folder is unchanged; choose another --out") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if lock is not None:
            lock.close()
