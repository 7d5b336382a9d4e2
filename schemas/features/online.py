"""The online store layout: how a feature vector sits in Redis, shared by writer and reader.

One hash per entity: `<prefix>:<feature set>:<entity>:<id>`, holding the newest vector of
that entity's events. Feature values are stored as `repr(float)` (exact round trip, bit for
bit); metadata fields start with `_`. The entity's newer-than order key is
`(event_time, source_partition, source_offset)`.
"""

from __future__ import annotations

from collections.abc import Mapping

from schemas.features.definition import FeatureSet
from schemas.features.vector import FeatureVector

__all__ = ["ORDER_FIELDS", "decode_hash", "encode_hash", "entity_key"]

ORDER_FIELDS = ("_event_time", "_partition", "_offset")


def entity_key(feature_set: FeatureSet, entity: str, entity_id: str, *, prefix: str) -> str:
    """The Redis key of one entity's online vector."""
    return f"{prefix}:{feature_set.name}:{entity}:{entity_id}"


def encode_hash(feature_set: FeatureSet, vector: FeatureVector) -> dict[str, str]:
    """The hash fields of `vector`: order fields, metadata, then one field per feature."""
    fields = {
        "_event_time": str(vector.event_time),
        "_partition": str(vector.source_partition),
        "_offset": str(vector.source_offset),
        "_event_id": vector.event_id,
        "_source_timestamp": str(vector.source_timestamp),
        "_computed_at": str(vector.computed_at),
        "_version": vector.definition_version,
        "_late": "1" if vector.late else "0",
        "_keys": "\x1f".join(vector.keys),
    }
    for name, value in zip(feature_set.feature_names, vector.values, strict=True):
        fields[name] = repr(value)
    return fields


def decode_hash(feature_set: FeatureSet, fields: Mapping[str, str]) -> FeatureVector:
    """The vector stored in a hash written by `encode_hash` (KeyError if incomplete)."""
    return FeatureVector(
        event_id=fields["_event_id"],
        keys=tuple(fields["_keys"].split("\x1f")),
        event_time=int(fields["_event_time"]),
        source_timestamp=int(fields["_source_timestamp"]),
        source_partition=int(fields["_partition"]),
        source_offset=int(fields["_offset"]),
        computed_at=int(fields["_computed_at"]),
        definition_version=fields["_version"],
        late=fields["_late"] == "1",
        values=tuple(float(fields[n]) for n in feature_set.feature_names),
    )
