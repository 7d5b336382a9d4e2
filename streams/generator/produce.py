"""Produce the world to Kafka: Avro values, keyed by card, idempotent, fast.

Transactions go to one topic, labels to another, both keyed by card id so a card's label
lands in its transactions' partition. Values use the packaged codecs (single-object
encoding). Delivery failures are counted and turn into a `ProduceError` at the end, as do
messages still queued after the final flush; a full local queue is waited out by polling.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from schemas.contracts import codec_for, registry_client
from schemas.records import Transaction
from schemas.records_avro import TransactionWriter
from streams.generator.errors import ProduceError
from streams.generator.pacing import TokenBucket
from streams.generator.world import Emitted
from streams.ready_producer import ready_producer

__all__ = ["PRODUCER_DEFAULTS", "ProduceReport", "produce", "producer_config"]

# Live mode stamps records at produce time and measures latency from there: the bulk
# default (20 ms of batching) would be most of the first hop's latency.
_LIVE_LINGER_MS = "5"
# A paced producer held up (a busy machine, another thread holding the interpreter lock)
# makes up for up to this long in a burst, so the rate asked for is the rate offered: with
# the token bucket's default 10 ms, 4,750 of 5,000 events/s were offered beside the pipeline.
_CATCH_UP_S = 0.1

_log = logging.getLogger(__name__)
_log.addHandler(logging.NullHandler())

PRODUCER_DEFAULTS: dict[str, str] = {
    "enable.idempotence": "true",
    "acks": "all",
    "linger.ms": "20",
    "batch.num.messages": "10000",
    "batch.size": str(1 << 20),
    "queue.buffering.max.messages": "500000",
    "queue.buffering.max.kbytes": str(512 * 1024),
    "compression.type": "lz4",
}
_POLL_EVERY = 1024
_PROGRESS_EVERY = 2048
_MAX_REPORTED_ERRORS = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class ProduceReport:
    """What a produce run did; event times are epoch ms (None when nothing was produced)."""

    events: int
    labels: int
    fraud_events: int
    seconds: float
    first_event_time: int | None
    last_event_time: int | None

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict, `events_per_s` included."""
        return {**dataclasses.asdict(self), "events_per_s": self.events_per_s}


def producer_config(client_config: Mapping[str, str]) -> dict[str, Any]:
    """`client_config` over the throughput defaults; idempotence cannot be switched off."""
    return {
        "logger": _log,
        **PRODUCER_DEFAULTS,
        **client_config,
        "enable.idempotence": "true",
        "delivery.report.only.error": True,  # the callback counts failures only
    }


class _Deliveries:
    """Counts failed deliveries (only failures are reported) and keeps the first few."""

    def __init__(self) -> None:
        self.failed = 0
        self.first: list[str] = []

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            return
        self.failed += 1
        if len(self.first) < _MAX_REPORTED_ERRORS:
            self.first.append(f"{msg.topic()}[{msg.partition()}]: {err.str()}")


def _live(txn: Transaction, *, run_ms: int, index: int) -> Transaction:
    now_ms = time.time_ns() // 1_000_000
    return msgspec.structs.replace(txn, event_id=f"live-{run_ms}-{index}", event_time=now_ms)


def produce(
    items: Iterable[Emitted],
    *,
    client_config: Mapping[str, str],
    transactions_topic: str,
    labels_topic: str,
    rate: float | None = None,
    live: bool = False,
    on_progress: Callable[[int], None] | None = None,
    flush_timeout_s: float = 60.0,
    schema_registry: Mapping[str, str] | None = None,
) -> ProduceReport:
    """Produce every item; `ProduceError` if any message was not delivered.

    `rate` paces transactions (events/s, token bucket), from a producer connected first;
    None is as fast as possible.
    `live` stamps each transaction with the wall clock at produce time (ms) and a
    `live-<run start ms>-<n>` event id, and drops labels: it is for latency measurement.
    `on_progress` is called with the number of transactions produced so far.
    With `schema_registry` (`{"url": ...}`) values use the Confluent wire format.
    """
    deliveries = _Deliveries()
    config = producer_config(client_config)
    if live and "linger.ms" not in client_config:
        config["linger.ms"] = _LIVE_LINGER_MS
    config["on_delivery"] = deliveries
    producer = (
        _connect(config, transactions_topic, client_config, timeout_s=flush_timeout_s)
        if live or rate is not None
        else Producer(config)
    )
    registry = registry_client(schema_registry)
    frame = codec_for("Transaction", registry=registry, topic=transactions_topic).frame
    body = TransactionWriter().body  # fastavro's bytes: 1.8 us per framed record, not 8.3
    encode_label = codec_for("Label", registry=registry, topic=labels_topic).encode
    pacer = TokenBucket(rate, burst=max(1.0, rate * _CATCH_UP_S)) if rate is not None else None
    run_ms = time.time_ns() // 1_000_000
    events = labels = fraud = 0
    first: int | None = None
    last: int | None = None
    started = time.perf_counter()
    for item in items:
        record = item.record
        if isinstance(record, Transaction):
            if pacer is not None:
                pacer.take()
            if live:
                record = _live(record, run_ms=run_ms, index=events)
            topic, value = transactions_topic, frame(body(record))
            events += 1
            fraud += item.pattern != "legit"
            if first is None:
                first = record.event_time
            last = record.event_time
        elif live:
            continue
        else:
            topic, value = labels_topic, encode_label(record.to_avro())
            labels += 1
        _send(producer, topic, value, item.key)
        if live or events % _POLL_EVERY == 0:  # live: serve the readiness statistics too
            producer.poll(0)
            if on_progress is not None and events % _PROGRESS_EVERY == 0:
                on_progress(events)
    remaining = producer.flush(flush_timeout_s)
    seconds = time.perf_counter() - started
    if on_progress is not None:
        on_progress(events)
    if deliveries.failed or remaining:
        msg = (
            f"{deliveries.failed} message(s) failed delivery and {remaining} were still queued "
            f"after {flush_timeout_s:g}s to {client_config.get('bootstrap.servers')!r}"
            f" (topics {transactions_topic!r}, {labels_topic!r}); first errors: {deliveries.first}"
        )
        raise ProduceError(msg)
    return ProduceReport(
        events=events,
        labels=labels,
        fraud_events=fraud,
        seconds=seconds,
        first_event_time=first,
        last_event_time=last,
    )


def _connect(
    config: dict[str, Any], topic: str, client_config: Mapping[str, str], *, timeout_s: float
) -> Producer:
    """A producer connected before the first record: a cold producer holds its first records
    ~0.5-1 s (connection, metadata, idempotent producer id), which paced production counts
    as latency (their timestamps are when they were offered): the demo's live segments
    measured event -> prediction p99 0.6-1.2 s at 1,000/s for it, their first records
    held 0.6 s.
    """
    try:
        return ready_producer(config, topic, timeout_s=timeout_s)
    except KafkaException as exc:
        msg = (
            f"cannot reach Kafka at {client_config.get('bootstrap.servers')!r} "
            f"for topic {topic!r}: {exc}"
        )
        raise ProduceError(msg) from exc


def _send(producer: Producer, topic: str, value: bytes, key: str) -> None:
    while True:
        try:
            producer.produce(topic, value, key)
        except BufferError:
            producer.poll(0.05)
            continue
        except KafkaException as exc:
            msg = f"cannot produce to {topic!r}: {exc}"
            raise ProduceError(msg) from exc
        return
