"""`skewless produce`: the synthetic fraud world onto the transactions and labels topics.

The simulated clock continues from the previous run (state in `<state_dir>/generator.json`)
unless `--reset`; `--live` stamps events with the wall clock instead and leaves the
state alone.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from skewless import wiring
from skewless.endpoints import resolve_address
from skewless.output import console, write_json
from skewless.services import topic_specs
from skewless.settings import Settings, load_settings
from streams.generator import (
    MAX_FRAUD_RATE,
    Drift,
    GeneratorError,
    GeneratorState,
    World,
    WorldConfig,
    load_state,
    save_state,
)
from streams.generator.produce import ProduceReport, produce
from streams.kafka_admin import create_topics

__all__ = ["STATE_FILE", "parse_drift_at", "register"]

STATE_FILE = "generator.json"
_DEFAULT_SEED = 7
_DEFAULT_FRAUD_RATE = 0.008


class DriftKindOption(StrEnum):
    AMOUNT = "amount"
    MERCHANT_MIX = "merchant-mix"


def parse_drift_at(value: str, *, events: int) -> int:
    """`--drift-at` as an offset into this run: a fraction like `0.5`, or a count like `5000`."""
    try:
        number = float(value) if any(c in value for c in ".eE") else int(value)
    except ValueError as exc:
        msg = f"--drift-at expects a fraction in [0, 1] (like 0.5) or an event count, got {value!r}"
        raise GeneratorError(msg) from exc
    if isinstance(number, float):
        if not 0.0 <= number <= 1.0:
            msg = f"--drift-at fraction must be within [0, 1], got {value!r}"
            raise GeneratorError(msg)
        return round(number * events)
    if not 0 <= number <= events:
        msg = f"--drift-at event count must be within [0, {events}] (--events), got {value!r}"
        raise GeneratorError(msg)
    return number


def _resume(
    path: Path, *, seed: int | None, fraud_rate: float | None, reset: bool
) -> GeneratorState:
    saved = None if reset else load_state(path)
    if saved is None:
        config = WorldConfig(
            seed=_DEFAULT_SEED if seed is None else seed,
            fraud_rate=_DEFAULT_FRAUD_RATE if fraud_rate is None else fraud_rate,
        )
        return GeneratorState(config=config)
    asked = {
        "--seed": (seed, saved.config.seed),
        "--fraud-rate": (fraud_rate, saved.config.fraud_rate),
    }
    for option, (wanted, had) in asked.items():
        if wanted is not None and wanted != had:
            msg = (
                f"{option} {wanted} differs from the history in {str(path)!r} "
                f"({option} {had}); continue without {option}, or start over with --reset"
            )
            raise GeneratorError(msg)
    return saved


def _produce(
    settings: Settings,
    world: World,
    *,
    events: int,
    drift: Drift | None,
    rate: float | None,
    live: bool,
) -> ProduceReport:
    client = settings.kafka_client_config(resolve_address(settings, "kafka"))
    topics = settings.topics
    wanted = {topics.transactions, topics.labels}
    create_topics(client, [spec for spec in topic_specs(settings) if spec.name in wanted])
    columns = (
        TextColumn("producing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("produce", total=events)
        return produce(
            world.stream(events, drift=drift),
            client_config=client,
            transactions_topic=topics.transactions,
            labels_topic=topics.labels,
            schema_registry=wiring.schema_registry(settings),
            rate=rate,
            live=live,
            on_progress=lambda done: progress.update(task, completed=done),
        )


def produce_command(
    events: Annotated[
        int, typer.Option("--events", min=1, help="Transactions to produce.")
    ] = 100_000,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate", min=0.001, help="Events/s (token bucket); default: as fast as possible."
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", min=0, help=f"World seed (new history: {_DEFAULT_SEED})."),
    ] = None,
    fraud_rate: Annotated[
        float | None,
        typer.Option(
            "--fraud-rate",
            min=0.0,
            max=MAX_FRAUD_RATE,
            help=f"Share of fraud transactions (new history: {_DEFAULT_FRAUD_RATE}).",
        ),
    ] = None,
    drift_at: Annotated[
        str | None,
        typer.Option("--drift-at", help="Inject drift from this point of the run: 0.5 or 50000."),
    ] = None,
    drift_kind: Annotated[
        DriftKindOption, typer.Option("--drift-kind", help="What drifts.")
    ] = DriftKindOption.AMOUNT,
    live: Annotated[
        bool, typer.Option("--live", help="Event time = wall clock at produce; no labels.")
    ] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the figures here.")
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Start a new history.")] = False,
) -> None:
    """Produce synthetic card transactions (and chargeback labels, days later) to Kafka."""
    settings = load_settings()
    path = settings.state_dir / STATE_FILE
    state = _resume(path, seed=seed, fraud_rate=fraud_rate, reset=reset or live)
    world = World(state)
    drift = None
    if drift_at is not None:
        offset = parse_drift_at(drift_at, events=events)
        drift = Drift(at_index=world.next_index + offset, kind=drift_kind.value)
    report = _produce(settings, world, events=events, drift=drift, rate=rate, live=live)
    if not live:
        save_state(path, world.state())
    console.print(
        f"produced {report.events:,} events ({report.fraud_events:,} fraud) and "
        f"{report.labels:,} labels in {report.seconds:.2f}s: {report.events_per_s:,.0f} events/s"
    )
    write_json(json_path, report.to_json())


def register(app: typer.Typer) -> None:
    """Attach `skewless produce`."""
    app.command("produce")(produce_command)
