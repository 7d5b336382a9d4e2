"""Skew audit: the online vector of each entity against its newest offline row, bit for bit.

Both stores are written by one computation, so any difference is a bug (or a store that
was written by something else). Values are compared as IEEE-754 bit patterns.

A live feature worker writes Redis at once and commits Delta every few seconds, so an
entity's online vector may be newer, by (event time, partition, offset), than its newest
committed row: such an entity is counted as pending, not compared. An online vector
older than the newest row, or another event at the same point, is a mismatch.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import redis
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from schemas.errors import ContractError
from schemas.features import FeatureSet
from schemas.features.online import decode_hash, entity_key
from streams import delta_tables
from streams.delta_tables import millis
from streams.errors import StoreError

__all__ = ["AuditReport", "Mismatch", "audit_skew", "newest_rows"]


@dataclass(frozen=True)
class Mismatch:
    """One value that differs between the stores (or an entity missing from one)."""

    entity: str
    entity_id: str
    field: str
    online: str | None
    offline: str | None


@dataclass
class AuditReport:
    """What was compared and every difference found."""

    entities: int = 0
    values: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    pending: int = 0  # entities whose online vector is newer than their newest Delta row

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


def newest_rows(table: pa.Table, key_field: str) -> pa.Table:
    """Per entity id, the row newest by (event_time, source_partition, source_offset)."""
    ordered = table.sort_by(
        [
            (key_field, "ascending"),
            ("event_time", "ascending"),
            ("source_partition", "ascending"),
            ("source_offset", "ascending"),
        ]
    )
    keys = ordered.column(key_field)
    if len(keys) == 0:
        return ordered
    # The last row of each run of equal keys.
    following = pc.not_equal(keys.slice(0, len(keys) - 1), keys.slice(1))
    last = pa.concat_arrays([following.combine_chunks(), pa.array([True])])
    return ordered.filter(last)


def audit_skew(
    client: redis.Redis,
    feature_set: FeatureSet,
    *,
    prefix: str,
    delta_root: str,
    storage_options: dict[str, str] | None = None,
    sample: int | None = None,
    entities: Sequence[str] | None = None,
) -> AuditReport:
    """Compare Redis with the newest Delta row of every (or `sample` of each) entity."""
    uri = delta_tables.table_uri(delta_root, delta_tables.FEATURES)
    try:
        table = DeltaTable(uri, storage_options=storage_options).to_pyarrow_table()
    except TableNotFoundError as exc:
        msg = f"no features table at {uri!r}: run the feature pipeline first"
        raise StoreError(msg) from exc
    report = AuditReport()
    names = feature_set.feature_names
    for view in feature_set.views:
        if entities is not None and view.entity.name not in entities:
            continue
        rows = newest_rows(table, view.entity.key_field)
        if sample is not None:
            rows = rows.slice(0, sample)
        ids = rows.column(view.entity.key_field).to_pylist()
        pipe = client.pipeline(transaction=False)
        for entity_id in ids:
            pipe.hgetall(entity_key(feature_set, view.entity.name, entity_id, prefix=prefix))
        online = pipe.execute()
        offline = rows.to_pylist()
        entity = view.entity.name
        for entity_id, stored, row in zip(ids, online, offline, strict=True):
            report.entities += 1
            if not stored:
                report.mismatches.append(Mismatch(entity, entity_id, "*", None, row["event_id"]))
                continue
            try:
                vector = decode_hash(feature_set, stored)
            except ContractError as exc:
                report.mismatches.append(Mismatch(entity, entity_id, "*", str(exc), None))
                continue
            committed = (
                millis(row["event_time"]),
                row["source_partition"],
                row["source_offset"],
            )
            if vector.order_key > committed:  # its row is not committed yet
                report.pending += 1
                continue
            checks = [
                ("event_id", vector.event_id, row["event_id"]),
                ("event_time", str(vector.event_time), str(millis(row["event_time"]))),
            ]
            for check, got, want in checks:
                if got != want:
                    report.mismatches.append(Mismatch(entity, entity_id, check, got, want))
            for name, value in zip(names, vector.values, strict=True):
                report.values += 1
                if _bits(value) != _bits(row[name]):
                    report.mismatches.append(
                        Mismatch(entity, entity_id, name, repr(value), repr(row[name]))
                    )
    return report
