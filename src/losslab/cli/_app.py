"""The typer application every command registers on."""

from __future__ import annotations

import typer

from .. import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Is this loss convex in the parameters, and why (not)?")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"losslab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version")) -> None:
    """Is this loss convex in the parameters, and why (not)?"""
