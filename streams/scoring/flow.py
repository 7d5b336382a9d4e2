"""The scoring dataflow: features topic → micro-batched ONNX scoring → predictions + drift.

Steps (ids from the feature set's name, stable: they key the recovery state)::

    <fs>_score_source ─► <fs>_score (flat_map_batch: decode + one ORT call per variant)
        ─► <fs>_score_split ─► predictions ─► <fs>_predictions (PredictionSink)
        └► <fs>_score_split_drift ─► <fs>_drift (keyed by model:version, stateful)
                                        ─► <fs>_drift_out (DriftSink)
                                  └► <fs>_score_dead_letter (DeadLetterSink)

The whole Kafka source batch (up to the source's `batch_size` records, gathered with the
source's short consume timeout) reaches the score step as one list, so it is scored in
one onnxruntime call per variant by the `ModelSet` current at that batch.

The drift step is keyed by ``<model name>:<version>``; its event-time watermark waits for
every partition of a Kafka source (`source_partitions`), see `serving.drift`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard, cast

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import FixedPartitionedSource, Source

from schemas.codec import AvroCodec
from schemas.contracts import registry_client
from schemas.features import FeatureSet, feature_vector_schema
from schemas.records import DeadLetter
from serving.drift import DriftConfig, DriftMetric
from serving.predictions import Prediction
from serving.routing import ModelSet
from streams.scoring.drift_step import DriftLogic
from streams.scoring.metrics import ScoringMetrics
from streams.scoring.microbatch import BatchScorer, DriftBatch, ScoredItem
from streams.scoring.sinks import DriftSink, PredictionSink
from streams.sinks.dead_letter import DeadLetterTarget, output_dead_letters

__all__ = ["ScoringConfig", "build_scoring_flow", "scoring_step_ids", "source_partitions"]


@dataclass(frozen=True)
class ScoringConfig:
    """Where a scoring worker writes and how it measures drift."""

    feature_set: FeatureSet
    client_config: Mapping[str, str]
    predictions_topic: str
    drift_topic: str | None
    drift: DriftConfig = field(default_factory=DriftConfig)
    sink_partitions: int = 1
    schema_registry: Mapping[str, str] | None = None  # {"url": ...}: Confluent framing


def scoring_step_ids(name: str) -> dict[str, str]:
    """The stable step ids of the scoring dataflow of feature set `name`."""
    return {
        "source": f"{name}_score_source",
        "score": f"{name}_score",
        "split": f"{name}_score_split",
        "predictions_key": f"{name}_predictions_key",
        "predictions": f"{name}_predictions",
        "split_drift": f"{name}_score_split_drift",
        "drift_key": f"{name}_drift_key",
        "drift": f"{name}_drift",
        "drift_out": f"{name}_drift_out",
        "dead_letter": f"{name}_score_dead_letter",
    }


def source_partitions(source: Source[Any]) -> tuple[int, ...]:
    """The Kafka partition numbers of a partitioned source (parts named ``<n>-<topic>``)."""
    if not isinstance(source, FixedPartitionedSource):
        return ()
    heads = (part.split("-", 1)[0] for part in source.list_parts())
    return tuple(sorted(int(head) for head in heads if head.isdigit()))


def _is_prediction(item: ScoredItem) -> TypeGuard[Prediction]:
    return isinstance(item, Prediction)


def _is_drift(item: DriftBatch | DeadLetter) -> TypeGuard[DriftBatch]:
    return isinstance(item, DriftBatch)


def build_scoring_flow(
    config: ScoringConfig,
    source: Source[Any],
    *,
    current: Callable[[], ModelSet],
    dead_letters: DeadLetterTarget | None,
    metrics: ScoringMetrics | None = None,
) -> Dataflow:
    """The scoring dataflow over `source` (Kafka messages of the features topic).

    `current` returns the serving model set (e.g. `RegistryWatcher.current`); it is called
    once per micro-batch.
    """
    fs = config.feature_set
    ids = scoring_step_ids(fs.name)
    metrics = metrics or ScoringMetrics()
    codec = AvroCodec(feature_vector_schema(fs), registry=registry_client(config.schema_registry))
    scorer = BatchScorer(fs, current, step=ids["score"], metrics=metrics, codec=codec)

    flow = Dataflow(f"{fs.name}-scoring")
    raw = op.input(ids["source"], flow, source)
    scored = op.flat_map_batch(ids["score"], raw, scorer)
    split = op.branch(ids["split"], scored, _is_prediction)
    predictions: Stream[tuple[str, Prediction]] = op.map(
        ids["predictions_key"], split.trues, lambda p: (p.card_id, p)
    )
    op.output(
        ids["predictions"],
        predictions,
        PredictionSink(
            config.client_config,
            config.predictions_topic,
            metrics=metrics,
            partitions=config.sink_partitions,
            schema_registry=config.schema_registry,
        ),
    )
    rest = cast("Stream[DriftBatch | DeadLetter]", split.falses)
    others = op.branch(ids["split_drift"], rest, _is_drift)
    if config.drift_topic is not None:
        keyed: Stream[tuple[str, DriftBatch]] = op.map(
            ids["drift_key"], others.trues, lambda b: (b.key, b)
        )
        drift_config, partitions = config.drift, source_partitions(source)

        def builder(resume: Any) -> DriftLogic:
            return DriftLogic(drift_config, resume, partitions=partitions)

        windows: Stream[tuple[str, DriftMetric]] = op.stateful_batch(ids["drift"], keyed, builder)
        op.output(
            ids["drift_out"],
            windows,
            DriftSink(
                config.client_config,
                config.drift_topic,
                metrics=metrics,
                schema_registry=config.schema_registry,
            ),
        )
    if dead_letters is not None:
        output_dead_letters(
            ids["dead_letter"], cast("Stream[DeadLetter]", others.falses), dead_letters
        )
    return flow
