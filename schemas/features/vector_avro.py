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

from schemas._json_input import FieldError, to_datum
from schemas.codec import DecodeError, EncodeError, canonical_fingerprint
from schemas.features.definition import FeatureSet
from schemas.features.vector import FeatureVector, feature_vector_schema

__all__ = ["FeatureVectorReader", "FeatureVectorWriter"]


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


# -- reading -------------------------------------------------------------------------


class _BadBodyError(Exception):
    """A check in `FeatureVectorReader.read` failed; `_Walk` finds which one and why."""


_SHIFTS = tuple(range(0, 70, 7))  # a 64-bit varint has at most 10 groups of 7 bits


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The unsigned varint at `pos` and the position after it; over 64 bits is an error."""
    z = 0
    for shift in _SHIFTS:
        b = data[pos]
        pos += 1
        z |= (b & 0x7F) << shift
        if b < 0x80:
            if z >> 64:
                raise _BadBodyError
            return z, pos
    raise _BadBodyError


def _long_at(data: bytes, pos: int) -> tuple[int, int]:
    """The Avro `long` at `pos` and the position after it."""
    z, pos = _varint(data, pos)
    return z >> 1 ^ -(z & 1), pos


# Epoch millis until 2039 are 6-byte varints, read in one unpack: `_M<i>[b]` is the bits
# of byte b as byte i of one, or `_NOT` if b cannot be there (5 continued, then 1 last).
_NOT = 1 << 64
_M0, _M1, _M2, _M3, _M4 = (
    [(b & 0x7F) << 7 * i if b > 0x7F else _NOT for b in range(256)] for i in range(5)
)
_M5 = [b << 35 if b < 0x80 else _NOT for b in range(256)]
_SIX_BYTES = struct.Struct("<6B").unpack_from


def _millis_at(data: bytes, pos: int) -> tuple[int, int]:
    """`_long_at` for a timestamp: a 6-byte varint in one unpack, any other by `_varint`."""
    try:
        b0, b1, b2, b3, b4, b5 = _SIX_BYTES(data, pos)
    except struct.error:  # fewer than 6 bytes left
        return _long_at(data, pos)
    z = _M0[b0] | _M1[b1] | _M2[b2] | _M3[b3] | _M4[b4] | _M5[b5]
    if z >> 42:
        return _long_at(data, pos)
    return z >> 1 ^ -(z & 1), pos + 6


class FeatureVectorReader:
    """Reads the Avro binary body of `feature_vector_schema(feature_set)` into a vector.

    The vector `FeatureVector.from_avro` makes of fastavro's record, for a body written
    with exactly this schema (`AvroCodec.own_body_offset` finds it; other writer schemas
    and framing stay with `AvroCodec`). A body that is not one (truncated, an overlong or
    out-of-range varint, a negative length, bad UTF-8, a boolean byte other than 0 or 1,
    trailing bytes) is a `DecodeError` naming the field, never a wrong vector (fastavro
    reads a boolean byte 2 as true and wraps overlong or out-of-range varints).
    """

    __slots__ = (
        "_doubles",
        "_fields",
        "_fingerprint",
        "_keys",
        "_name",
        "_version",
        "_version_avro",
    )

    def __init__(self, feature_set: FeatureSet) -> None:
        schema = feature_vector_schema(feature_set)
        self._name = f"{schema['namespace']}.{schema['name']}"
        self._fingerprint = canonical_fingerprint(schema)
        self._fields: list[tuple[str, str]] = [
            (f["name"], f["type"] if isinstance(f["type"], str) else f["type"]["type"])
            for f in schema["fields"]
        ]
        self._keys = range(len(feature_set.entities))
        self._doubles = struct.Struct(f"<{len(feature_set.feature_names)}d")
        self._version = feature_set.version
        self._version_avro = _string(self._version)

    @property
    def fingerprint(self) -> bytes:
        """CRC-64-AVRO fingerprint of the schema it reads (as `AvroCodec.fingerprint`)."""
        return self._fingerprint

    def read(self, data: bytes, offset: int = 0) -> FeatureVector:
        """The vector in the body that starts at `offset` and ends with `data`."""
        # A string length < 64 is one byte without its continuation or sign bit (0x81).
        try:
            b = data[offset]
            if b & 0x81:
                event_id, pos = self._text(data, offset)
            else:
                pos = offset + 1 + (b >> 1)
                event_id = data[offset + 1 : pos].decode()
            event_time, pos = _millis_at(data, pos)
            source_timestamp, pos = _millis_at(data, pos)
            partition = data[pos]
            if partition < 0x80:
                pos += 1
            else:
                partition, pos = _varint(data, pos)
                if partition >> 32:
                    raise _BadBodyError
            z, pos = _varint(data, pos)
            computed_at, pos = _millis_at(data, pos)
            if data.startswith(self._version_avro, pos):
                version = self._version
                pos += len(self._version_avro)
            else:
                version, pos = self._text(data, pos)
            late = data[pos]
            if late > 1:
                raise _BadBodyError
            pos += 1
            keys = []
            for _ in self._keys:
                b = data[pos]
                if b & 0x81:
                    key, pos = self._text(data, pos)
                else:
                    end = pos + 1 + (b >> 1)
                    key = data[pos + 1 : end].decode()
                    pos = end
                keys.append(key)
            values = self._doubles.unpack_from(data, pos)
            if pos + self._doubles.size != len(data):
                raise _BadBodyError
        except (_BadBodyError, IndexError, ValueError, struct.error) as exc:
            # A string cut short slices short, but the next field then starts past the end.
            raise self._error(data, offset, exc) from exc
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

    @staticmethod
    def _text(data: bytes, pos: int) -> tuple[str, int]:
        """The Avro `string` at `pos` of any length, and the position after it."""
        z, pos = _varint(data, pos)
        if z & 1:  # a negative length
            raise _BadBodyError
        end = pos + (z >> 1)
        return data[pos:end].decode(), end

    def _error(self, data: bytes, offset: int, exc: Exception) -> DecodeError:
        """The error naming the field `read` failed on: the body walked again, carefully."""
        where = f"cannot decode {self._name}"
        size = len(data)
        schema = f"writer schema {self._fingerprint.hex()}"
        walk = _Walk(data, offset)
        for name, avro_type in self._fields:
            start = walk.pos
            problem = walk.field(avro_type)
            if problem is not None:
                what, detail = problem
                return DecodeError(
                    f"{where}: {what} ({size} bytes, {schema}): field {name!r} ({avro_type}) "
                    f"at byte {start}: {detail}"
                )
        end = walk.pos
        if end != size:
            shown = data[end : end + 16].hex(" ") + (" ..." if size - end > 16 else "")
            return DecodeError(
                f"{where}: {size - end} trailing bytes after the record (record ends at byte "
                f"{end} of {size}, {schema}): {shown}"
            )
        return DecodeError(f"{where}: invalid Avro body ({schema}): {type(exc).__name__}: {exc}")


_TRUNCATED, _INVALID = "truncated payload", "invalid Avro body"


class _Walk:
    """Steps over a body one field at a time with every check, to say what is wrong."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def field(self, avro_type: str) -> tuple[str, str] | None:
        """Step over one field: None, or (problem, detail) if it cannot be read."""
        data, pos = self.data, self.pos
        left = max(len(data) - pos, 0)
        if avro_type in ("double", "boolean"):
            need = 8 if avro_type == "double" else 1
            self.pos += need
            if left < need:
                return _TRUNCATED, f"{need} bytes needed, {left} left"
            if need == 1 and data[pos] > 1:
                return _INVALID, f"byte {data[pos]:02x}, expected 00 or 01"
            return None
        size = 1  # of the varint
        while size <= min(left, 10) and data[pos + size - 1] > 0x7F:
            size += 1
        if size > 10:
            return _INVALID, f"varint longer than 10 bytes: {data[pos : pos + 11].hex(' ')} ..."
        if size > left:
            return _TRUNCATED, f"varint cut short after {left} bytes: {data[pos:].hex(' ')}"
        z = sum((b & 0x7F) << 7 * i for i, b in enumerate(data[pos : pos + size]))
        n = z >> 1 ^ -(z & 1)
        self.pos += size
        if z >> 64 or (avro_type == "int" and z >> 32):
            return _INVALID, f"{n} is outside the Avro {'long' if z >> 64 else 'int'} range"
        if avro_type != "string":
            return None
        if n < 0:
            return f"{_INVALID} (negative length)", f"length {n}"
        text = data[self.pos : self.pos + n]
        self.pos += n
        if len(text) < n:
            return _TRUNCATED, f"a string of {n} bytes, {len(text)} left"
        try:
            text.decode()
        except UnicodeDecodeError as exc:
            return _INVALID, f"not UTF-8: {exc}"
        return None
