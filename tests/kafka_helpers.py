"""Read a whole topic back: every partition from the beginning to EOF, via `assign()`."""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka import Message

from streams.topic_reader import read_to_end

__all__ = ["consume_all"]


def consume_all(
    kafka_config: Mapping[str, str], topic: str, *, timeout_s: float = 30
) -> list[Message]:
    """Every message in `topic`, read until each partition reports EOF (see read_to_end)."""
    return list(read_to_end(kafka_config, topic, timeout_s=timeout_s))
