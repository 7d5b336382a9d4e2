"""`skewless report`: one self-contained HTML file from the registry and the topics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from offline.registry import DEFAULT_MODEL_NAME
from skewless import wiring
from skewless.endpoints import kafka_config, resolve_endpoints
from skewless.output import console, write_json
from skewless.report import render_report
from skewless.report.collect import collect_report_data
from skewless.services import ServiceError
from skewless.settings import load_settings

__all__ = ["register"]


def report_command(
    out: Annotated[Path, typer.Option("--out", help="Where to write the HTML.")] = Path(
        "skewless-report.html"
    ),
    name: Annotated[str, typer.Option(help="Registered model name.")] = DEFAULT_MODEL_NAME,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the collected data as JSON.")
    ] = None,
) -> None:
    """Model cards, curves, drift, scores, latency and throughput in one HTML file."""
    settings = load_settings()
    try:
        client = kafka_config(settings, resolve_endpoints(settings))
    except ServiceError:
        client = None  # no broker: the report still shows the registry
        console.print("[yellow]no Kafka configured or running: drift and predictions left out[/]")
    data = collect_report_data(
        tracking_uri=settings.tracking_uri,
        model_name=name,
        client_config=client,
        drift_topic=settings.topics.drift,
        predictions_topic=settings.topics.predictions,
        schema_registry=wiring.schema_registry(settings),
    )
    path = render_report(data, out)
    console.print(f"report: {path.resolve()}")
    write_json(json_out, data.to_json())


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
