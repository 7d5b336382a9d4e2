"""The demo's bounded steps: produce history, compute features and labels, train, score."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from offline.pipeline import PipelineReport, run_pipeline
from serving.drift import DriftConfig
from serving.model_store import ModelStore
from serving.watcher import RegistryWatcher
from skewless import wiring
from skewless.demo.context import DemoContext
from streams.features.flow import build_feature_flow
from streams.generator import Drift
from streams.generator.produce import produce
from streams.labels import build_labels_flow
from streams.runner import run_dataflow
from streams.scoring.flow import ScoringConfig, build_scoring_flow
from streams.scoring.metrics import ScoringMetrics
from streams.sources import KafkaTransactions, kafka_source

__all__ = [
    "DRIFT",
    "MATURITY",
    "compute_features",
    "ingest_labels",
    "produce_history",
    "score_backlog",
    "train",
]

MATURITY = timedelta(days=7)
# One simulated day (~5,000 events): a window must span the daily rhythm, or time-of-day
# features "drift" against the all-day training reference in every window.
DRIFT = DriftConfig(window_ms=86_400_000, lateness_ms=0, warn=0.1, alert=0.25, min_count=2_000)


def produce_history(
    ctx: DemoContext, events: int, *, drift_at: float | None = None
) -> dict[str, Any]:
    """Continue the simulated world by `events` transactions (with drift from a point)."""
    drift = None
    if drift_at is not None:
        drift = Drift(at_index=ctx.world.next_index + round(events * drift_at), kind="amount")
    report = produce(
        ctx.world.stream(events, drift=drift),
        client_config=ctx.kafka,
        transactions_topic=ctx.settings.topics.transactions,
        labels_topic=ctx.settings.topics.labels,
        schema_registry=wiring.schema_registry(ctx.settings),
    )
    return report.to_json()


def compute_features(ctx: DemoContext) -> None:
    """The feature dataflow up to the topic's end (resuming from its recovery state)."""
    flow = build_feature_flow(
        wiring.feature_store_config(ctx.settings, ctx.endpoints),
        KafkaTransactions(ctx.kafka, ctx.settings.topics.transactions, bounded=True),
        dead_letters=wiring.dead_letter_target(ctx.settings, ctx.endpoints),
    )
    run_dataflow(flow, recovery_dir=wiring.recovery_dir(ctx.settings, "features"))


def ingest_labels(ctx: DemoContext) -> None:
    flow = build_labels_flow(
        kafka_source(ctx.kafka, ctx.settings.topics.labels, bounded=True),
        delta_root=ctx.settings.delta_root,
        dead_letters=wiring.dead_letter_target(ctx.settings, ctx.endpoints),
        schema_registry=wiring.schema_registry(ctx.settings),
    )
    run_dataflow(flow, recovery_dir=wiring.recovery_dir(ctx.settings, "labels"))


def train(ctx: DemoContext) -> PipelineReport:
    """Validate, train, gate and register off the Delta tables as they are now."""
    return run_pipeline(
        ctx.settings.delta_root,
        tracking_uri=ctx.settings.tracking_uri,
        artifact_root=ctx.home / "mlartifacts",
        maturity=MATURITY,
    )


def watcher(ctx: DemoContext) -> RegistryWatcher:
    return RegistryWatcher(ModelStore(ctx.settings.tracking_uri), poll_interval_s=1.0)


def score_backlog(ctx: DemoContext) -> dict[str, float]:
    """Score every feature vector so far: predictions and drift metrics to their topics."""
    models = watcher(ctx)
    models.poll_once()
    metrics = ScoringMetrics()
    config = ScoringConfig(
        feature_set=wiring.feature_set(),
        client_config=ctx.kafka,
        predictions_topic=ctx.settings.topics.predictions,
        drift_topic=ctx.settings.topics.drift,
        drift=DRIFT,
        schema_registry=wiring.schema_registry(ctx.settings),
    )
    flow = build_scoring_flow(
        config,
        kafka_source(ctx.kafka, ctx.settings.topics.features, bounded=True),
        current=models.current,
        dead_letters=wiring.dead_letter_target(ctx.settings, ctx.endpoints),
        metrics=metrics,
    )
    started = time.perf_counter()
    run_dataflow(flow, recovery_dir=wiring.recovery_dir(ctx.settings, "scoring"))
    seconds = time.perf_counter() - started
    events = metrics.sample("skewless_scoring_events_total", {}) or 0.0
    return {"events": events, "seconds": seconds, "events_per_s": events / seconds}
