"""The ``losslab`` command line: ``check``, ``examples``, ``landscape``, ``spectrum``, ``demo``, ``experiment``.

Bad input becomes one line on stderr and exit code 2, never a traceback.
"""

from . import check, demo, landscape, spectrum  # noqa: F401  (each registers its command; demo also registers experiment)
from .app import app


def run() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "run"]
