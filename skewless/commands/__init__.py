"""CLI command groups; each module registers its commands on the app."""

from __future__ import annotations

import typer

__all__ = ["register_all"]


def register_all(app: typer.Typer) -> None:
    """Attach every command module's commands to `app`."""
    from skewless.commands import features, models, produce, scoring, services

    services.register(app)
    features.register(app)
    produce.register(app)
    models.register(app)
    scoring.register(app)

    from skewless.commands import offline_data, report

    offline_data.register(app)
    report.register(app)

    from skewless.commands import demo, serve

    serve.register(app)
    demo.register(app)
