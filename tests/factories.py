"""Small deterministic event streams for tests (the full fraud world is streams.generator)."""

from __future__ import annotations

import random
from collections.abc import Mapping

from confluent_kafka import Producer

from schemas.contracts import codec_for
from schemas.records import Channel, Transaction

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z


def transactions(n: int, *, seed: int, cards: int = 12, merchants: int = 8) -> list[Transaction]:
    """In event-time order, bursty per card, with duplicate timestamps now and then."""
    rng = random.Random(seed)
    t = T0
    events = []
    for i in range(n):
        t += rng.choice([0, 1_000, 30_000, 120_000, 600_000, 3_600_000, 6 * 3_600_000])
        events.append(
            Transaction(
                event_id=f"s{seed}-e{i}",
                card_id=f"c{rng.randrange(cards)}",
                merchant_id=f"m{rng.randrange(merchants)}",
                amount=round(rng.lognormvariate(3.5, 1.2), 2),
                currency="EUR",
                mcc=rng.choice(["5411", "5816", "5732", "5812"]),
                country=rng.choice(["DE", "DE", "DE", "FR", "US"]),
                channel=rng.choice(list(Channel)),
                event_time=t,
                card_country="DE",
                device_id=rng.choice([None, "d1", "d2"]),
            )
        )
    return events


def produce_payloads(
    kafka_config: Mapping[str, str], topic: str, payloads: list[tuple[str, bytes]]
) -> None:
    """Produce (key, value) pairs with an idempotent producer and wait for every ack."""
    producer = Producer({**kafka_config, "enable.idempotence": True, "linger.ms": 20})
    for key, value in payloads:
        while True:
            try:
                producer.produce(topic, key=key.encode(), value=value)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0, "not every record was acknowledged"


def produce_transactions(
    kafka_config: Mapping[str, str], topic: str, events: list[Transaction]
) -> None:
    """Produce transactions Avro-encoded (single-object), keyed by card_id."""
    codec = codec_for("Transaction")
    produce_payloads(kafka_config, topic, [(e.card_id, codec.encode(e.to_avro())) for e in events])
