"""`ready_producer`: connected, and holding its idempotent producer id, before record one."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from confluent_kafka import KafkaException

from streams.ready_producer import IdempotenceState, ready_producer


def test_the_state_turns_assigned_from_librdkafka_statistics_and_stays() -> None:
    state = IdempotenceState()
    seen = []
    for report in (
        json.dumps({"eos": {"idemp_state": "WaitPID"}}),
        json.dumps({"name": "p", "type": "producer"}),  # a report without the section
        json.dumps({"eos": {"idemp_state": "Assigned"}}),
        "not even json: reports after readiness are not parsed",
    ):
        state(report)
        seen.append(state.assigned)
    assert seen == [False, False, True, True]


def test_a_ready_producer_delivers_its_first_record(
    kafka_config: dict[str, str], make_topic: Callable[..., str]
) -> None:
    topic = make_topic("ready", partitions=1)
    producer = ready_producer({**kafka_config, "enable.idempotence": "true"}, topic, timeout_s=30)
    producer.produce(topic, b"v")
    assert producer.flush(30) == 0


def test_an_unreachable_broker_raises_within_the_timeout() -> None:
    with pytest.raises(KafkaException):
        ready_producer({"bootstrap.servers": "127.0.0.1:9"}, "t", timeout_s=0.5)
