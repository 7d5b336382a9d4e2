"""`skewless demo`: the whole story on embedded services, step by step, with a summary.

The demo keeps its own state and data under `.skewless/demo` (wiped at the start), starts
whatever services are not configured, and stops what it started when it ends.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from skewless import wiring
from skewless.commands.features import summary
from skewless.endpoints import Endpoints, kafka_config
from skewless.output import console, write_json
from skewless.services import embedded_services
from skewless.settings import Settings, load_settings
from streams.features.flow import build_feature_flow
from streams.generator import GeneratorState, World, WorldConfig
from streams.generator.produce import produce
from streams.labels import build_labels_flow
from streams.runner import run_dataflow
from streams.sources import kafka_source

__all__ = ["demo_command"]

T = TypeVar("T")

# A month of simulated history at a laptop-friendly size: labels mature within it.
DEMO_WORLD = WorldConfig(seed=7, events_per_day=5_000, cards=3_000, merchants=600)


def _step(title: str, action: Callable[[], T], timings: dict[str, float]) -> T:
    started = time.perf_counter()
    with console.status(f"[bold]{title}[/] …"):
        result = action()
    timings[title] = round(time.perf_counter() - started, 2)
    console.print(f"[green]✓[/] {title} [dim]({timings[title]:.1f}s)[/]")
    return result


def _produce(settings: Settings, endpoints: Endpoints, events: int) -> dict[str, Any]:
    world = World(GeneratorState(config=DEMO_WORLD))
    report = produce(
        world.stream(events),
        client_config=kafka_config(settings, endpoints),
        transactions_topic=settings.topics.transactions,
        labels_topic=settings.topics.labels,
    )
    return report.to_json()


def _features(settings: Settings, endpoints: Endpoints) -> None:
    flow = build_feature_flow(
        wiring.feature_store_config(settings, endpoints),
        kafka_source(kafka_config(settings, endpoints), settings.topics.transactions, bounded=True),
        dead_letters=wiring.dead_letter_target(settings, endpoints),
    )
    run_dataflow(flow, recovery_dir=wiring.recovery_dir(settings, "features"))


def _labels(settings: Settings, endpoints: Endpoints) -> None:
    flow = build_labels_flow(
        kafka_source(kafka_config(settings, endpoints), settings.topics.labels, bounded=True),
        delta_root=settings.delta_root,
        dead_letters=wiring.dead_letter_target(settings, endpoints),
    )
    run_dataflow(flow, recovery_dir=wiring.recovery_dir(settings, "labels"))


def _summary_table(result: dict[str, Any]) -> Table:
    table = Table(title="skewless demo", show_header=False)
    table.add_row("events produced", f"{result['produced']['events']:,}")
    table.add_row("labels produced", f"{result['produced']['labels']:,}")
    table.add_row("feature vectors in Delta", f"{result['events']:,}")
    for entity, n in result["redis_entities"].items():
        table.add_row(f"{entity} entities in Redis", f"{n:,}")
    table.add_row("late events", f"{result['late_events']:,}")
    table.add_row("dead letters", f"{result['dead_letters']:,}")
    table.add_row("labels in Delta", f"{result['delta'].get('labels', 0):,}")
    colour = "green" if result["skew_mismatches"] == 0 else "red"
    table.add_row("skew mismatches", f"[{colour}]{result['skew_mismatches']}[/]")
    return table


def demo_command(
    events: Annotated[int, typer.Option(min=1_000, help="Transactions to simulate.")] = 150_000,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the summary as JSON here.")
    ] = None,
) -> None:
    """Run the whole story on embedded services and print a summary."""
    base = load_settings()
    home = base.state_dir / "demo"
    shutil.rmtree(home, ignore_errors=True)
    settings = load_settings(state_dir=home, data_dir=home / "data")
    timings: dict[str, float] = {}
    with embedded_services(settings) as endpoints:
        produced = _step(
            f"produce {events:,} transactions",
            lambda: _produce(settings, endpoints, events),
            timings,
        )
        _step(
            "features into Redis, Delta and Kafka", lambda: _features(settings, endpoints), timings
        )
        _step("labels into Delta", lambda: _labels(settings, endpoints), timings)
        result = _step("count and audit skew", lambda: summary(settings, endpoints), timings)
    result["produced"] = produced
    result["timings_s"] = timings
    console.print(_summary_table(result))
    write_json(json_out, result)
    if result["skew_mismatches"]:
        raise typer.Exit(1)
