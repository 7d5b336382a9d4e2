"""`skewless up|down|status`: the embedded broker and Redis, and where everything lives."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from skewless.output import console, err_console
from skewless.services import service_status, start_services, stop_services
from skewless.settings import load_settings

__all__ = ["register"]

_Timeout = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds to wait for each service.")
]


def _where(entry: dict[str, Any]) -> str:
    for key in ("bootstrap", "url", "uri", "root"):
        if key in entry:
            return str(entry[key] or "-")
    return "-"


def _state(entry: dict[str, Any]) -> str:
    if entry.get("stale"):
        return f"[yellow]stale (pid {entry['pid']} gone; entry removed)[/]"
    if "running" not in entry:
        return ""
    return "[green]running[/]" if entry["running"] else "[red]not running[/]"


def _table(status: dict[str, Any]) -> Table:
    table = Table(title=f"skewless services (state: {status['state_file']})")
    for column in ("service", "where", "state", "managed", "pid", "log"):
        table.add_column(column)
    for name in ("kafka", "redis", "schema_registry", "mlflow", "delta"):
        entry = status[name]
        managed = entry.get("managed")
        table.add_row(
            name,
            _where(entry),
            _state(entry) if name in {"kafka", "redis"} else entry.get("framing", ""),
            "" if managed is None else ("embedded" if managed else "configured"),
            "" if entry.get("pid") is None else str(entry["pid"]),
            entry.get("log") or "",
        )
    return table


def _report_stale(status: dict[str, Any]) -> None:
    for name in ("kafka", "redis"):
        if status[name]["stale"]:
            pid = status[name]["pid"]
            err_console.print(f"[yellow]note:[/] {name} pid {pid} had died; removed its entry")


def up(timeout: _Timeout = 30.0) -> None:
    """Start the broker and Redis (unless configured), create the topics. Idempotent."""
    settings = load_settings()
    _report_stale(service_status(settings))
    endpoints = start_services(settings, timeout_s=timeout)
    names = ", ".join(settings.topics.all_names())
    console.print(f"topics ready on {endpoints.kafka_bootstrap}: {names}")
    console.print(_table(service_status(settings)))


def down(timeout: _Timeout = 10.0) -> None:
    """Stop what `skewless up` started (never a configured service)."""
    settings = load_settings()
    stopped = stop_services(settings, timeout_s=timeout)
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


def status(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the status as JSON on stdout.")
    ] = False,
) -> None:
    """Show what runs where; a dead service's stale entry is reported and removed."""
    report = service_status(load_settings())
    if as_json:
        typer.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    _report_stale(report)
    console.print(_table(report))


def register(app: typer.Typer) -> None:
    """Attach the service lifecycle commands."""
    app.command("up")(up)
    app.command("down")(down)
    app.command("status")(status)
