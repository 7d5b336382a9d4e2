"""Avro codec for Kafka values: single-object or Confluent framing out, those or JSON in.

Encoding writes Avro single-object encoding (``C3 01`` + 8-byte little-endian
CRC-64-AVRO fingerprint of the writer's Parsing Canonical Form + Avro binary body), or
the Confluent wire format (``00`` + 4-byte big-endian schema id + body) when a schema
registry client is given. Decoding detects the framing from the first bytes, and also
accepts a JSON object (for hand testing with kcat).

Values are Avro's base types: every logical type reads and writes as its underlying
type, so ``timestamp-millis`` is an ``int`` of epoch milliseconds both ways (exact and
faster than datetimes; `schemas.records` `from_avro` takes ints). Decoded records are
dicts with every field of the reader schema present.

Errors::

    ContractError (schemas.errors)
    ├── DecodeError    bytes that cannot be read: empty, unknown framing, unknown schema
    │                  fingerprint or id, truncated, trailing bytes, bad JSON or field
    └── EncodeError    a record that does not fit the schema (field, expected, got)

An `AvroCodec` is safe to share between threads: schemas are parsed once in
``__init__``; per call there is only a fresh `io.BytesIO` and the fastavro call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from io import BytesIO
from typing import TYPE_CHECKING, Any, cast

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint as _fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form

from schemas._json_input import FieldError, to_datum
from schemas.errors import ContractError

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

__all__ = [
    "AvroCodec",
    "DecodeError",
    "EncodeError",
    "Framing",
    "canonical_fingerprint",
    "detect_framing",
]

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
_SO_HEADER_LEN = 10  # magic (2) + CRC-64-AVRO fingerprint (8)
CONFLUENT_MAGIC = b"\x00"
_CF_HEADER_LEN = 5  # magic (1) + schema id (4, big-endian)
_JSON_START = frozenset(b" \t\r\n{")
_SHOW_BYTES = 16


class DecodeError(ContractError):
    """Bytes that cannot be decoded into the codec's record."""


class EncodeError(ContractError):
    """A record that cannot be encoded with the codec's schema."""


class Framing(StrEnum):
    """How a Kafka value is framed."""

    SINGLE_OBJECT = "single-object"
    CONFLUENT = "confluent"
    JSON = "json"


def _hex(data: bytes) -> str:
    shown = bytes(data[:_SHOW_BYTES]).hex(" ")
    return shown + (" ..." if len(data) > _SHOW_BYTES else "")


def detect_framing(data: bytes) -> Framing:
    """The framing of `data`, from its first bytes; `DecodeError` if none fits."""
    if not data:
        msg = "empty payload: expected Avro single-object, Confluent or JSON bytes"
        raise DecodeError(msg)
    if data[:2] == SINGLE_OBJECT_MAGIC:
        return Framing.SINGLE_OBJECT
    if data[:1] == CONFLUENT_MAGIC:
        return Framing.CONFLUENT
    if data[0] in _JSON_START and bytes(data).lstrip()[:1] == b"{":
        return Framing.JSON
    msg = (
        f"unknown framing: first bytes {_hex(data)}; expected c3 01 (Avro single-object), "
        "00 (Confluent) or a JSON object"
    )
    raise DecodeError(msg)


def _strip(schema: Any, *, logical: bool) -> Any:
    """A deep copy of `schema` without fastavro's markers (and logical types if asked)."""
    if isinstance(schema, list):
        return [_strip(branch, logical=logical) for branch in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("__") or (key == "logicalType" and logical):
            continue
        if key in ("type", "items", "values", "fields"):
            value = _strip(value, logical=logical)
        out[key] = value
    return out


def _parse(schema: Any, what: str) -> dict[str, Any]:
    try:
        parsed = parse_schema(_strip(schema, logical=False))
    except Exception as exc:
        msg = f"invalid Avro schema for {what}: {exc}"
        raise ContractError(msg) from exc
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        got = parsed.get("type") if isinstance(parsed, dict) else parsed
        msg = f"{what}: expected an Avro record schema, got type {got!r}"
        raise ContractError(msg)
    return parsed


def canonical_fingerprint(schema: Mapping[str, Any]) -> bytes:
    """CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form, 8 bytes little-endian.

    The bytes that follow ``C3 01`` in single-object encoding; `schema` may be raw or parsed.
    """
    try:
        canonical = to_parsing_canonical_form(parse_schema(_strip(schema, logical=False)))
    except Exception as exc:
        msg = f"invalid Avro schema for a fingerprint: {exc}"
        raise ContractError(msg) from exc
    return bytes.fromhex(_fastavro_fingerprint(canonical, "CRC-64-AVRO"))


@dataclass(frozen=True, slots=True)
class _Writer:
    """A writer schema the decoder can read, resolved against the reader schema."""

    schema: dict[str, Any]  # parsed, logical types stripped
    reader: dict[str, Any] | None  # None when identical to the writer schema
    label: str  # for messages: fingerprint hex or Confluent id


class AvroCodec:
    """Encode and decode one record type; parse once, then reuse for every record.

    `schema` is the reader and writer schema (raw dict or fastavro-parsed).
    `writer_schemas` are older or newer versions this codec can also read: their data is
    resolved to `schema` (added fields take their defaults, removed ones are dropped).
    With a `registry`, `encode` writes the Confluent wire format under `subject`
    (default ``<topic>-value`` when `topic` is given, else the record's full name); the
    schema is registered on the first `encode`, and ids met in `decode` are looked up
    once each and cached.
    """

    def __init__(
        self,
        schema: Mapping[str, Any],
        *,
        writer_schemas: Sequence[Mapping[str, Any]] = (),
        registry: SchemaRegistryClient | None = None,
        subject: str | None = None,
        topic: str | None = None,
    ) -> None:
        self._schema = _parse(schema, "codec schema")
        self._name: str = self._schema["name"]
        self._plain = _parse(_strip(self._schema, logical=True), "codec schema")
        self._fingerprint = canonical_fingerprint(self._schema)
        self._header = SINGLE_OBJECT_MAGIC + self._fingerprint
        own = _Writer(self._plain, None, self._fingerprint.hex())
        self._by_fingerprint: dict[bytes, _Writer] = {self._fingerprint: own}
        for writer in writer_schemas:
            self.add_writer_schema(writer)
        self._registry = registry
        if subject is None:
            subject = f"{topic}-value" if topic is not None else self._name
        self._subject = subject
        self._by_id: dict[int, _Writer] = {}
        self._confluent_header: bytes | None = None

    @property
    def name(self) -> str:
        """Full name of the record, e.g. ``skewless.Transaction``."""
        return self._name

    @property
    def fingerprint(self) -> bytes:
        """CRC-64-AVRO fingerprint of the schema, as written after ``C3 01``."""
        return self._fingerprint

    @property
    def schema(self) -> dict[str, Any]:
        """The fastavro-parsed schema, logical types included (do not mutate)."""
        return self._schema

    @property
    def subject(self) -> str:
        """The schema registry subject `encode` registers under (with a registry)."""
        return self._subject

    def add_writer_schema(self, schema: Mapping[str, Any]) -> bytes:
        """Make data written with `schema` readable; returns its fingerprint."""
        parsed = _parse(schema, f"writer schema for {self._name}")
        fp = canonical_fingerprint(parsed)
        if fp not in self._by_fingerprint:
            self._by_fingerprint[fp] = self._resolved(parsed, fp.hex())
        return fp

    def _resolved(self, writer: dict[str, Any], label: str) -> _Writer:
        plain = _parse(_strip(writer, logical=True), "writer schema")
        if canonical_fingerprint(plain) == self._fingerprint:
            return _Writer(self._plain, None, label)
        return _Writer(plain, self._plain, label)

    # -- encoding ------------------------------------------------------------------

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """Avro bytes for `record` (single-object, or Confluent with a registry).

        Fields with a default may be missing; unknown fields, wrong types, bad enum
        symbols and out-of-range ints are an `EncodeError`. Types are not re-checked on
        this hot path beyond what fastavro does, and fastavro coerces what it can: a float
        for a long is truncated, a bool is 0/1, a numeric string for a double is parsed.
        Pass ints for timestamps (epoch millis).
        """
        buf = BytesIO()
        try:
            schemaless_writer(
                buf, self._plain, record, strict_allow_default=True, disable_tuple_notation=True
            )
        except Exception as exc:
            raise self._encode_error(record, exc) from exc
        return self.frame(buf.getvalue())

    def frame(self, body: bytes) -> bytes:
        """`body`, an Avro binary body written with this codec's schema, behind its header.

        The header `encode` writes: single-object, or Confluent with a registry (the
        schema is registered on first use). `body` is not checked.
        """
        header = self._header if self._registry is None else self._confluent_header
        if header is None:
            header = self._register()
        return header + body

    def _encode_error(self, record: Any, exc: Exception) -> EncodeError:
        try:
            to_datum(self._schema, record, named=self._named(), from_json=False)
        except FieldError as field_error:
            return EncodeError(f"cannot encode {self._name}: {field_error}")
        return EncodeError(f"cannot encode {self._name}: {type(exc).__name__}: {exc}")

    def _named(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self._schema.get("__named_schemas", {}))

    def _register(self) -> bytes:
        from confluent_kafka.schema_registry import Schema

        assert self._registry is not None
        text = json.dumps(_strip(self._schema, logical=False))
        try:
            schema_id = self._registry.register_schema(self._subject, Schema(text, "AVRO"))
        except Exception as exc:
            msg = (
                f"cannot register {self._name} under subject {self._subject!r} "
                f"in the schema registry: {type(exc).__name__}: {exc}"
            )
            raise EncodeError(msg) from exc
        self._by_id[schema_id] = _Writer(self._plain, None, f"id {schema_id}")
        header = CONFLUENT_MAGIC + schema_id.to_bytes(4, "big")
        self._confluent_header = header
        return header

    # -- decoding ------------------------------------------------------------------

    def decode(self, data: bytes) -> dict[str, Any]:
        """The record in `data`, in any framing `detect_framing` knows.

        Returns a dict with every reader field; timestamps are int epoch millis.
        """
        if data[:2] == SINGLE_OBJECT_MAGIC:
            writer = self._by_fingerprint.get(bytes(data[2:_SO_HEADER_LEN]))
            if writer is None:
                raise self._unknown_fingerprint(data)
            return self._read(data, _SO_HEADER_LEN, writer)
        framing = detect_framing(data)
        if framing is Framing.CONFLUENT:
            return self._read(data, _CF_HEADER_LEN, self._confluent_writer(data))
        return self._decode_json(data)

    def own_body_offset(self, data: bytes) -> int | None:
        """Where the body of `data` starts if its header names this codec's own schema, else None.

        Lets a reader of exactly this schema skip `decode` (`schemas.fast_decode`). Confluent
        ids count once registered or resolved by `decode`; the registry is never asked.
        """
        if data[:_SO_HEADER_LEN] == self._header:
            return _SO_HEADER_LEN
        if data[:1] == CONFLUENT_MAGIC and len(data) >= _CF_HEADER_LEN:
            writer = self._by_id.get(int.from_bytes(data[1:_CF_HEADER_LEN], "big"))
            if writer is not None and writer.reader is None:
                return _CF_HEADER_LEN
        return None

    def detect_framing(self, data: bytes) -> Framing:
        """The framing of `data`; see the module function `detect_framing`."""
        return detect_framing(data)

    def _read(self, data: bytes, offset: int, writer: _Writer) -> dict[str, Any]:
        buf = BytesIO(data)
        buf.seek(offset)
        try:
            record = schemaless_reader(buf, writer.schema, writer.reader)
        except (EOFError, IndexError) as exc:
            raise self._short_body(data, writer, exc) from exc
        except Exception as exc:
            msg = (
                f"cannot decode {self._name}: invalid Avro body (writer schema {writer.label}): "
                f"{type(exc).__name__}: {exc}"
            )
            raise DecodeError(msg) from exc
        end = buf.tell()
        if end != len(data):
            msg = (
                f"cannot decode {self._name}: {len(data) - end} trailing bytes after the "
                f"record (record ends at byte {end} of {len(data)}, writer schema "
                f"{writer.label}): {_hex(data[end:])}"
            )
            raise DecodeError(msg)
        return cast("dict[str, Any]", record)

    def _short_body(self, data: bytes, writer: _Writer, exc: Exception) -> DecodeError:
        # fastavro reports reading past the end as EOFError, or IndexError ("string index
        # out of range") for a varint cut short; a negative length means corrupt bytes.
        text = str(exc)
        if isinstance(exc, IndexError) and not text.startswith("string index"):
            problem = "invalid Avro body"
        elif text.startswith("Expected -"):
            problem = "invalid Avro body (negative length)"
        else:
            problem = "truncated payload"
        msg = (
            f"cannot decode {self._name}: {problem} ({len(data)} bytes, writer schema "
            f"{writer.label}): {type(exc).__name__}: {text}"
        )
        return DecodeError(msg)

    def _unknown_fingerprint(self, data: bytes) -> DecodeError:
        if len(data) < _SO_HEADER_LEN:
            msg = (
                f"cannot decode {self._name}: truncated single-object header: {len(data)} "
                f"bytes, expected at least {_SO_HEADER_LEN} ({_hex(data)})"
            )
            return DecodeError(msg)
        known = ", ".join(sorted(fp.hex() for fp in self._by_fingerprint))
        msg = (
            f"cannot decode {self._name}: unknown schema fingerprint "
            f"{bytes(data[2:_SO_HEADER_LEN]).hex()}; known: {known}"
        )
        return DecodeError(msg)

    def _confluent_writer(self, data: bytes) -> _Writer:
        if len(data) < _CF_HEADER_LEN:
            msg = (
                f"cannot decode {self._name}: truncated Confluent header: {len(data)} bytes, "
                f"expected at least {_CF_HEADER_LEN} ({_hex(data)})"
            )
            raise DecodeError(msg)
        schema_id = int.from_bytes(data[1:_CF_HEADER_LEN], "big")
        writer = self._by_id.get(schema_id)
        if writer is None:
            writer = self._fetch(schema_id)
            self._by_id[schema_id] = writer
        return writer

    def _fetch(self, schema_id: int) -> _Writer:
        where = f"cannot decode {self._name}: Confluent schema id {schema_id}"
        if self._registry is None:
            msg = f"{where}: unknown schema id (no schema registry configured)"
            raise DecodeError(msg)
        try:
            registered = self._registry.get_schema(schema_id)
        except Exception as exc:
            msg = f"{where}: unknown schema id in the registry: {type(exc).__name__}: {exc}"
            raise DecodeError(msg) from exc
        if registered.schema_type not in (None, "AVRO") or registered.schema_str is None:
            msg = f"{where}: expected an AVRO schema, got {registered.schema_type!r}"
            raise DecodeError(msg)
        try:
            parsed = _parse(json.loads(registered.schema_str), f"registry schema {schema_id}")
            return self._resolved(parsed, f"id {schema_id}")
        except (ContractError, ValueError) as exc:
            msg = f"{where}: {exc}"
            raise DecodeError(msg) from exc

    def _decode_json(self, data: bytes) -> dict[str, Any]:
        try:
            value = json.loads(data)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            msg = f"cannot decode {self._name}: invalid JSON: {exc}"
            raise DecodeError(msg) from exc
        try:
            datum = to_datum(self._schema, value, named=self._named(), from_json=True)
        except FieldError as exc:
            msg = f"cannot decode {self._name} from JSON: {exc}"
            raise DecodeError(msg) from exc
        return cast("dict[str, Any]", datum)
