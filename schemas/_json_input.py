"""Check a datum against a parsed Avro schema and convert it to the decoder's dict shape.

Used for JSON input (hand testing with kcat) and to explain why `AvroCodec.encode`
rejected a record. The result has the shape `fastavro.schemaless_reader` returns on a
schema with logical types stripped: records are dicts with every field present, enums
are their symbol, unions are the bare value, `timestamp-millis` is int epoch millis.

With ``from_json=True`` the JSON conventions apply: timestamps may also be ISO-8601
strings with a timezone, bytes and fixed are strings of code points 0-255 (Avro's JSON
encoding), a union value may be tagged (``{"string": "DE"}``), and fields with a default
may be missing. With ``from_json=False`` values must already have their Python types.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["FieldError", "to_datum"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNIT = {"timestamp-millis": timedelta(milliseconds=1), "timestamp-micros": timedelta(0, 0, 1)}
_INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_PRIMITIVES = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "bytes", "string"},
)
_KINDS: dict[type, str] = {
    type(None): "null",
    bool: "boolean",
    int: "int",
    float: "float",
    str: "string",
    bytes: "bytes",
    bytearray: "bytes",
    dict: "object",
    list: "array",
}
_MAX_REPR = 80


class FieldError(ValueError):
    """A datum does not fit its schema; the message names the field, expected and got."""


def to_datum(schema: Any, value: Any, *, named: Mapping[str, Any], from_json: bool) -> Any:
    """Validate `value` against the parsed `schema` and return it in decoded form.

    `named` maps full names to named types (fastavro's ``__named_schemas``).
    Raises `FieldError`.
    """
    return _Converter(named, from_json).convert(schema, value, "")


def _got(value: Any) -> str:
    kind = _KINDS.get(type(value), type(value).__name__)
    text = repr(value)
    if len(text) > _MAX_REPR:
        text = text[: _MAX_REPR - 3] + "..."
    return f"{kind} {text}"


def _mismatch(path: str, expected: str, value: Any, note: str = "") -> FieldError:
    where = f"field {path!r}" if path else "value"
    return FieldError(f"{where}: expected {expected}, got {_got(value)}{note}")


def _type_name(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union"
    if "name" in schema:
        return str(schema["name"])
    if "logicalType" in schema:
        return f"{schema['type']} ({schema['logicalType']})"
    return str(schema["type"])


class _Converter:
    """Walks a schema and a value together; `path` is the dotted field path so far."""

    def __init__(self, named: Mapping[str, Any], from_json: bool) -> None:
        self._named = named
        self._json = from_json

    def convert(self, schema: Any, value: Any, path: str) -> Any:
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return self._primitive(schema, None, value, path)
            return self.convert(self._named[schema], value, path)
        if isinstance(schema, list):
            return self._union(schema, value, path)
        kind = schema["type"]
        if kind == "record" or kind == "error":
            return self._record(schema, value, path)
        if kind == "enum":
            symbols = schema["symbols"]
            if isinstance(value, str) and value in symbols:
                return value
            raise _mismatch(path, f"one of {symbols!r} ({schema['name']})", value)
        if kind == "array":
            if not isinstance(value, list):
                raise _mismatch(path, "array", value)
            items = schema["items"]
            return [self.convert(items, item, f"{path}[{i}]") for i, item in enumerate(value)]
        if kind == "map":
            if not isinstance(value, Mapping):
                raise _mismatch(path, "map", value)
            return {
                self._map_key(key, path): self.convert(schema["values"], item, f"{path}[{key!r}]")
                for key, item in value.items()
            }
        if kind == "fixed":
            data = self._bytes(value, path, f"fixed {schema['name']}")
            if len(data) != schema["size"]:
                raise _mismatch(path, f"{schema['size']} bytes ({schema['name']})", value)
            return data
        if isinstance(kind, str) and kind in _PRIMITIVES:
            return self._primitive(kind, schema.get("logicalType"), value, path)
        return self.convert(kind, value, path)

    def _map_key(self, key: Any, path: str) -> str:
        if not isinstance(key, str):
            raise _mismatch(path, "map with string keys", key)
        return key

    def _record(self, schema: Mapping[str, Any], value: Any, path: str) -> dict[str, Any]:
        name = schema["name"]
        if not isinstance(value, Mapping):
            raise _mismatch(path, f"record {name}", value)
        fields = schema["fields"]
        unknown = sorted(set(value) - {field["name"] for field in fields}, key=str)
        if unknown:
            where = f"field {path!r}" if path else f"record {name}"
            msg = (
                f"{where}: unknown field(s) {unknown!r}; {name} has {[f['name'] for f in fields]!r}"
            )
            raise FieldError(msg)
        out: dict[str, Any] = {}
        for field in fields:
            fname = field["name"]
            fpath = f"{path}.{fname}" if path else fname
            if fname in value:
                out[fname] = self.convert(field["type"], value[fname], fpath)
            elif "default" in field:
                # Defaults are written in Avro's JSON form, whatever the input's form.
                default = _Converter(self._named, from_json=True)
                out[fname] = default.convert(field["type"], field["default"], fpath)
            else:
                expected = _type_name(field["type"])
                msg = f"field {fpath!r}: missing required field (type {expected})"
                raise FieldError(msg)
        return out

    def _union(self, branches: list[Any], value: Any, path: str) -> Any:
        if self._json and isinstance(value, Mapping) and len(value) == 1:
            ((tag, inner),) = value.items()
            for branch in branches:
                full = branch if isinstance(branch, str) else branch.get("name", branch["type"])
                if tag in (full, full.rsplit(".", 1)[-1]):
                    return self.convert(branch, inner, path)
        for branch in branches:
            try:
                return self.convert(branch, value, path)
            except FieldError:
                continue
        expected = f"one of {[_type_name(b) for b in branches]!r}"
        raise _mismatch(path, expected, value)

    def _bytes(self, value: Any, path: str, expected: str) -> bytes:
        if isinstance(value, bytes | bytearray) and not self._json:
            return bytes(value)
        if isinstance(value, str) and self._json:
            try:
                return value.encode("latin-1")
            except UnicodeEncodeError as exc:
                note = " (JSON bytes are strings of code points 0-255)"
                raise _mismatch(path, expected, value, note) from exc
        raise _mismatch(path, expected, value)

    def _primitive(self, kind: str, logical: str | None, value: Any, path: str) -> Any:
        if kind == "null":
            if value is None:
                return None
        elif kind == "boolean":
            if isinstance(value, bool):
                return value
        elif kind == "int" or kind == "long":
            if logical in _UNIT and self._json and isinstance(value, str):
                return self._timestamp(value, _UNIT[logical], path)
            if isinstance(value, int) and not isinstance(value, bool):
                low, high = _INT_RANGE[kind]
                if low <= value <= high:
                    return value
                raise _mismatch(path, f"{kind} in [{low}, {high}]", value)
            if logical in _UNIT:
                shape = "int epoch " + logical.removeprefix("timestamp-")
                shape += " or ISO-8601 string with timezone" if self._json else ""
                raise _mismatch(path, f"{kind} ({shape})", value)
        elif kind == "float" or kind == "double":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        elif kind == "string":
            if isinstance(value, str):
                return value
        elif kind == "bytes":
            return self._bytes(value, path, "bytes")
        raise _mismatch(path, kind, value)

    def _timestamp(self, text: str, unit: timedelta, path: str) -> int:
        expected = "ISO-8601 timestamp with timezone"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise _mismatch(path, expected, text) from exc
        if moment.tzinfo is None:
            raise _mismatch(path, expected, text, " (no timezone)")
        return (moment - _EPOCH) // unit
