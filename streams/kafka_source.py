"""The Kafka source of every dataflow: one assigned consumer per partition, `SourceRecord`s out.

Bytewax's own `KafkaSource` wraps each message in a `KafkaSourceMessage` dataclass that the
flows then convert to `SourceRecord`; building both cost ~3 µs per event, about 3% of the
feature worker. This source builds the `SourceRecord` straight from the consumer's message
and otherwise keeps Bytewax's contract, so recovery state carries over: partitions are
named `"<partition>-<topic>"`, a partition's snapshot is the next offset to read, and a
consumer is `assign()`ed (no group rebalance) at the resume offset or the beginning.

Bounded, a partition ends at the end of the log as of reading it (librdkafka's partition
EOF); live, it tails forever. Either way it ends at its next poll once the dataflow is
asked to stop (`streams.stop`). Consumer errors other than EOF stop the flow with the
partition named.
"""

from __future__ import annotations

from collections.abc import Mapping

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from streams import idle, stop
from streams.errors import SourceError
from streams.features.decode import SourceRecord
from streams.fetch_watch import StallWatch
from streams.kafka_assign import assign

__all__ = ["KafkaSource", "assigned_consumer", "consumer_config", "list_partitions"]

# How long a partition's consumer waits for its leader before assigning (`kafka_assign`).
_CONNECT_S = 10.0
# Options only a consumer understands: the admin client that lists partitions warns on them.
_CONSUMER_ONLY = frozenset({"fetch.wait.max.ms", "fetch.min.bytes", "enable.partition.eof"})


class _KafkaPartition(StatefulSourcePartition[SourceRecord, int]):
    """One Kafka partition: batches of up to `batch_size` records per call."""

    def __init__(
        self, config: Mapping[str, str], topic: str, partition: int, offset: int, batch_size: int
    ) -> None:
        self._consumer = assigned_consumer(config, topic, partition, offset)
        self._watch = StallWatch(self._consumer, topic, partition, offset)
        self._topic, self._partition = topic, partition
        self._offset = offset
        self._batch = batch_size
        self._eof = False

    def next_batch(self) -> list[SourceRecord]:
        if self._eof or stop.requested():
            raise StopIteration
        batch: list[SourceRecord] = []
        for msg in self._consumer.consume(self._batch, 0.001):
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._eof = True  # end after this batch, so nothing read is held back
                    break
                text = f"error consuming Kafka topic {self._topic!r} [{self._partition}]: {error}"
                raise SourceError(text)
            _, timestamp = msg.timestamp()
            batch.append(
                SourceRecord(
                    self._topic,
                    self._partition,
                    msg.offset(),  # type: ignore[arg-type]
                    timestamp,
                    msg.key(),
                    msg.value(),
                )
            )
        if batch:
            self._offset = batch[-1].offset + 1
            self._watch.got(self._offset)
        elif not self._eof:
            self._watch.idle()
            idle.run()  # a sink's commit that is due (`streams.idle`)
        return batch

    def snapshot(self) -> int:
        return self._offset

    def close(self) -> None:
        self._consumer.close()


class KafkaSource(FixedPartitionedSource[SourceRecord, int]):
    """Every partition of `topic`, from the beginning or from the recovery snapshot.

    `batch_size` bounds one poll of a partition (`streams.sources.kafka_source` picks it).
    """

    def __init__(
        self, config: Mapping[str, str], topic: str, *, tail: bool, batch_size: int
    ) -> None:
        self._config = dict(config)
        self._topic = topic
        self._tail = tail
        self._batch = batch_size

    def list_parts(self) -> list[str]:
        return [f"{p}-{self._topic}" for p in list_partitions(self._config, self._topic)]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _KafkaPartition:
        index, topic = for_part.split("-", 1)
        if topic != self._topic:
            msg = (
                f"step {step_id!r}: recovery state is for Kafka topic {topic!r}, "
                f"this source reads {self._topic!r}"
            )
            raise SourceError(msg)
        config = consumer_config(self._config, eof=not self._tail)
        offset = OFFSET_BEGINNING if resume_state is None else resume_state
        return _KafkaPartition(config, topic, int(index), offset, self._batch)


def list_partitions(config: Mapping[str, str], topic: str) -> list[int]:
    """The partition numbers of `topic`, sorted (a `SourceError` if it cannot be listed)."""
    admin = AdminClient({k: v for k, v in config.items() if k not in _CONSUMER_ONLY})
    try:
        metadata = admin.list_topics(topic, timeout=30).topics.get(topic)
    except KafkaException as exc:
        msg = f"cannot list the partitions of Kafka topic {topic!r}: {exc.args[0].str()}"
        raise SourceError(msg) from exc
    if metadata is None or metadata.error is not None:
        why = "it does not exist" if metadata is None else str(metadata.error)
        msg = f"cannot list the partitions of Kafka topic {topic!r}: {why}"
        raise SourceError(msg)
    return sorted(metadata.partitions)


def consumer_config(config: Mapping[str, str], *, eof: bool) -> dict[str, str]:
    """A source consumer's options: assigned, never committing, partition EOF if `eof`."""
    return {
        "fetch.wait.max.ms": "10",  # unless configured: an idle partition answers fast
        **config,
        "group.id": "skewless-assigned",  # never joins: partitions are assign()ed
        "enable.auto.commit": "false",
        "enable.partition.eof": "true" if eof else "false",
    }


def assigned_consumer(
    config: Mapping[str, str], topic: str, partition: int, offset: int
) -> Consumer:
    """A consumer of one partition from `offset`, assigned (`kafka_assign`)."""
    consumer = Consumer(dict(config))
    assign(consumer, [TopicPartition(topic, partition, offset)], timeout_s=_CONNECT_S)
    return consumer
