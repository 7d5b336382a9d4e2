"""Produce throughput: world generation + Avro encoding + Kafka produce, against a floor.

The floor is a bare confluent-kafka loop producing pre-encoded bytes with the same
producer options, in the same run, to a fresh topic of the same shape. Also reported, with
no broker involved: the generator alone and generator + encode. Each figure is the median
of `--reps` repetitions of `--events` transactions; every repetition uses fresh topics.

    python benchmarks/produce.py --events 200000 --reps 3
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Producer

from benchmarks._common import bench_services, fresh_topic, median, write_result
from schemas.contracts import codec_for
from schemas.records import Transaction
from schemas.records_avro import TransactionWriter
from streams.generator import World, WorldConfig
from streams.generator.produce import produce, producer_config

PARTITIONS = 4
CONFIG = WorldConfig(seed=7)


def generator_only(events: int) -> float:
    """Seconds to generate `events` transactions (and their labels), no encoding."""
    start = time.perf_counter()
    for _ in World.fresh(CONFIG).stream(events):
        pass
    return time.perf_counter() - start


def generator_and_encode(events: int) -> float:
    """Seconds to generate and Avro-encode `events` transactions and their labels."""
    frame, body = codec_for("Transaction").frame, TransactionWriter().body  # as `produce` does
    label = codec_for("Label").encode
    start = time.perf_counter()
    for item in World.fresh(CONFIG).stream(events):
        record = item.record
        if isinstance(record, Transaction):
            frame(body(record))
        else:
            label(record.to_avro())
    return time.perf_counter() - start


def floor(kafka_config: dict[str, str], records: Sequence[tuple[str, bytes]]) -> float:
    """Seconds for a bare producer loop over pre-encoded (key, value) records, flushed."""
    topic = fresh_topic(kafka_config, "produce-floor", PARTITIONS)
    producer = Producer(producer_config(kafka_config))
    start = time.perf_counter()
    for n, (key, value) in enumerate(records):
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
        if n % 1024 == 0:
            producer.poll(0)
    remaining = producer.flush(120)
    seconds = time.perf_counter() - start
    if remaining:
        raise RuntimeError(f"floor: {remaining} records unacknowledged")
    return seconds


def full(kafka_config: dict[str, str], events: int) -> float:
    """Seconds for `streams.generator.produce` of a fresh world, to fresh topics."""
    transactions = fresh_topic(kafka_config, "produce-txn", PARTITIONS)
    labels = fresh_topic(kafka_config, "produce-labels", PARTITIONS)
    report = produce(
        World.fresh(CONFIG).stream(events),
        client_config=kafka_config,
        transactions_topic=transactions,
        labels_topic=labels,
    )
    return report.seconds


def _summary(seconds: list[float], events: int) -> dict[str, Any]:
    med = median(seconds)
    return {"seconds": seconds, "median_s": med, "events_per_s": events / med}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print medians and the ratio, write `results/produce.json`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=3)
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    events, reps = args.events, args.reps

    encode = codec_for("Transaction").encode
    records = [
        (item.key, encode(item.record.to_avro()))
        for item in World.fresh(CONFIG).stream(events)
        if isinstance(item.record, Transaction)
    ]
    gen = [generator_only(events) for _ in range(reps)]
    gen_enc = [generator_and_encode(events) for _ in range(reps)]
    with bench_services() as services:
        kafka = services.kafka_config
        floors, fulls = [], []
        for _ in range(reps):  # interleaved, so drift in the broker hits both alike
            floors.append(floor(kafka, records))
            fulls.append(full(kafka, events))

    results = {
        "generator": _summary(gen, events),
        "generator_encode": _summary(gen_enc, events),
        "floor_bare_produce": _summary(floors, events),
        "generator_encode_produce": _summary(fulls, events),
    }
    ratio = (
        results["generator_encode_produce"]["median_s"] / results["floor_bare_produce"]["median_s"]
    )
    for name, figures in results.items():
        rate, took = figures["events_per_s"], figures["median_s"]
        print(f"{name:>26}: {rate:>10,.0f} events/s (median {took:.3f}s)")
    print(f"{'ratio full / floor':>26}: {ratio:.2f}x the floor's time")
    path = write_result(
        "produce",
        {
            "events": events,
            "reps": reps,
            "partitions": PARTITIONS,
            "producer_config": {k: str(v) for k, v in producer_config({}).items() if k != "logger"},
            **results,
            "ratio_full_over_floor": ratio,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
