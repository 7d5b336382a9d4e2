"""The Kafka outbox: `flush()` is a delivery checkpoint that fails loudly."""

from __future__ import annotations

import pytest

from streams.errors import StoreError
from streams.sinks.kafka_outbox import KafkaOutbox


def test_undelivered_records_fail_the_checkpoint_naming_the_topic() -> None:
    unreachable = {"bootstrap.servers": "127.0.0.1:9", "message.timeout.ms": "300"}
    outbox = KafkaOutbox(unreachable, "features")
    for i in range(5):
        outbox.produce(b"v", key=str(i).encode())
    with pytest.raises(StoreError, match=r"5 records to 'features' failed, first: features\["):
        outbox.flush(timeout_s=10)
