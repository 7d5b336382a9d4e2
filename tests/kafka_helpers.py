"""Read a whole topic back: every partition from the beginning to EOF, via `assign()`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

__all__ = ["consume_all"]


def consume_all(
    kafka_config: Mapping[str, str], topic: str, *, timeout_s: float = 30
) -> list[Message]:
    """Every message in `topic`, read until each partition reports EOF.

    Counts by consuming rather than by watermarks, which the embedded broker reports
    wrongly. `assign()` rather than `subscribe()`, which waits ~23 s for a group there.
    """
    consumer = Consumer(
        {
            **kafka_config,
            "group.id": f"consume-all-{uuid.uuid4().hex}",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
        if metadata.error is not None:
            raise AssertionError(f"topic {topic!r} not readable: {metadata.error}")
        partitions = sorted(metadata.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        pending = set(partitions)
        messages: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"topic {topic!r}: partitions {sorted(pending)} not at EOF after "
                    f"{timeout_s:g}s ({len(messages)} messages read)"
                )
            message = consumer.poll(0.2)
            if message is None:
                continue
            error = message.error()
            if error is None:
                messages.append(message)
            elif error.code() == KafkaError._PARTITION_EOF:
                pending.discard(message.partition())
            else:
                raise AssertionError(f"topic {topic!r}: consume error {error}")
        return messages
    finally:
        consumer.close()
