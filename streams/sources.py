"""Sources for the dataflows: Kafka (live or bounded to the current end) and Delta replay.

`kafka_source` yields a topic's `SourceRecord`s partition by partition. The feature flow
reads transactions in event-time order across partitions (`streams.merge`): from Kafka
through `KafkaTransactions`, which it builds with its decoder, or from the raw Delta table
through `DeltaTransactionsSource`, which re-encodes nothing: it yields already decoded
transactions with their original source partition, offset and Kafka timestamp, merged by
the same rule, so a backfill computes features exactly as the live run did. All end at
their next poll once the dataflow is asked to stop (`streams.stop`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow.dataset as ds
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from schemas.records import Channel, DeadLetter, Transaction
from streams import stop
from streams.delta_tables import millis
from streams.features.decode import Decoded, SourceRecord
from streams.kafka_merged_source import MergedKafkaSource
from streams.kafka_source import KafkaSource
from streams.merge import merged

__all__ = ["DeltaTransactionsSource", "KafkaTransactions", "kafka_source"]

Prepared = Decoded[Transaction] | DeadLetter


def kafka_source(
    client_config: Mapping[str, str], topic: str, *, bounded: bool, batch_size: int = 200
) -> KafkaSource:
    """Every partition of `topic` from the beginning (or the recovery snapshot).

    Bounded, it stops at each partition's end as of reading; live, it tails forever.
    `batch_size` bounds the records one poll takes from a partition: the feature worker
    runs each poll's records through every step as one wave, so it bounds the wave too
    (at 10,000 events/s, 200 measured p99 freshness 260-320 ms vs 314-503 ms at 500;
    100 cost throughput).
    """
    return KafkaSource(client_config, topic, tail=not bounded, batch_size=batch_size)


@dataclass(frozen=True)
class KafkaTransactions:
    """The transactions topic as the feature flow reads it: merged in event-time order.

    Bounded, it ends at each partition's end as of reading; live, it tails. `batch_size`
    bounds a poll (as in `kafka_source`); `tolerance_ms` is how far in event time the other
    partitions may run ahead of one with nothing buffered that has not reached its end
    (`streams.merge`). By default 0 bounded (a backlog is read in exact merged order) and
    1 s live: a live partition's next record is never far behind, and waiting for it to
    the millisecond would add its fetch wait to every event's latency.
    """

    client_config: Mapping[str, str] = field(repr=False)
    topic: str
    bounded: bool
    batch_size: int = 200
    tolerance_ms: int | None = None

    def source(self, decode: Callable[[SourceRecord], Prepared]) -> MergedKafkaSource[Prepared]:
        """The Bytewax source, decoding each record with `decode`."""
        return MergedKafkaSource(
            self.client_config,
            self.topic,
            tail=not self.bounded,
            batch_size=self.batch_size,
            prepare=decode,
            event_time=_event_time,
            tolerance_ms=(0 if self.bounded else 1_000)
            if self.tolerance_ms is None
            else self.tolerance_ms,
        )


def _event_time(item: Prepared) -> int | None:
    return item.record.event_time if isinstance(item, Decoded) else None


_COLUMNS = [
    "event_id", "card_id", "merchant_id", "amount", "currency", "mcc", "country", "channel",
    "event_time", "card_country", "device_id", "source_partition", "source_offset",
    "source_timestamp",
]  # fmt: skip


class _DeltaPartition(StatefulSourcePartition[Decoded[Transaction], int]):
    def __init__(self, rows: list[dict[str, Any]], resume: int | None, batch_size: int) -> None:
        self._rows = rows
        self._next = 0 if resume is None else resume
        self._batch = batch_size

    def next_batch(self) -> list[Decoded[Transaction]]:
        if self._next >= len(self._rows) or stop.requested():
            raise StopIteration
        chunk = self._rows[self._next : self._next + self._batch]
        self._next += len(chunk)
        return [
            Decoded(
                Transaction(
                    event_id=r["event_id"],
                    card_id=r["card_id"],
                    merchant_id=r["merchant_id"],
                    amount=r["amount"],
                    currency=r["currency"],
                    mcc=r["mcc"],
                    country=r["country"],
                    channel=Channel(r["channel"]),
                    event_time=millis(r["event_time"]),
                    card_country=r["card_country"],
                    device_id=r["device_id"],
                ),
                r["source_partition"],
                r["source_offset"],
                millis(r["source_timestamp"]),
            )
            for r in chunk
        ]

    def snapshot(self) -> int:
        return self._next


class DeltaTransactionsSource(FixedPartitionedSource[Decoded[Transaction], int]):
    """The raw transactions table in the order the Kafka source hands the topic out.

    Each Kafka partition's rows in offset order, merged by event time (`streams.merge`),
    as one source partition.
    """

    _PART = "merged"

    def __init__(self, table: Any, *, batch_size: int = 1000) -> None:
        dataset: ds.Dataset = table.to_pyarrow_dataset()
        data = dataset.to_table(columns=_COLUMNS).sort_by(
            [("source_partition", "ascending"), ("source_offset", "ascending")]
        )
        by_partition: dict[int, list[dict[str, Any]]] = {}
        for row in data.to_pylist():
            by_partition.setdefault(row["source_partition"], []).append(row)
        parts = [by_partition[p] for p in sorted(by_partition)]
        self._rows = merged(parts, lambda row: millis(row["event_time"]))
        self._batch = batch_size

    def list_parts(self) -> list[str]:
        return [self._PART]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _DeltaPartition:
        return _DeltaPartition(self._rows, resume_state, self._batch)
