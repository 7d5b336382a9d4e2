"""A partition that gets nothing while its broker holds newer records is reported, once per
check; an idle topic is not."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streams.fetch_watch import StallWatch
from streams.kafka_source import consumer_config
from tests.factories import produce_payloads

_LOGGER = "streams.fetch_watch"


class _Broker:
    """A fake clock and high watermark."""

    def __init__(self, high: int) -> None:
        self.now = 0.0
        self.high = high
        self.asked = 0

    def clock(self) -> float:
        return self.now

    def high_watermark(self) -> int:
        self.asked += 1
        return self.high


def _watch(broker: _Broker, *, start: int = 0) -> StallWatch:
    return StallWatch(
        None,  # type: ignore[arg-type]  # the fake high watermark never asks a consumer
        "transactions",
        3,
        start,
        after_s=30.0,
        clock=broker.clock,
        high_watermark=broker.high_watermark,
    )


def _stalled(watch: StallWatch) -> bool:
    """`watch.stalled`, read anew (mypy would keep an earlier assert's narrowing)."""
    return watch.stalled


def test_records_waiting_and_none_given_for_the_interval_is_one_warning_naming_both_offsets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = _Broker(high=9_000)
    watch = _watch(broker)
    watch.got(7_000)
    broker.now = 29.0
    watch.idle()
    assert broker.asked == 0
    assert not watch.stalled
    broker.now = 31.0
    with caplog.at_level(logging.WARNING, logger=_LOGGER):
        watch.idle()
    assert _stalled(watch)
    [record] = caplog.records
    message = record.getMessage()
    assert "'transactions' [3]" in message
    assert "up to offset 9000" in message
    assert "from offset 7000 for 31 s" in message
    assert "SKEWLESS_KAFKA_BOOTSTRAP" in message


def test_the_broker_is_asked_at_most_once_per_interval() -> None:
    broker = _Broker(high=10)
    watch = _watch(broker)
    for step in range(100):  # 100 empty polls over 99 s
        broker.now = float(step)
        watch.idle()
    assert broker.asked == 3  # at 30, 60 and 90 s


def test_an_idle_topic_at_its_end_is_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    broker = _Broker(high=500)
    watch = _watch(broker)
    watch.got(500)
    broker.now = 1_000.0
    with caplog.at_level(logging.WARNING, logger=_LOGGER):
        watch.idle()
    assert broker.asked == 1
    assert not watch.stalled
    assert not caplog.records


def test_a_record_ends_the_stall_and_restarts_the_interval() -> None:
    broker = _Broker(high=100)
    watch = _watch(broker, start=40)
    broker.now = 30.0
    watch.idle()
    assert watch.stalled  # nothing since the start offset 40, and the log reaches 100
    watch.got(41)
    assert not _stalled(watch)
    broker.now = 59.0
    watch.idle()
    assert broker.asked == 1


def test_an_unanswered_watermark_query_is_not_a_stall(caplog: pytest.LogCaptureFixture) -> None:
    def unreachable() -> int:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT))

    watch = StallWatch(
        None,  # type: ignore[arg-type]
        "t",
        0,
        0,
        after_s=1.0,
        clock=lambda: 5.0,
        high_watermark=unreachable,
    )
    with caplog.at_level(logging.WARNING, logger=_LOGGER):
        watch.idle()
    assert not watch.stalled
    assert not caplog.records


@pytest.mark.integration
def test_a_partition_given_nothing_behind_its_log_is_reported_from_the_real_broker(
    kafka_config: dict[str, str], make_topic: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    # One record read, then the partition paused: it fetches nothing more, as from a broker
    # that stopped answering, while the last fetch response said the log reaches 20.
    topic = make_topic("stall", 1)
    produce_payloads(kafka_config, topic, [(f"k{i}", b"v") for i in range(20)])
    partition = TopicPartition(topic, 0, 0)
    consumer = Consumer(consumer_config(kafka_config, eof=False))
    consumer.assign([partition])
    try:
        watch = StallWatch(consumer, topic, 0, 0, after_s=0.2)
        deadline = time.monotonic() + 30
        first = consumer.poll(1.0)
        while first is None and time.monotonic() < deadline:
            first = consumer.poll(1.0)
        assert first is not None
        assert first.error() is None
        assert first.offset() == 0
        consumer.pause([partition])
        watch.got(1)
        with caplog.at_level(logging.WARNING, logger=_LOGGER):
            while not watch.stalled and time.monotonic() < deadline:
                assert not consumer.consume(10, 0.05)  # paused: nothing comes
                watch.idle()
        assert watch.stalled
        assert f"{topic!r} [0]" in caplog.text
        assert "up to offset 20 but has returned none from offset 1" in caplog.text
    finally:
        consumer.close()
