"""The feature vector: one per valid event, identical in Redis, Delta and the features topic.

Its Avro schema is derived from the feature set, so the contract cannot drift from the
definition: metadata fields first, then one `double` per feature in vector order.

`FeatureVectorWriter` writes that record's Avro binary body directly: fastavro's generic
per-field walk (plus building the dict for it) is ~5x slower on the feature worker's hot
path. Its bytes equal fastavro's `schemaless_writer` output; tests prove it on random
vectors.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

import msgspec

from schemas._json_input import FieldError, to_datum
from schemas.codec import EncodeError
from schemas.features.definition import FeatureSet

__all__ = ["META_FIELDS", "FeatureVector", "FeatureVectorWriter", "feature_vector_schema"]

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


# Avro varints, 14 bits at a time: `_LAST[z]` is the whole varint of z < 2**14, `_MORE[z]`
# the two bytes of a 14-bit group that more groups follow.
_GROUP = 0x4000
_MASK = _GROUP - 1
_LAST = [bytes((z,)) if z < 0x80 else bytes((z & 0x7F | 0x80, z >> 7)) for z in range(_GROUP)]
_MORE = [bytes((z & 0x7F | 0x80, z >> 7 | 0x80)) for z in range(_GROUP)]
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def _long(n: int) -> bytes:
    """Avro `long`: zigzag varint; `OverflowError` outside the signed 64-bit range."""
    z = (n << 1) ^ (n >> 63)
    if z < _GROUP:
        if z >= 0:
            return _LAST[z]
    elif z < 1 << 28:  # offsets
        return _MORE[z & _MASK] + _LAST[z >> 14]
    elif z < 1 << 42:  # epoch millis until 2039
        return _MORE[z & _MASK] + _MORE[z >> 14 & _MASK] + _LAST[z >> 28]
    elif z < 1 << 64:
        out = b""
        while z >= _GROUP:
            out += _MORE[z & _MASK]
            z >>= 14
        return out + _LAST[z]
    msg = f"{n} is outside the Avro long range"
    raise OverflowError(msg)


def _string(text: str) -> bytes:
    """Avro `string`: UTF-8 byte length as a `long`, then the bytes."""
    data = text.encode()
    size = len(data)
    return (_LAST[size << 1] if size < _GROUP >> 1 else _long(size)) + data


class FeatureVectorWriter:
    """Writes the Avro binary body of `feature_vector_schema(feature_set)` for a vector.

    The same bytes as fastavro's `schemaless_writer` on `vector.to_avro(feature_set)`,
    without framing (`AvroCodec.frame` adds it). A vector that does not fit the schema
    (key or value count, int range, types, unencodable text) is an `EncodeError`.
    """

    __slots__ = ("_doubles", "_feature_set", "_keys", "_schema", "_version", "_version_avro")

    def __init__(self, feature_set: FeatureSet) -> None:
        self._feature_set = feature_set
        self._schema = feature_vector_schema(feature_set)
        self._keys = len(feature_set.entities)
        self._doubles = struct.Struct(f"<{len(feature_set.feature_names)}d")
        self._version = feature_set.version
        self._version_avro = _string(self._version)

    def body(self, vector: FeatureVector) -> bytes:
        """The Avro binary body of `vector` (no header)."""
        keys = vector.keys
        version = vector.definition_version
        try:
            if len(keys) != self._keys or not _INT_MIN <= vector.source_partition <= _INT_MAX:
                raise self._error(vector, None)
            parts = [
                _string(vector.event_id),
                _long(vector.event_time),
                _long(vector.source_timestamp),
                _long(vector.source_partition),
                _long(vector.source_offset),
                _long(vector.computed_at),
                self._version_avro if version == self._version else _string(version),
                b"\x01" if vector.late else b"\x00",
                *map(_string, keys),
                self._doubles.pack(*vector.values),
            ]
        except (ValueError, TypeError, AttributeError, OverflowError, struct.error) as exc:
            raise self._error(vector, exc) from exc
        return b"".join(parts)

    def _error(self, vector: FeatureVector, exc: Exception | None) -> EncodeError:
        """The error naming what does not fit: a count, else the field, else `exc`."""
        fs = self._feature_set
        where = f"cannot encode the feature vector of event {vector.event_id!r} for {fs.name!r}"
        for what, expected, got in (
            ("keys", [e.key_field for e in fs.entities], vector.keys),
            ("values", list(fs.feature_names), vector.values),
        ):
            if len(got) != len(expected):
                return EncodeError(
                    f"{where}: expected {len(expected)} {what} {expected!r}, got {len(got)}"
                )
        try:
            to_datum(self._schema, vector.to_avro(fs), named={}, from_json=False)
        except FieldError as field_error:
            return EncodeError(f"{where}: {field_error}")
        return EncodeError(f"{where}: {type(exc).__name__}: {exc}")
