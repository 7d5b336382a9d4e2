"""Sources for the dataflows: Kafka (live or bounded to the current end) and Delta replay.

Both yield `SourceRecord`s — the Delta replay re-encodes nothing: it yields already decoded
transactions with their original source partition, offset and Kafka timestamp, so a
backfill computes features exactly as the live run did. Both end at their next poll once
the dataflow is asked to stop (`streams.stop`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow.dataset as ds
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from schemas.records import Channel, Transaction
from streams import stop
from streams.delta_tables import millis
from streams.features.decode import Decoded
from streams.kafka_source import KafkaSource

__all__ = ["DeltaTransactionsSource", "kafka_source"]


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
    config = dict(client_config)
    config.setdefault("fetch.wait.max.ms", "10")  # an idle partition answers fast: freshness
    return KafkaSource(config, topic, tail=not bounded, batch_size=batch_size)


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
    """The raw transactions table, one source partition per Kafka partition, in offset order."""

    def __init__(self, table: Any, *, batch_size: int = 1000) -> None:
        dataset: ds.Dataset = table.to_pyarrow_dataset()
        data = dataset.to_table(columns=_COLUMNS).sort_by(
            [("source_partition", "ascending"), ("source_offset", "ascending")]
        )
        self._by_partition: dict[str, list[dict[str, Any]]] = {}
        for row in data.to_pylist():
            self._by_partition.setdefault(str(row["source_partition"]), []).append(row)
        self._batch = batch_size

    def list_parts(self) -> list[str]:
        return sorted(self._by_partition)

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _DeltaPartition:
        return _DeltaPartition(self._by_partition[for_part], resume_state, self._batch)
