"""`assign()` partitions to a consumer so that it starts reading at once.

librdkafka resolves a logical start offset (beginning, end) with a ListOffsets request to
the partition's leader. Asked before the consumer is connected to that leader, which is
always the case right after `assign()`, the request is retried 500 ms later: measured
here, a fresh consumer got its first record 505 ms after `assign()` at `OFFSET_BEGINNING`,
and 5-7 ms at an absolute offset or after asking the leader for the partition's
watermarks first, which opens the connection. Every start of a worker, every bounded
backfill and every reader of a topic paid the half second.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaException, TopicPartition

__all__ = ["assign"]

_log = logging.getLogger(__name__)
_log.addHandler(logging.NullHandler())


def assign(consumer: Consumer, partitions: Sequence[TopicPartition], *, timeout_s: float) -> None:
    """`consumer.assign(partitions)`, connected first to the leaders of logical offsets.

    One watermark request per leader broker opens its connection. A leader that cannot be
    reached within `timeout_s` is logged, not raised: the consumer then resolves the offset
    as it always does, only later.
    """
    logical = [tp for tp in partitions if tp.offset < 0]  # OFFSET_BEGINNING, OFFSET_END...
    by_leader: dict[int, TopicPartition] = {}
    try:
        for topic in sorted({tp.topic for tp in logical}):
            metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
            for tp in logical:
                if tp.topic == topic and tp.partition in metadata.partitions:
                    leader = metadata.partitions[tp.partition].leader
                    by_leader.setdefault(leader, TopicPartition(topic, tp.partition))
        for tp in by_leader.values():
            consumer.get_watermark_offsets(tp, timeout=timeout_s, cached=False)
    except KafkaException as exc:
        _log.warning("Kafka consumer not connected to every leader before assign(): %s", exc)
    consumer.assign(list(partitions))
