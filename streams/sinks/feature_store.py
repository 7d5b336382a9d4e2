"""The one sink of the feature dataflow: the same vectors into Redis, Kafka and Delta.

Per batch: replays the Delta table already holds are dropped; the rest go to the `features`
topic at once (first: the scoring workers wait on it), to Redis at once (compare-and-set,
sent while the next batch computes), and into Delta buffers. At each epoch snapshot (and
when a buffer is large) the Redis write in flight is awaited and the Kafka producer
flushed, then the Delta buffers are cut and committed in the background
(`delta_commits`) — so whatever Delta holds was also acknowledged by Redis and Kafka,
whatever a snapshot covers is in Delta or in the snapshot, and whatever it does not cover
will be replayed into all three stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from schemas.codec import AvroCodec
from schemas.contracts import registry_client
from schemas.features import FeatureSet, FeatureVector, feature_vector_schema
from schemas.features.vector_avro import FeatureVectorWriter
from schemas.records import Transaction
from streams import delta_tables
from streams.features.decode import Decoded
from streams.sinks.commit_interval import IntervalCommits
from streams.sinks.delta_appender import RETENTION, DeltaAppender
from streams.sinks.delta_commits import BackgroundCommits
from streams.sinks.kafka_outbox import KafkaOutbox
from streams.sinks.online import RedisOnlineWriter

__all__ = ["FeatureStoreConfig", "FeatureStorePartition", "FeatureStoreSink", "StoreItem"]

StoreItem = tuple[FeatureVector, Decoded[Transaction]]


@dataclass(frozen=True)
class FeatureStoreConfig:
    """Where the feature dataflow writes. A `None` store is not written."""

    feature_set: FeatureSet
    app_id: str
    redis_url: str | None
    redis_prefix: str
    delta_root: str | None
    delta_storage_options: dict[str, str] | None
    kafka_config: dict[str, str] | None
    features_topic: str | None
    write_raw: bool = True
    commit_rows: int = 50_000
    schema_registry: dict[str, str] | None = None  # {"url": ...}: Confluent framing
    retention: timedelta = RETENTION  # of replaced Delta files and log versions
    # Snapshots between Delta commits only log the rows (with recovery; without, they keep
    # them buffered): 0 commits at every epoch. `skewless features run` commits every 10 s
    # (README).
    commit_interval: timedelta = timedelta(0)


class FeatureStorePartition(StatefulSinkPartition[StoreItem, dict[str, Any]]):
    """One sink partition's writers; its snapshot is the Delta replay point per table.

    Committed every `config.commit_interval` (`streams.sinks.commit_interval`).
    """

    def __init__(
        self,
        config: FeatureStoreConfig,
        part: str,
        resume: dict[str, Any] | None,
    ):
        fs = config.feature_set
        self._fs = fs
        self._online = (
            RedisOnlineWriter(
                redis.Redis.from_url(config.redis_url), fs, prefix=config.redis_prefix
            )
            if config.redis_url
            else None
        )
        self._outbox = (
            KafkaOutbox(config.kafka_config, config.features_topic)
            if config.kafka_config is not None and config.features_topic
            else None
        )
        self._codec = AvroCodec(
            feature_vector_schema(fs),
            registry=registry_client(config.schema_registry),
            topic=config.features_topic,
        )
        self._writer = FeatureVectorWriter(fs)
        self._feature_rows = delta_tables.feature_rows(fs)
        self._features: DeltaAppender | None = None
        self._raw: DeltaAppender | None = None
        resume = resume or {}
        if config.delta_root is not None:
            self._features = DeltaAppender(
                delta_tables.table_uri(config.delta_root, delta_tables.FEATURES),
                delta_tables.features_schema(fs),
                app_id=f"{config.app_id}.{part}",
                partition_by=["event_date"],
                resume_version=resume.get("features"),
                storage_options=config.delta_storage_options,
                retention=config.retention,
            )
            if config.write_raw:
                self._raw = DeltaAppender(
                    delta_tables.table_uri(config.delta_root, delta_tables.TRANSACTIONS),
                    delta_tables.transactions_schema(),
                    app_id=f"{config.app_id}.{part}",
                    partition_by=["event_date"],
                    resume_version=resume.get("transactions"),
                    storage_options=config.delta_storage_options,
                    retention=config.retention,
                )
        appenders = {"features": self._features, "transactions": self._raw}
        self._delta = BackgroundCommits(
            {k: a for k, a in appenders.items() if a is not None},
            log_key=f"{config.app_id}.{part}",
        )
        self._delta.restore(resume)
        self._commits = IntervalCommits(
            self._delta,
            config.commit_interval if self._features is not None else timedelta(0),
            full_rows=config.commit_rows,
            acknowledge=self._acknowledge,
        )

    def write_batch(self, items: list[StoreItem]) -> None:
        features = self._features
        if features is not None:
            items = [
                it for it in items if features.accepts(it[0].source_partition, it[0].source_offset)
            ]
        if not items:
            return
        vectors = [v for v, _ in items]
        if self._outbox is not None:
            frame, body = self._codec.frame, self._writer.body
            for vector in vectors:
                self._outbox.produce(
                    frame(body(vector)),
                    key=vector.keys[0].encode(),
                    headers=[("event_id", vector.event_id.encode())],
                )
        if self._online is not None:
            self._online.submit(vectors)
        if features is not None:
            features.add_rows(vectors, self._feature_rows)
            raw = self._raw
            if raw is not None:
                rows = [
                    (d.record, d.partition, d.offset, d.timestamp)
                    for _, d in items
                    if raw.accepts(d.partition, d.offset)
                ]
                raw.add_rows(rows, delta_tables.TRANSACTION_ROWS)
            self._commits.added(features.rows_buffered)

    def _acknowledge(self) -> None:
        """Wait until Redis and Kafka hold everything written: Delta never holds more."""
        if self._online is not None:
            self._online.drain()
        if self._outbox is not None:
            self._outbox.flush()

    def snapshot(self) -> dict[str, Any]:
        return self._commits.snapshot()

    def close(self) -> None:
        try:
            self._commits.close()
        finally:
            if self._online is not None:
                self._online.close()


class FeatureStoreSink(FixedPartitionedSink[StoreItem, dict[str, Any]]):
    """`partitions` sink partitions, routed by entity key; each writes all three stores.

    Each commits every `config.commit_interval`; tailing with several, the flow needs a
    `streams.heartbeat.Heartbeat` (the threads without the source run no idle callbacks).
    """

    def __init__(self, config: FeatureStoreConfig, *, partitions: int = 1) -> None:
        self._config = config
        self._parts = [f"stores-{i}" for i in range(partitions)]

    def list_parts(self) -> list[str]:
        return self._parts

    def build_part(
        self, step_id: str, for_part: str, resume_state: dict[str, Any] | None
    ) -> FeatureStorePartition:
        return FeatureStorePartition(self._config, for_part, resume_state)
