"""An idempotent Kafka producer that can prove delivery at a checkpoint.

Records are produced eagerly; `flush()` blocks until every one is acknowledged and raises
if any failed. Sinks flush before they snapshot (and before a Delta commit), which makes
Kafka outputs at-least-once across crashes; consumers dedupe by `event_id`.
"""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka import KafkaError, Message, Producer

from streams.errors import StoreError

__all__ = ["KafkaOutbox"]

_PRODUCER_DEFAULTS = {
    "enable.idempotence": "true",
    "acks": "all",
    "linger.ms": "5",
    "batch.num.messages": "10000",
    "compression.type": "lz4",
}


# Records between two `poll(0)` calls (which serve delivery reports, failures only here):
# one per record cost ~1.5 us each; `flush` serves whatever is left.
_POLL_EVERY = 256


class KafkaOutbox:
    """Produce to one topic; `flush()` is the delivery checkpoint."""

    def __init__(self, client_config: Mapping[str, str], topic: str) -> None:
        self.topic = topic
        self._failures: list[str] = []
        self._unpolled = 0
        # Only failures are reported: a Python callback per delivered record cost ~1 us.
        self._producer = Producer(
            {
                **_PRODUCER_DEFAULTS,
                **client_config,
                "delivery.report.only.error": True,
                "on_delivery": self._on_delivery,
            }
        )

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failures.append(f"{msg.topic()}[{msg.partition()}]: {err.str()}")

    def produce(
        self,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=key, headers=headers)
                break
            except BufferError:
                self._producer.poll(0.05)
        self._unpolled += 1
        if self._unpolled >= _POLL_EVERY:
            self._unpolled = 0
            self._producer.poll(0)

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait for every produced record to be acknowledged; raise if any failed."""
        remaining = self._producer.flush(timeout_s)
        if remaining:
            msg = f"{remaining} records to {self.topic!r} not acknowledged within {timeout_s}s"
            raise StoreError(msg)
        if self._failures:
            failures, self._failures = self._failures, []
            msg = f"{len(failures)} records to {self.topic!r} failed, first: {failures[0]}"
            raise StoreError(msg)
