"""Read a whole topic to its current end, counting by consuming (never by watermarks)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from streams.errors import StreamsError
from streams.kafka_assign import assign

__all__ = ["read_to_end"]


def read_to_end(
    client_config: Mapping[str, str], topic: str, *, timeout_s: float = 60
) -> Iterator[Message]:
    """Every record of `topic`, partition by partition interleaved, until all report EOF.

    Uses `assign()` (no consumer group wait) and EOF events rather than high watermarks,
    which some brokers report wrongly. Raises `StreamsError` past the deadline.
    """
    consumer = Consumer(
        {
            **client_config,
            "group.id": f"skewless-reader-{uuid.uuid4().hex}",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
        if metadata.error is not None:
            msg = f"topic {topic!r} is not readable: {metadata.error}"
            raise StreamsError(msg)
        partitions = sorted(metadata.partitions)
        assign(
            consumer,
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions],
            timeout_s=timeout_s,
        )
        pending = set(partitions)
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() >= deadline:
                msg = f"topic {topic!r}: partitions {sorted(pending)} not at end after {timeout_s}s"
                raise StreamsError(msg)
            for message in consumer.consume(1000, 0.2):
                error = message.error()
                if error is None:
                    yield message
                elif error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(message.partition())
                else:
                    msg = f"topic {topic!r}: consume error {error}"
                    raise StreamsError(msg)
    finally:
        consumer.close()
