"""The embedded broker's fetch time by the record batches a partition holds.

Tansu 0.6 (memory storage) lists every record batch of a partition on each fetch below its
end. This fills one fresh partition with batches of `--records` records each (one flush
per batch, as a live producer's linger makes them) and, at each of `--batches` totals,
times a fresh assigned consumer fetching the last `--records // 2` records: the time to
get them, or no answer within `--timeout` seconds. Past some 4,000-6,000 batches the time
jumps and then fetches stop being answered (README, The embedded broker); the run stops
at the first total with no answer. Each figure is one fetch: the cliff moves from run to
run, so several runs show its spread.

Floor, same run: the same fetch at 100 batches.

Against a configured broker (`SKEWLESS_KAFKA_BOOTSTRAP`) this measures that broker.

    python benchmarks/broker_batches.py [--batches 1000 4000 6000 8000 9000 --timeout 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from _common import bench_services, fresh_topic, write_result
from confluent_kafka import Consumer, Producer, TopicPartition
from rich.console import Console
from rich.table import Table

from streams.kafka_source import consumer_config


@dataclass(frozen=True)
class Options:
    batches: tuple[int, ...]
    records: int
    timeout_s: float


def _fill(producer: Producer, topic: str, batches: int, records: int) -> None:
    """Produce `batches` batches of `records` records, one flush (one batch) each."""
    value = b"x" * 150
    for _ in range(batches):
        for _ in range(records):
            producer.produce(topic, value=value)
        if producer.flush(30):
            raise RuntimeError(f"records to {topic!r} unacknowledged after 30 s")


def _fetch_ms(
    kafka_config: Mapping[str, str], topic: str, end: int, want: int, timeout_s: float
) -> float | None:
    """Milliseconds for a fresh consumer to get the `want` records before `end` (None: not
    all of them within `timeout_s`)."""
    consumer = Consumer(consumer_config(kafka_config, eof=False))
    consumer.assign([TopicPartition(topic, 0, end - want)])
    start = time.monotonic()
    got = 0
    try:
        while got < want and time.monotonic() - start < timeout_s:
            got += sum(1 for msg in consumer.consume(want, 0.005) if msg.error() is None)
    finally:
        consumer.close()
    return (time.monotonic() - start) * 1000 if got >= want else None


def run(opts: Options) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with bench_services() as services:
        config = services.kafka_config
        topic = fresh_topic(config, "batches", 1)
        producer = Producer({**config, "enable.idempotence": "true", "linger.ms": "0"})
        held = 0
        want = max(1, opts.records // 2)
        for total in sorted({100, *opts.batches}):
            _fill(producer, topic, total - held, opts.records)
            held = total
            ms = _fetch_ms(config, topic, held * opts.records, want, opts.timeout_s)
            rows.append({"batches": held, "fetch_ms": ms})
            print(f"{held:>6} batches: {'no answer' if ms is None else f'{ms:.1f} ms'}")
            if ms is None:
                break
    floor = rows[0]["fetch_ms"]
    return {"options": asdict(opts), "embedded": services.embedded, "floor_ms": floor, "rows": rows}


def report(results: Mapping[str, Any]) -> Table:
    opts = results["options"]
    table = Table(title=f"Fetch at the end of one partition ({opts['records']} records a batch)")
    table.add_column("batches held", justify="right")
    table.add_column("fetch", justify="right")
    table.add_column("/ floor (100 batches)", justify="right")
    floor = results["floor_ms"]
    for row in results["rows"]:
        ms = row["fetch_ms"]
        if ms is None:
            table.add_row(f"{row['batches']:,}", f"none in {opts['timeout_s']:g} s", "—")
        else:
            ratio = f"{ms / floor:.1f}×" if floor else "—"
            table.add_row(f"{row['batches']:,}", f"{ms:,.1f} ms", ratio)
    return table


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--batches",
        type=int,
        nargs="+",
        default=[1000, 2000, 4000, 5000, 6000, 7000, 8000, 9000],
        help="batch totals to fetch at",
    )
    parser.add_argument("--records", type=int, default=10, help="records per batch")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds a fetch may take")
    args = parser.parse_args(argv)
    if min(args.batches) < 1 or args.records < 1 or args.timeout <= 0:
        parser.error("--batches and --records must be positive, --timeout above 0")
    return Options(tuple(args.batches), args.records, args.timeout)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_options(argv)
    results = run(opts)
    path = write_result("broker_batches", results)
    Console().print(report(results))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
