"""Counts that show what the feature pipeline did: rows, late events, entities, dead letters."""

from __future__ import annotations

from typing import Any

import pyarrow.compute as pc
import redis
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from schemas.features import FeatureSet
from streams import delta_tables
from streams.topic_reader import read_to_end

__all__ = ["count_dead_letters", "count_online_entities", "delta_counts"]


def delta_counts(root: str, storage: dict[str, str] | None) -> dict[str, int]:
    """Rows per table, distinct feature event_ids and late vectors in Delta."""
    out: dict[str, int] = {}
    for name in (delta_tables.TRANSACTIONS, delta_tables.FEATURES, delta_tables.LABELS):
        try:
            table = DeltaTable(delta_tables.table_uri(root, name), storage_options=storage)
        except TableNotFoundError:
            out[name] = 0
            continue
        if name == delta_tables.FEATURES:
            data = table.to_pyarrow_table(columns=["event_id", "late"])
            out["features"] = data.num_rows
            out["feature_event_ids"] = len(pc.unique(data.column("event_id")))
            out["late"] = int(pc.sum(data.column("late").cast("int64")).as_py() or 0)
        else:
            out[name] = table.to_pyarrow_table(columns=["event_id"]).num_rows
        out[f"{name}_version"] = table.version()
    return out


def count_online_entities(
    client: redis.Redis, feature_set: FeatureSet, prefix: str
) -> dict[str, int]:
    """Keys per entity in the online store (SCAN, no KEYS)."""
    counts: dict[str, int] = {}
    for entity in feature_set.entities:
        pattern = f"{prefix}:{feature_set.name}:{entity.name}:*"
        counts[entity.name] = sum(1 for _ in client.scan_iter(match=pattern, count=5000))
    return counts


def count_dead_letters(client_config: dict[str, Any], topic: str) -> int:
    return sum(1 for _ in read_to_end(client_config, topic))
