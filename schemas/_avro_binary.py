"""Avro binary bodies by hand: varints and strings read and written, and the error of a
corrupt body.

Shared by the direct readers and writers of own-schema bodies
(`schemas.features.vector_avro`, `schemas.records_avro`). A reader's fast path reads with
few checks and raises `BadBodyError` (or lets `IndexError`, `ValueError`, `struct.error`
out) on anything odd; then `body_error` walks the body again field by field, with every
check, to build the `DecodeError` that names the field, where it starts, what was
expected and what was there.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from schemas.codec import DecodeError, canonical_fingerprint

__all__ = [
    "BadBodyError",
    "BodySchema",
    "body_error",
    "enum_at",
    "enum_table",
    "long_at",
    "long_bytes",
    "millis_at",
    "string_bytes",
    "text_at",
    "type_label",
    "varint_at",
]


class BadBodyError(Exception):
    """A check of a fast reader failed; `body_error` finds which one and why."""


_SHIFTS = tuple(range(0, 70, 7))  # a 64-bit varint has at most 10 groups of 7 bits


def varint_at(data: bytes, pos: int) -> tuple[int, int]:
    """The unsigned varint at `pos` and the position after it; over 64 bits is an error."""
    z = 0
    for shift in _SHIFTS:
        b = data[pos]
        pos += 1
        z |= (b & 0x7F) << shift
        if b < 0x80:
            if z >> 64:
                raise BadBodyError
            return z, pos
    raise BadBodyError


def long_at(data: bytes, pos: int) -> tuple[int, int]:
    """The Avro `long` at `pos` and the position after it."""
    z, pos = varint_at(data, pos)
    return z >> 1 ^ -(z & 1), pos


# Epoch millis until 2039 are 6-byte varints, read in one unpack: `_M<i>[b]` is the bits
# of byte b as byte i of one, or `_NOT` if b cannot be there (5 continued, then 1 last).
_NOT = 1 << 64
_M0, _M1, _M2, _M3, _M4 = (
    [(b & 0x7F) << 7 * i if b > 0x7F else _NOT for b in range(256)] for i in range(5)
)
_M5 = [b << 35 if b < 0x80 else _NOT for b in range(256)]
_SIX_BYTES = struct.Struct("<6B").unpack_from


def millis_at(data: bytes, pos: int) -> tuple[int, int]:
    """`long_at` for a timestamp: a 6-byte varint in one unpack, any other by `varint_at`."""
    try:
        b0, b1, b2, b3, b4, b5 = _SIX_BYTES(data, pos)
    except struct.error:  # fewer than 6 bytes left
        return long_at(data, pos)
    z = _M0[b0] | _M1[b1] | _M2[b2] | _M3[b3] | _M4[b4] | _M5[b5]
    if z >> 42:
        return long_at(data, pos)
    return z >> 1 ^ -(z & 1), pos + 6


def text_at(data: bytes, pos: int) -> tuple[str, int]:
    """The Avro `string` at `pos` of any length, and the position after it."""
    b = data[pos]
    if not b & 0x81:  # a length < 64: one varint byte, no continuation or sign bit
        end = pos + 1 + (b >> 1)
        return data[pos + 1 : end].decode(), end
    z, pos = varint_at(data, pos)
    if z & 1:  # a negative length
        raise BadBodyError
    end = pos + (z >> 1)
    return data[pos:end].decode(), end


T = TypeVar("T")


def enum_table(symbols: Sequence[T]) -> list[T | None]:
    """For `enum_at`: each byte's symbol where the byte is a whole index (00, 02, 04 ...)."""
    table: list[T | None] = [None] * 256
    table[0 : 2 * len(symbols) : 2] = symbols
    return table


def enum_at(
    data: bytes, pos: int, table: Sequence[T | None], symbols: Sequence[T]
) -> tuple[T, int]:
    """The enum symbol at `pos` and the position after it: one byte looked up in `table`
    (`enum_table(symbols)`), any other encoding of an index read as a varint.
    """
    symbol = table[data[pos]]
    if symbol is not None:
        return symbol, pos + 1
    index, pos = long_at(data, pos)
    if not 0 <= index < len(symbols):
        raise BadBodyError
    return symbols[index], pos


# -- writing -----------------------------------------------------------------------

# Avro varints, 14 bits at a time: `_LAST[z]` is the whole varint of z < 2**14, `_MORE[z]`
# the two bytes of a 14-bit group that more groups follow.
_GROUP = 0x4000
_MASK = _GROUP - 1
_LAST = [bytes((z,)) if z < 0x80 else bytes((z & 0x7F | 0x80, z >> 7)) for z in range(_GROUP)]
_MORE = [bytes((z & 0x7F | 0x80, z >> 7 | 0x80)) for z in range(_GROUP)]


def long_bytes(n: int) -> bytes:
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


def string_bytes(text: str) -> bytes:
    """Avro `string`: UTF-8 byte length as a `long`, then the bytes."""
    data = text.encode()
    size = len(data)
    return (_LAST[size << 1] if size < _GROUP >> 1 else long_bytes(size)) + data


# -- the error -----------------------------------------------------------------------


def type_label(avro_type: Any) -> str:
    """A field's type in messages: ``long``, ``enum Channel``, ``union [null, string]``."""
    if isinstance(avro_type, list):
        return f"union [{', '.join(map(type_label, avro_type))}]"
    if isinstance(avro_type, Mapping):
        if avro_type["type"] == "enum":
            return f"enum {avro_type['name']}"
        return type_label(avro_type["type"])
    return str(avro_type)


class BodySchema:
    """The one schema a direct reader reads: its full name, fingerprint and fields.

    `fields` default to the schema's (name, type) pairs; `error` is `body_error` for it.
    """

    __slots__ = ("fields", "fingerprint", "name")

    def __init__(
        self, schema: Mapping[str, Any], fields: Sequence[tuple[str, Any]] | None = None
    ) -> None:
        self.name = f"{schema['namespace']}.{schema['name']}"
        self.fingerprint = canonical_fingerprint(schema)
        self.fields = (
            list(fields)
            if fields is not None
            else [(f["name"], f["type"]) for f in schema["fields"]]
        )

    def error(self, data: bytes, offset: int, exc: Exception) -> DecodeError:
        """The error naming the field a fast read failed on: the body walked again, carefully."""
        return body_error(self.name, self.fingerprint, self.fields, data, offset, exc)


def body_error(
    name: str,
    fingerprint: bytes,
    fields: Sequence[tuple[str, Any]],
    data: bytes,
    offset: int,
    exc: Exception,
) -> DecodeError:
    """The error of a fast read of record `name` that raised `exc`: the body walked again.

    `fields` are the schema's (name, type) pairs, the type as in the schema (a primitive
    name, an enum, a logical type or a union of those). The error comes chained to `exc`:
    compiled (setup.py), `raise error from exc` does not set the cause.
    """
    size = len(data)
    schema = f"writer schema {fingerprint.hex()}"
    walk = _Walk(data, offset)
    message = _first_problem(walk, fields, f"({size} bytes, {schema})")
    end = walk.pos
    if message is None and end != size:
        shown = data[end : end + 16].hex(" ") + (" ..." if size - end > 16 else "")
        message = (
            f"{size - end} trailing bytes after the record (record ends at byte "
            f"{end} of {size}, {schema}): {shown}"
        )
    elif message is None:
        message = f"invalid Avro body ({schema}): {type(exc).__name__}: {exc}"
    error = DecodeError(f"cannot decode {name}: {message}")
    error.__cause__ = exc
    return error


def _first_problem(walk: _Walk, fields: Sequence[tuple[str, Any]], context: str) -> str | None:
    """The first field `walk` finds wrong, described; None when every field reads."""
    for field, avro_type in fields:
        start = walk.pos
        problem = walk.field(avro_type)
        if problem is not None:
            what, detail = problem
            label = type_label(avro_type)
            return f"{what} {context}: field {field!r} ({label}) at byte {start}: {detail}"
    return None


_TRUNCATED, _INVALID = "truncated payload", "invalid Avro body"
_Problem = tuple[str, str]


class _Walk:
    """Steps over a body one field at a time with every check, to say what is wrong."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def field(self, avro_type: Any) -> _Problem | None:
        """Step over one field: None, or (problem, detail) if it cannot be read."""
        if isinstance(avro_type, list):
            return self._choice("union", [type_label(t) for t in avro_type], avro_type)
        if isinstance(avro_type, Mapping):
            if avro_type["type"] == "enum":
                return self._choice("enum", avro_type["symbols"], None)
            avro_type = avro_type["type"]
        if avro_type == "null":
            return None
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
        n, problem = self._varint("int" if avro_type == "int" else "long")
        if problem is not None or avro_type != "string":
            return problem
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

    def _choice(
        self, what: str, names: Sequence[str], branches: Sequence[Any] | None
    ) -> _Problem | None:
        """Step over an enum symbol or a union branch (`branches`), by its index."""
        n, problem = self._varint("int")
        if problem is not None:
            return problem
        if not 0 <= n < len(names):
            last = "or 1" if len(names) == 2 else f"to {len(names) - 1}"
            return _INVALID, f"{what} index {n}, expected 0 {last} ({', '.join(names)})"
        return None if branches is None else self.field(branches[n])

    def _varint(self, avro_type: str) -> tuple[int, _Problem | None]:
        """Step over an `int` or `long` varint: its value, or a problem."""
        data, pos = self.data, self.pos
        left = max(len(data) - pos, 0)
        size = 1  # of the varint
        while size <= min(left, 10) and data[pos + size - 1] > 0x7F:
            size += 1
        if size > 10:
            shown = data[pos : pos + 11].hex(" ")
            return 0, (_INVALID, f"varint longer than 10 bytes: {shown} ...")
        if size > left:
            return 0, (_TRUNCATED, f"varint cut short after {left} bytes: {data[pos:].hex(' ')}")
        z = sum((b & 0x7F) << 7 * i for i, b in enumerate(data[pos : pos + size]))
        n = z >> 1 ^ -(z & 1)
        self.pos += size
        if z >> 64 or (avro_type == "int" and z >> 32):
            return n, (_INVALID, f"{n} is outside the Avro {'long' if z >> 64 else 'int'} range")
        return n, None
