"""The `FeatureVector` Avro body, written and read directly on the workers' hot paths.

`FeatureVectorWriter` writes the body of `feature_vector_schema(fs)`: fastavro's generic
per-field walk (plus building the dict for it) is ~5x slower on the feature worker's hot
path. Its bytes equal fastavro's `schemaless_writer` output; tests prove it on random
vectors. `FeatureVectorReader` is its inverse for the scoring worker: it reads a body
written with exactly this schema (`AvroCodec.own_body_offset` says when one is) into the
vector `FeatureVector.from_avro(fs, codec.decode(data))` returns, ~3.5x faster. Framing,
other writer schemas and JSON stay with `AvroCodec`.
"""

from __future__ import annotations

import struct

from schemas._avro_binary import (
    BadBodyError,
    BodySchema,
    long_bytes,
    millis_at,
    string_bytes,
    text_at,
    varint_at,
)
from schemas._json_input import FieldError, to_datum
from schemas.codec import EncodeError
from schemas.features.definition import FeatureSet
from schemas.features.vector import FeatureVector, feature_vector_schema

__all__ = ["FeatureVectorReader", "FeatureVectorWriter"]


_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


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
        self._version_avro = string_bytes(self._version)

    def body(self, vector: FeatureVector) -> bytes:
        """The Avro binary body of `vector` (no header)."""
        keys = vector.keys
        version = vector.definition_version
        try:
            if len(keys) != self._keys or not _INT_MIN <= vector.source_partition <= _INT_MAX:
                raise self._error(vector, None)
            parts = [
                string_bytes(vector.event_id),
                long_bytes(vector.event_time),
                long_bytes(vector.source_timestamp),
                long_bytes(vector.source_partition),
                long_bytes(vector.source_offset),
                long_bytes(vector.computed_at),
                self._version_avro if version == self._version else string_bytes(version),
                b"\x01" if vector.late else b"\x00",
                *map(string_bytes, keys),
                self._doubles.pack(*vector.values),
            ]
        except (ValueError, TypeError, AttributeError, OverflowError, struct.error) as exc:
            raise self._error(vector, exc) from exc
        return b"".join(parts)

    def _error(self, vector: FeatureVector, exc: Exception | None) -> EncodeError:
        """The error naming what does not fit, chained to `exc` (see `body_error`)."""
        error = self._described(vector, exc)
        error.__cause__ = exc
        return error

    def _described(self, vector: FeatureVector, exc: Exception | None) -> EncodeError:
        """What does not fit: a count, else the field, else `exc`."""
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


# -- reading -------------------------------------------------------------------------


class FeatureVectorReader:
    """Reads the Avro binary body of `feature_vector_schema(feature_set)` into a vector.

    The vector `FeatureVector.from_avro` makes of fastavro's record, for a body written
    with exactly this schema (`AvroCodec.own_body_offset` finds it; other writer schemas
    and framing stay with `AvroCodec`). A body that is not one (truncated, an overlong or
    out-of-range varint, a negative length, bad UTF-8, a boolean byte other than 0 or 1,
    trailing bytes) is a `DecodeError` naming the field, never a wrong vector (fastavro
    reads a boolean byte 2 as true and wraps overlong or out-of-range varints).
    """

    __slots__ = ("_body", "_doubles", "_keys", "_version", "_version_avro")

    def __init__(self, feature_set: FeatureSet) -> None:
        schema = feature_vector_schema(feature_set)
        self._body = BodySchema(
            schema,
            [
                (f["name"], f["type"] if isinstance(f["type"], str) else f["type"]["type"])
                for f in schema["fields"]
            ],
        )
        self._keys = range(len(feature_set.entities))
        self._doubles = struct.Struct(f"<{len(feature_set.feature_names)}d")
        self._version = feature_set.version
        self._version_avro = string_bytes(self._version)

    @property
    def fingerprint(self) -> bytes:
        """CRC-64-AVRO fingerprint of the schema it reads (as `AvroCodec.fingerprint`)."""
        return self._body.fingerprint

    def read(self, data: bytes, offset: int = 0) -> FeatureVector:
        """The vector in the body that starts at `offset` and ends with `data`."""
        try:
            event_id, pos = text_at(data, offset)
            event_time, pos = millis_at(data, pos)
            source_timestamp, pos = millis_at(data, pos)
            partition = data[pos]
            if partition < 0x80:
                pos += 1
            else:
                partition, pos = varint_at(data, pos)
                if partition >> 32:
                    raise BadBodyError
            z, pos = varint_at(data, pos)
            computed_at, pos = millis_at(data, pos)
            if data.startswith(self._version_avro, pos):
                version = self._version
                pos += len(self._version_avro)
            else:
                version, pos = text_at(data, pos)
            late = data[pos]
            if late > 1:
                raise BadBodyError
            pos += 1
            keys = []
            for _ in self._keys:
                key, pos = text_at(data, pos)
                keys.append(key)
            values = self._doubles.unpack_from(data, pos)
            if pos + self._doubles.size != len(data):
                raise BadBodyError
        except (BadBodyError, IndexError, ValueError, struct.error) as exc:
            # A string cut short slices short, but the next field then starts past the end.
            raise self._body.error(data, offset, exc) from exc
        return FeatureVector(
            event_id,
            tuple(keys),
            event_time,
            source_timestamp,
            partition >> 1 ^ -(partition & 1),
            z >> 1 ^ -(z & 1),
            computed_at,
            version,
            late == 1,
            values,
        )
