"""Every partition of a Kafka topic as one source partition, in event-time order across them.

The feature dataflow reads transactions through this source (see `streams.merge` for why
and for the rule). Each record is prepared here (the feature flow decodes it) because its
event time decides when it is handed out; `event_time` of a prepared record may be None
(a record that failed to decode: it goes out in its partition's order).

One Bytewax partition, named `"merged-<topic>"`, reads all of the topic's partitions with
one assigned consumer each; its snapshot is the next offset to hand out per Kafka
partition, so a restart re-reads what was buffered but not handed out. Under `--workers N`
one worker reads the topic and the keyed steps spread the work. Bounded, it ends when every
partition has reached the end of its log as of reading it; tailing, a partition at the end
of its log (librdkafka's partition EOF) holds no other back until it gets a record. Either
way it ends at its next poll once the dataflow is asked to stop (`streams.stop`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, KafkaError

from streams import idle, state_log, stop
from streams.errors import SourceError
from streams.features.decode import SourceRecord
from streams.fetch_watch import StallWatch
from streams.kafka_source import assigned_consumer, consumer_config, list_partitions
from streams.merge import EventTimeMerge

__all__ = ["MergedKafkaSource"]

T = TypeVar("T")

_PREFIX = "merged-"


class _MergedPartition(StatefulSourcePartition[T, dict[int, int]], Generic[T]):
    """Consumers of every partition of one topic and the merge of what they read."""

    def __init__(
        self,
        config: Mapping[str, str],
        topic: str,
        offsets: dict[int, int],
        *,
        source: MergedKafkaSource[T],
    ) -> None:
        self._topic = topic
        self._batch = source.batch_size
        self._prepare = source.prepare
        self._event_time = source.event_time
        self._final = not source.tail
        self._consumers = {
            p: assigned_consumer(config, topic, p, offset) for p, offset in offsets.items()
        }
        self._watches = {
            p: StallWatch(self._consumers[p], topic, p, offset) for p, offset in offsets.items()
        }
        self._merge = EventTimeMerge[T](offsets, tolerance_ms=source.tolerance_ms)

    def next_batch(self) -> list[T]:
        if stop.requested():
            raise StopIteration
        merge = self._merge
        for partition in merge.wanted(self._batch):
            self._read(partition)
        # A poll takes as much as a poll of each partition did: the wave size a backlog
        # measured best at (`streams.sources.kafka_source`).
        batch = merge.take(self._batch * len(self._consumers))
        if not batch:
            if merge.finished:
                raise StopIteration
            idle.run()  # a sink's commit that is due (`streams.idle`)
        return batch

    def _read(self, partition: int) -> None:
        merge, topic = self._merge, self._topic
        offset = -1
        for msg in self._consumers[partition].consume(self._batch, 0):
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    merge.reached_end(partition, final=self._final)
                    continue
                text = f"error consuming Kafka topic {topic!r} [{partition}]: {error}"
                raise SourceError(text)
            _, timestamp = msg.timestamp()
            offset = msg.offset()  # type: ignore[assignment]
            record = SourceRecord(topic, partition, offset, timestamp, msg.key(), msg.value())
            item = self._prepare(record)
            merge.add(partition, self._event_time(item), offset, item)
        if offset >= 0:
            self._watches[partition].got(offset + 1)
        else:
            self._watches[partition].idle()

    def snapshot(self) -> dict[int, int]:
        return self._merge.next_offsets()

    def close(self) -> None:
        for consumer in self._consumers.values():
            consumer.close()


class MergedKafkaSource(FixedPartitionedSource[T, dict[int, int]], Generic[T]):
    """Every partition of `topic` in event-time order, from the beginning or the snapshot.

    `prepare` turns each record into what the source yields and `event_time` reads the
    event time of that (None: none); `batch_size` bounds one poll; `tolerance_ms` is how
    far past a partition with nothing buffered the others may go (see `streams.merge`).
    """

    def __init__(
        self,
        config: Mapping[str, str],
        topic: str,
        *,
        tail: bool,
        batch_size: int,
        prepare: Callable[[SourceRecord], T],
        event_time: Callable[[T], int | None],
        tolerance_ms: int,
    ) -> None:
        self.config = dict(config)
        self.topic = topic
        self.tail = tail
        self.batch_size = batch_size
        self.prepare = prepare
        self.event_time = event_time
        self.tolerance_ms = tolerance_ms

    def list_parts(self) -> list[str]:
        list_partitions(self.config, self.topic)  # the topic must exist
        return [f"{_PREFIX}{self.topic}"]

    def build_part(
        self, step_id: str, for_part: str, resume_state: dict[int, int] | None
    ) -> _MergedPartition[T]:
        topic = for_part.removeprefix(_PREFIX)
        if topic != self.topic:
            msg = (
                f"step {step_id!r}: recovery state is for Kafka topic {topic!r}, "
                f"this source reads {self.topic!r}"
            )
            raise SourceError(msg)
        log = state_log.active()
        if resume_state is None and log is not None:
            _claim(log, step_id, topic)
        partitions = list_partitions(self.config, topic)
        resume = resume_state or {}
        gone = sorted(set(resume) - set(partitions))
        if gone:
            msg = (
                f"step {step_id!r}: recovery state has offsets for partitions {gone} of Kafka "
                f"topic {topic!r}, which has only {partitions}"
            )
            raise SourceError(msg)
        offsets = {p: resume.get(p, OFFSET_BEGINNING) for p in partitions}
        config = consumer_config(self.config, eof=True)
        return _MergedPartition(config, topic, offsets, source=self)


_MARK = "read"  # the state log key this source marks its recovery directory with


def _claim(log: state_log.StateLog, step_id: str, topic: str) -> None:
    """Mark the recovery directory as read by this source, unless others' state is in it.

    The mark is flushed with the keyed steps' first generations, before Bytewax commits an
    epoch: so logged state without the mark was logged under another source (a release
    that read partitions one by one, or another topic) whose read position this one does
    not have; resuming the steps from it would count the topic twice.
    """
    if log.newest_generation() > 0 and not log.holds(step_id, _MARK):
        msg = (
            f"step {step_id!r}: the recovery directory holds state logged under another "
            f"source, but no read position in Kafka topic {topic!r} (written by a release "
            f"that read partitions one by one, or for another topic): {state_log.REBUILD}"
        )
        raise SourceError(msg)
    log.resume(step_id, _MARK, 0)
    log.stage(step_id, _MARK, 1, topic.encode())
