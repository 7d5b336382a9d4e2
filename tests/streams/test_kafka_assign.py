"""`kafka_assign.assign`: the partitions `Consumer.assign` would read, from where it would."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from streams.kafka_assign import assign


def _produce(config: dict[str, str], topic: str, values: dict[int, list[bytes]]) -> None:
    producer = Producer(config)
    for partition, batch in values.items():
        for value in batch:
            producer.produce(topic, value, partition=partition)
    assert producer.flush(30) == 0


def _read(consumer: Consumer, count: int, *, deadline_s: float = 30) -> list[tuple[int, bytes]]:
    """The next `count` records as (partition, value), polling until a deadline."""
    seen: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + deadline_s
    while len(seen) < count and time.monotonic() < deadline:
        for message in consumer.consume(count - len(seen), 0.1):
            assert message.error() is None
            seen.append((message.partition(), message.value() or b""))  # type: ignore[arg-type]
    return seen


def _consumer(config: dict[str, str]) -> Consumer:
    return Consumer({**config, "group.id": "assign-test", "enable.auto.commit": "false"})


def test_a_logical_and_an_absolute_offset_start_where_assign_starts_them(
    kafka_config: dict[str, str], make_topic: Callable[..., str]
) -> None:
    topic = make_topic("assign", partitions=3)
    _produce(kafka_config, topic, {0: [b"a0", b"a1"], 1: [b"b0", b"b1"], 2: [b"c0", b"c1"]})
    consumer = _consumer(kafka_config)
    try:
        assign(
            consumer,
            [
                TopicPartition(topic, 0, OFFSET_BEGINNING),
                TopicPartition(topic, 1, 1),
            ],
            timeout_s=30,
        )
        assert {(tp.partition, tp.offset) for tp in consumer.assignment()} == {
            (0, OFFSET_BEGINNING),
            (1, 1),
        }
        got = _read(consumer, 3)
    finally:
        consumer.close()
    assert sorted(got) == [(0, b"a0"), (0, b"a1"), (1, b"b1")]  # nothing of partition 2


def test_an_unreachable_broker_is_logged_and_the_partitions_still_assigned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = _consumer({"bootstrap.servers": "127.0.0.1:9"})
    try:
        with caplog.at_level(logging.WARNING, logger="streams.kafka_assign"):
            assign(consumer, [TopicPartition("t", 0, OFFSET_BEGINNING)], timeout_s=0.5)
        assert [(tp.topic, tp.partition) for tp in consumer.assignment()] == [("t", 0)]
    finally:
        consumer.close()
    assert "not connected to every leader" in caplog.text
