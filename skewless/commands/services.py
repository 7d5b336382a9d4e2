"""`skewless up|down|status`: the embedded broker and Redis (filled in by the services work)."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Attach the service lifecycle commands."""
