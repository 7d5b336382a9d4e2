"""`skewless demo`: its options here, its story (`skewless.demo`) imported when it runs.

The story trains models, and importing training (torch, scikit-learn, scipy) took ~2.7 s
and ~200 MB: registered with its story imported, every `skewless` command paid for it,
the scoring worker (`skewless score run`) included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Attach `demo` to `app`."""
    app.command("demo")(demo)


def demo(
    events: Annotated[
        int, typer.Option(min=20_000, help="Transactions in the first month.")
    ] = 150_000,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the summary as JSON here.")
    ] = None,
) -> None:
    """The whole story on embedded services: features, training, scoring, drift, rollout."""
    from skewless.demo import run_demo  # here, not above: see the module docstring

    run_demo(events, json_out)
