"""Follow the drift topic and decide when an alert should trigger a retrain.

`follow_drift` reads `DriftMetric` records from every partition (with `assign()`, no
consumer-group wait), from the beginning or from the end as of starting. Undecodable
records are skipped and counted (`DriftFollower.skipped`), never fatal.

`RetrainDebouncer` turns a stream of alerts into at most one retrain per alerting model
version, and at most one per `cooldown_s` of wall clock: a drift lasting many windows, or
alerting on many features at once, retrains once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, TopicPartition

from schemas.contracts import codec_for, registry_client
from schemas.errors import ContractError
from serving.drift import DriftMetric
from streams.errors import StreamsError
from streams.kafka_assign import assign

__all__ = ["DriftFollower", "RetrainDebouncer"]


@dataclass
class RetrainDebouncer:
    """Says yes to the first alert of each model version, then waits out `cooldown_s`."""

    cooldown_s: float = 3600.0
    clock: Callable[[], float] = time.monotonic
    _done: set[tuple[str, str]] = field(default_factory=set)
    _last: float | None = None

    def should_retrain(self, metric: DriftMetric) -> bool:
        """True when `metric` is an alert that should start a retrain now (and records it)."""
        if metric.level != "alert":
            return False
        key = (metric.model_name, metric.model_version)
        now = self.clock()
        if key in self._done or (self._last is not None and now - self._last < self.cooldown_s):
            return False
        self._done.add(key)
        self._last = now
        return True


class DriftFollower:
    """Iterate the drift topic's records as `DriftMetric`s (see the module docstring)."""

    def __init__(
        self,
        client_config: Mapping[str, str],
        topic: str,
        *,
        from_beginning: bool = False,
        until_end: bool = False,
        timeout_s: float = 30.0,
        schema_registry: Mapping[str, str] | None = None,
    ) -> None:
        self.topic = topic
        self.skipped = 0
        self.read = 0
        self._until_end = until_end
        self._codec = codec_for("DriftMetric", registry=registry_client(schema_registry))
        self._consumer = Consumer(
            {
                **client_config,
                "group.id": f"skewless-retrain-{uuid.uuid4().hex}",
                "enable.partition.eof": until_end,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest" if from_beginning else "latest",
            }
        )
        metadata = self._consumer.list_topics(topic, timeout=timeout_s).topics[topic]
        if metadata.error is not None:
            self._consumer.close()
            msg = f"drift topic {topic!r} is not readable: {metadata.error}"
            raise StreamsError(msg)
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        self._partitions = sorted(metadata.partitions)
        assign(
            self._consumer,
            [TopicPartition(topic, p, start) for p in self._partitions],
            timeout_s=timeout_s,
        )

    def __iter__(self) -> Iterator[DriftMetric]:
        pending = set(self._partitions)
        while not self._until_end or pending:
            for message in self._consumer.consume(500, 0.2):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(message.partition())
                        continue
                    msg = f"drift topic {self.topic!r}: consume error {error}"
                    raise StreamsError(msg)
                try:
                    metric = DriftMetric.from_avro(self._codec.decode(message.value() or b""))
                except (ContractError, KeyError, ValueError, TypeError):
                    self.skipped += 1
                    continue
                self.read += 1
                yield metric

    def close(self) -> None:
        self._consumer.close()
