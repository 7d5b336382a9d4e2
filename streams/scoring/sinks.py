"""Kafka sinks of the scoring dataflow: predictions and drift metrics.

Both reuse `KafkaOutbox` (idempotent producer): records are produced eagerly and flushed
at every snapshot, so outputs are at-least-once across restarts; consumers dedupe
predictions by the `event_id` header (and drift metrics by model, version, feature and
window). Each sink has `partitions` parts, routed by item key.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from schemas.contracts import SchemaName, codec_for, registry_client
from schemas.records_avro import PredictionWriter
from serving.drift import DriftMetric
from serving.predictions import Prediction
from streams.scoring.metrics import ScoringMetrics
from streams.sinks.kafka_outbox import KafkaOutbox

__all__ = ["DriftSink", "PredictionSink"]


class _OutboxPartition:
    """Encodes one record type onto one topic; flushed at every snapshot (at-least-once)."""

    def __init__(
        self,
        schema: SchemaName,
        config: Mapping[str, str],
        topic: str,
        metrics: ScoringMetrics,
        registry: Mapping[str, str] | None,
    ) -> None:
        self._outbox = KafkaOutbox(config, topic)
        self._codec = codec_for(schema, registry=registry_client(registry), topic=topic)
        self._encode = self._codec.encode
        self._metrics = metrics

    def snapshot(self) -> None:
        self._outbox.flush()

    def close(self) -> None:
        self._outbox.flush()


class _PredictionPartition(_OutboxPartition, StatefulSinkPartition[Prediction, None]):
    def __init__(
        self,
        config: Mapping[str, str],
        topic: str,
        metrics: ScoringMetrics,
        registry: Mapping[str, str] | None,
    ) -> None:
        super().__init__("Prediction", config, topic, metrics, registry)
        self._writer = PredictionWriter()  # bodies written directly, framed by the codec

    def write_batch(self, values: list[Prediction]) -> None:
        produce, frame, body = self._outbox.produce, self._codec.frame, self._writer.body
        served_sources: list[int] = []
        for p in values:
            produce(
                frame(body(p)),
                key=p.card_id.encode(),
                headers=[("event_id", p.event_id.encode())],
            )
            if p.served:
                served_sources.append(p.source_timestamp)
        now_ms = time.time_ns() / 1_000_000
        observe = self._metrics.latency_ms.observe
        for source_ms in served_sources:
            observe(now_ms - source_ms)
        counted: dict[str, int] = {}
        for p in values:
            counted[p.variant] = counted.get(p.variant, 0) + 1
        for variant, n in counted.items():
            self._metrics.predictions.labels(variant).inc(n)


class PredictionSink(FixedPartitionedSink[Prediction, None]):
    """`Prediction` records keyed by card id, with an `event_id` header."""

    def __init__(
        self,
        client_config: Mapping[str, str],
        topic: str,
        *,
        metrics: ScoringMetrics,
        partitions: int = 1,
        schema_registry: Mapping[str, str] | None = None,
    ) -> None:
        self._config = dict(client_config)
        self._topic = topic
        self._metrics = metrics
        self._parts = [f"predictions-{i}" for i in range(partitions)]
        self._registry = schema_registry

    def list_parts(self) -> list[str]:
        return self._parts

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _PredictionPartition:
        return _PredictionPartition(self._config, self._topic, self._metrics, self._registry)


class _DriftPartition(_OutboxPartition, StatefulSinkPartition[DriftMetric, None]):
    def write_batch(self, values: list[DriftMetric]) -> None:
        for m in values:
            self._outbox.produce(
                self._encode(m.to_avro()),
                key=f"{m.model_name}:{m.model_version}".encode(),
                headers=[("window", f"{m.window_start}/{m.window_end}".encode())],
            )
            self._metrics.drift_metrics.labels(m.level).inc()
        if any(m.level == "alert" for m in values):
            self._outbox.flush()  # alerts are acted on: do not let them linger


class DriftSink(FixedPartitionedSink[DriftMetric, None]):
    """`DriftMetric` records (alerts included, `level="alert"`) keyed by model:version."""

    def __init__(
        self,
        client_config: Mapping[str, str],
        topic: str,
        *,
        metrics: ScoringMetrics,
        schema_registry: Mapping[str, str] | None = None,
    ) -> None:
        self._config = dict(client_config)
        self._topic = topic
        self._metrics = metrics
        self._registry = schema_registry

    def list_parts(self) -> list[str]:
        return ["drift"]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _DriftPartition:
        return _DriftPartition(
            "DriftMetric", self._config, self._topic, self._metrics, self._registry
        )
