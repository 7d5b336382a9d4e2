"""The merged Kafka source refuses recovery state it cannot have written."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams import state_log
from streams.errors import SourceError
from streams.kafka_merged_source import MergedKafkaSource


def _source() -> MergedKafkaSource[object]:
    return MergedKafkaSource(
        {"bootstrap.servers": "127.0.0.1:9"},  # never reached: the check comes first
        "transactions",
        tail=False,
        batch_size=10,
        prepare=lambda record: record,
        event_time=lambda _: None,
        tolerance_ms=0,
    )


def test_logged_state_without_a_read_position_is_refused_with_the_fix(tmp_path: Path) -> None:
    # A recovery directory whose keyed steps logged two epochs, but whose source snapshot
    # is not this source's (written before the merge read partitions one by one).
    with state_log.opened(tmp_path) as log:
        assert log is not None
        log.resume("view", "00", 0)
        log.append("view", "00", 1, b"a")
        log.append("view", "00", 2, b"b")
        with pytest.raises(SourceError, match=r"no read position.*features backfill"):
            _source().build_part("fraud_source", "merged-transactions", None)


def test_a_topic_other_than_the_snapshots_is_refused() -> None:
    with pytest.raises(SourceError, match="recovery state is for Kafka topic 'other'"):
        _source().build_part("fraud_source", "merged-other", {0: 5})
