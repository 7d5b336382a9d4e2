"""`skewless features run|backfill`, `skewless labels run`, `skewless audit skew`, `compact`."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import redis
import typer
from deltalake import DeltaTable
from rich.table import Table

from skewless import wiring
from skewless.endpoints import Endpoints, kafka_config, resolve_endpoints
from skewless.output import console, write_json
from skewless.pipeline_stats import count_dead_letters, count_online_entities, delta_counts
from skewless.settings import Settings, SettingsError, load_settings
from streams import delta_tables
from streams.audit import AuditReport, audit_skew
from streams.features.flow import build_feature_flow
from streams.labels import build_labels_flow
from streams.maintenance import compact_table
from streams.runner import run_dataflow
from streams.sources import DeltaTransactionsSource, KafkaTransactions, kafka_source

__all__ = ["register"]

_Json = Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON here.")]
_UntilEnd = Annotated[
    bool, typer.Option("--until-end", help="Stop at the topic's current end instead of tailing.")
]

features_app = typer.Typer(help="The feature dataflow: one definition into Redis, Delta, Kafka.")
labels_app = typer.Typer(help="Label ingestion into the Delta labels table.")
audit_app = typer.Typer(help="Training/serving skew checks.")


def _context() -> tuple[Settings, Endpoints]:
    settings = load_settings()
    return settings, resolve_endpoints(settings)


def summary(settings: Settings, endpoints: Endpoints) -> dict[str, Any]:
    """Counts across the stores plus the skew audit."""
    fs = wiring.feature_set()
    client = redis.Redis.from_url(wiring.redis_url(settings, endpoints))
    counts = delta_counts(settings.delta_root, settings.delta_storage_options or None)
    if counts.get(delta_tables.FEATURES, 0):
        report = audit_skew(
            client,
            fs,
            prefix=wiring.REDIS_PREFIX,
            delta_root=settings.delta_root,
            storage_options=settings.delta_storage_options or None,
        )
    else:
        report = AuditReport()  # nothing computed yet: nothing to compare
    return {
        "events": counts.get("feature_event_ids", 0),
        "delta": counts,
        "redis_entities": count_online_entities(client, fs, wiring.REDIS_PREFIX),
        "dead_letters": count_dead_letters(
            kafka_config(settings, endpoints), settings.topics.dead_letter
        ),
        "late_events": counts.get("late", 0),
        "skew_mismatches": len(report.mismatches),
        "skew_pending": report.pending,
        "skew_values_checked": report.values,
        "definition_version": fs.version,
    }


def _print_summary(title: str, figures: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False)
    for key in (
        "events",
        "late_events",
        "dead_letters",
        "skew_mismatches",
        "seconds",
        "events_per_s",
    ):
        if key in figures:
            table.add_row(
                key, f"{figures[key]:,}" if isinstance(figures[key], int) else f"{figures[key]:.1f}"
            )
    for entity, n in figures.get("redis_entities", {}).items():
        table.add_row(f"redis {entity} entities", f"{n:,}")
    console.print(table)


@features_app.command("run")
def features_run(
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Bytewax worker threads (one interpreter lock: 2 ran at 0.57x of 1 here).",
        ),
    ] = 1,
    until_end: _UntilEnd = False,
    recovery: Annotated[bool, typer.Option(help="Snapshot state; resume where it stopped.")] = True,
    merge_tolerance: Annotated[
        str | None,
        typer.Option(
            "--merge-tolerance",
            help="Event time the other partitions may run ahead of one with nothing buffered "
            "that is not at its end [default: 1s tailing, 0s with --until-end].",
        ),
    ] = None,
    json_out: _Json = None,
) -> None:
    """Compute features from the transactions topic (tails forever unless --until-end)."""
    tolerance_ms = None
    if merge_tolerance is not None:
        from skewless.commands.offline_data import parse_duration

        tolerance = parse_duration(merge_tolerance, option="--merge-tolerance")
        tolerance_ms = tolerance // timedelta(milliseconds=1)
    settings, endpoints = _context()
    config = wiring.feature_store_config(settings, endpoints)
    flow = build_feature_flow(
        config,
        KafkaTransactions(
            kafka_config(settings, endpoints),
            settings.topics.transactions,
            bounded=until_end,
            tolerance_ms=tolerance_ms,
        ),
        dead_letters=wiring.dead_letter_target(settings, endpoints),
        sink_partitions=workers,
    )
    started = time.perf_counter()
    run_dataflow(
        flow,
        workers=workers,
        recovery_dir=wiring.recovery_dir(settings, "features") if recovery else None,
    )
    figures = summary(settings, endpoints)
    figures["seconds"] = time.perf_counter() - started
    _print_summary("feature pipeline", figures)
    write_json(json_out, figures)


@features_app.command("backfill")
def features_backfill(
    source: Annotated[
        str, typer.Option(help="Replay from the raw Delta table ('delta') or the topic ('topic').")
    ] = "delta",
    json_out: _Json = None,
) -> None:
    """Rebuild Redis and the Delta features table by replaying history through the same flow."""
    if source not in ("delta", "topic"):
        msg = f"--source: expected 'delta' or 'topic', got {source!r}"
        raise SettingsError(msg)
    mode: Literal["delta", "topic"] = "delta" if source == "delta" else "topic"
    settings, endpoints = _context()
    root = settings.delta_root
    features_uri = delta_tables.table_uri(root, delta_tables.FEATURES)
    if "://" in root and not root.startswith("file://"):
        msg = f"backfill rebuilds local tables only; {root!r} is remote (drop the table first)"
        raise SettingsError(msg)
    raw_source: DeltaTransactionsSource | KafkaTransactions
    if mode == "delta":
        raw_uri = delta_tables.table_uri(root, delta_tables.TRANSACTIONS)
        raw_source = DeltaTransactionsSource(DeltaTable(raw_uri))
    else:
        raw_source = KafkaTransactions(
            kafka_config(settings, endpoints), settings.topics.transactions, bounded=True
        )
    shutil.rmtree(features_uri, ignore_errors=True)
    client = redis.Redis.from_url(wiring.redis_url(settings, endpoints))
    fs = wiring.feature_set()
    for key in client.scan_iter(match=f"{wiring.REDIS_PREFIX}:{fs.name}:*", count=5000):
        client.unlink(key)
    base = wiring.feature_store_config(settings, endpoints, app_id="skewless-backfill")
    config = replace(base, kafka_config=None, features_topic=None, write_raw=mode == "topic")
    started = time.perf_counter()
    run_dataflow(build_feature_flow(config, raw_source, dead_letters=None))
    figures = summary(settings, endpoints)
    figures["seconds"] = time.perf_counter() - started
    _print_summary(f"backfill from {mode}", figures)
    write_json(json_out, figures)


@labels_app.command("run")
def labels_run(
    until_end: _UntilEnd = False,
    recovery: Annotated[bool, typer.Option(help="Snapshot state; resume where it stopped.")] = True,
) -> None:
    """Append chargeback labels from the labels topic to the Delta labels table."""
    settings, endpoints = _context()
    flow = build_labels_flow(
        kafka_source(kafka_config(settings, endpoints), settings.topics.labels, bounded=until_end),
        delta_root=settings.delta_root,
        storage_options=settings.delta_storage_options or None,
        dead_letters=wiring.dead_letter_target(settings, endpoints),
        schema_registry=wiring.schema_registry(settings),
        commit_interval=timedelta(seconds=settings.delta_commit_seconds),
    )
    run_dataflow(flow, recovery_dir=wiring.recovery_dir(settings, "labels") if recovery else None)
    counts = delta_counts(settings.delta_root, settings.delta_storage_options or None)
    console.print(f"labels in Delta: {counts.get('labels', 0):,}")


@audit_app.command("skew")
def audit_skew_command(
    sample: Annotated[
        int | None, typer.Option(min=1, help="Check only N entities per view.")
    ] = None,
    json_out: _Json = None,
) -> None:
    """Compare every online vector with its newest offline row, value by value."""
    settings, endpoints = _context()
    client = redis.Redis.from_url(wiring.redis_url(settings, endpoints))
    report = audit_skew(
        client,
        wiring.feature_set(),
        prefix=wiring.REDIS_PREFIX,
        delta_root=settings.delta_root,
        storage_options=settings.delta_storage_options or None,
        sample=sample,
    )
    pending = (
        f", {report.pending:,} pending (online newer than Delta's last commit)"
        if report.pending
        else ""
    )
    console.print(
        f"skew audit: {report.entities:,} entities, {report.values:,} values, "
        f"[{'green' if report.ok else 'red'}]{len(report.mismatches)} mismatches[/]{pending}"
    )
    for m in report.mismatches[:20]:
        console.print(
            f"  {m.entity} {m.entity_id} {m.field}: online={m.online!r} offline={m.offline!r}"
        )
    write_json(
        json_out,
        {
            "entities": report.entities,
            "values": report.values,
            "skew_mismatches": len(report.mismatches),
            "pending": report.pending,
        },
    )
    if not report.ok:
        raise typer.Exit(1)


def compact(
    retention_hours: Annotated[
        int, typer.Option(min=0, help="Vacuum files unreferenced for this long (default 7 days).")
    ] = 168,
    json_out: _Json = None,
) -> None:
    """Compact small files, checkpoint and vacuum every skewless Delta table."""
    settings = load_settings()
    results = []
    for name in (delta_tables.TRANSACTIONS, delta_tables.FEATURES, delta_tables.LABELS):
        result = compact_table(
            delta_tables.table_uri(settings.delta_root, name),
            retention=timedelta(hours=retention_hours),
            storage_options=settings.delta_storage_options or None,
        )
        if result is None:
            continue
        results.append(result.__dict__)
        console.print(
            f"{name}: {result.files_before} → {result.files_after} files, "
            f"{result.vacuumed} vacuumed, version {result.version}"
        )
    write_json(json_out, {"tables": results})


def register(app: typer.Typer) -> None:
    app.add_typer(features_app, name="features")
    app.add_typer(labels_app, name="labels")
    app.add_typer(audit_app, name="audit")
    app.command("compact")(compact)
