"""The ``losslab`` command line: ``check``, ``examples``, ``landscape``, ``spectrum``, ``demo``, ``experiment``, ``sweep``.

Bad input becomes one line on stderr and exit code 2, never a traceback. ``losslab --version``
is answered before any command is imported (so without importing torch).
"""

from __future__ import annotations

import signal
import sys


def _load_app():
    from . import check, demo, landscape, spectrum, sweep  # noqa: F401  (each registers its command; demo also registers experiment)
    from ._app import app

    globals()["app"] = app
    return app


def __getattr__(name: str):
    if name == "app":
        return _load_app()
    raise AttributeError(f"module 'losslab.cli' has no attribute {name!r}")


def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwind, so a half-written --out folder is removed


def run() -> None:
    """Console-script entry point."""
    if sys.argv[1:2] == ["--version"]:
        from .. import __version__

        print(f"losslab {__version__}")
        return
    signal.signal(signal.SIGTERM, _terminate)
    _load_app()()


__all__ = ["app", "run"]
