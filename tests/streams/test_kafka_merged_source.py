"""The merged Kafka source refuses recovery state it cannot have written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING

from streams import state_log
from streams.errors import SourceError
from streams.kafka_merged_source import MergedKafkaSource


def _source() -> MergedKafkaSource[object]:
    return MergedKafkaSource(
        {"bootstrap.servers": "127.0.0.1:9", "socket.timeout.ms": "100"},  # unreachable
        "transactions",
        tail=False,
        batch_size=10,
        prepare=lambda record: record,
        event_time=lambda _: None,
        tolerance_ms=0,
    )


def test_logged_state_without_its_mark_is_refused_with_the_fix(tmp_path: Path) -> None:
    # A recovery directory whose keyed steps logged an epoch under another source (one
    # that read partitions one by one): its read positions are not this source's.
    with state_log.opened(tmp_path) as log:
        assert log is not None
        log.resume("view", "00", 0)
        log.append("view", "00", 1, b"a")
        with pytest.raises(SourceError, match=r"no read position.*features backfill"):
            _source().build_part("fraud_source", "merged-transactions", None)


@pytest.mark.integration
def test_state_logged_with_its_mark_is_resumed_from_the_start(
    tmp_path: Path, kafka_config: dict[str, str], make_topic: Callable[..., str]
) -> None:
    # A worker killed after the first flush and before Bytewax committed that epoch: the
    # steps will discard their generation 1 (Bytewax hands them no state), so the source
    # may start over.
    topic = make_topic("tx", 2)
    source = MergedKafkaSource[object](
        kafka_config, topic, tail=False, batch_size=10, prepare=lambda r: r,
        event_time=lambda _: None, tolerance_ms=0,
    )  # fmt: skip
    with state_log.opened(tmp_path) as log:
        assert log is not None
        log.resume("fraud_source", "read", 0)
        log.stage("fraud_source", "read", 1, topic.encode())
        log.resume("view", "00", 0)
        log.stage("view", "00", 1, b"a")
        log.flush()
        part = source.build_part("fraud_source", f"merged-{topic}", None)
        part.close()
        assert part.snapshot() == {0: OFFSET_BEGINNING, 1: OFFSET_BEGINNING}


def test_a_topic_other_than_the_snapshots_is_refused() -> None:
    with pytest.raises(SourceError, match="recovery state is for Kafka topic 'other'"):
        _source().build_part("fraud_source", "merged-other", {0: 5})
