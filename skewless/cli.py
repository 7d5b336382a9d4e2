"""The `skewless` command line: one typer app, commands registered by `skewless.commands`."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from schemas.errors import SkewlessError
from skewless.commands import register_all
from skewless.native import stale_modules

__all__ = ["app", "main"]

app = typer.Typer(
    name="skewless",
    help="Streaming-first real-time features and inference: computed once, never skewed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
register_all(app)


def main() -> None:
    """Entry point: user mistakes print one clear line and exit 2, never a traceback."""
    stale = stale_modules()
    if stale:
        Console(stderr=True).print(
            f"[yellow]warning:[/] compiled modules older than their source run as they were "
            f"built: {', '.join(stale)}; `make install` rebuilds them",
            highlight=False,
        )
    try:
        app()
    except SkewlessError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
