"""The feature vector: one per valid event, identical in Redis, Delta and the features topic.

Its Avro schema is derived from the feature set, so the contract cannot drift from the
definition: metadata fields first, then one `double` per feature in vector order
(`schemas.features.vector_avro` writes and reads its body on the hot paths).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from schemas.features.definition import FeatureSet

__all__ = ["META_FIELDS", "FeatureVector", "feature_vector_schema"]

_TS = {"type": "long", "logicalType": "timestamp-millis"}

# (name, avro type) of the metadata every vector carries, before the entity keys.
META_FIELDS: tuple[tuple[str, Any], ...] = (
    ("event_id", "string"),
    ("event_time", _TS),
    ("source_timestamp", _TS),
    ("source_partition", "int"),
    ("source_offset", "long"),
    ("computed_at", _TS),
    ("definition_version", "string"),
    ("late", "boolean"),
)


class FeatureVector(msgspec.Struct, frozen=True):
    """The features of one event plus where it came from and which definition made it.

    `keys` are the entity ids in `feature_set.entities` order; `values` follow
    `feature_set.feature_names`. `source_timestamp` is the source record's Kafka timestamp
    (epoch ms), the start of end-to-end latency.
    """

    event_id: str
    keys: tuple[str, ...]
    event_time: int
    source_timestamp: int
    source_partition: int
    source_offset: int
    computed_at: int
    definition_version: str
    late: bool
    values: tuple[float, ...]

    @property
    def order_key(self) -> tuple[int, int, int]:
        """Newer-than order for the online store: (event time, partition, offset)."""
        return (self.event_time, self.source_partition, self.source_offset)

    def to_avro(self, feature_set: FeatureSet) -> dict[str, Any]:
        """The flat record: metadata, entity key fields, then one field per feature."""
        record: dict[str, Any] = {
            "event_id": self.event_id,
            "event_time": self.event_time,
            "source_timestamp": self.source_timestamp,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "computed_at": self.computed_at,
            "definition_version": self.definition_version,
            "late": self.late,
        }
        for entity, key in zip(feature_set.entities, self.keys, strict=True):
            record[entity.key_field] = key
        record.update(zip(feature_set.feature_names, self.values, strict=True))
        return record

    @classmethod
    def from_avro(cls, feature_set: FeatureSet, data: Mapping[str, Any]) -> FeatureVector:
        return cls(
            event_id=data["event_id"],
            keys=tuple(str(data[e.key_field]) for e in feature_set.entities),
            event_time=int(data["event_time"]),
            source_timestamp=int(data["source_timestamp"]),
            source_partition=int(data["source_partition"]),
            source_offset=int(data["source_offset"]),
            computed_at=int(data["computed_at"]),
            definition_version=str(data["definition_version"]),
            late=bool(data["late"]),
            values=tuple(float(data[n]) for n in feature_set.feature_names),
        )


def feature_vector_schema(feature_set: FeatureSet) -> dict[str, Any]:
    """The Avro `FeatureVector` schema for `feature_set` (its version in the doc)."""
    fields: list[dict[str, Any]] = [{"name": n, "type": t} for n, t in META_FIELDS]
    fields.extend({"name": e.key_field, "type": "string"} for e in feature_set.entities)
    fields.extend({"name": n, "type": "double"} for n in feature_set.feature_names)
    return {
        "type": "record",
        "name": "FeatureVector",
        "namespace": f"skewless.features.{feature_set.name}",
        "doc": f"Feature vector of feature set {feature_set.name!r}",
        "fields": fields,
    }
