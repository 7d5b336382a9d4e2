"""Own-schema Avro bodies on hot paths: `Transaction` and `Prediction`, read and written.

`TransactionReader` reads a body written with exactly ``schemas/avro/Transaction.avsc``
(`AvroCodec.own_body_offset` says when one is) into the record
`Transaction.from_avro(codec.decode(data))` returns, ~3x faster than fastavro's generic
walk plus building the record from its dict (1.6 vs 5.1 us). Framing, other writer
schemas and JSON stay with `AvroCodec`.

Entity and category strings (card, merchant, currency, mcc, countries) come out interned:
one object per distinct value however many events name it. Window states hold hours of
them, and `count_distinct` hashes and compares them on every event: measured on 150,000
events, the card and merchant kernels took 15.6 us per event on interned strings against
17.9 on fresh ones (fewer objects to reach, equal ones found by identity).

`PredictionWriter` writes the body of ``schemas/avro/Prediction.avsc`` for a `Prediction`:
the same bytes as fastavro's `schemaless_writer` on `prediction.to_avro()`, which with
building that dict took a quarter of a scoring worker's CPU at 5,000 events/s (two
predictions per event in shadow). `PredictionReader` is its inverse for the consumers of
the predictions topic (the demo's and the benchmarks' watchers run beside the pipeline).
`TransactionWriter` writes what `TransactionReader` reads, for the generator's producer.
"""

from __future__ import annotations

import struct
from enum import StrEnum
from sys import intern as _intern
from typing import Any

from schemas._avro_binary import (
    BadBodyError,
    BodySchema,
    enum_at,
    enum_table,
    long_at,
    long_bytes,
    millis_at,
    string_bytes,
    text_at,
    type_label,
)
from schemas._json_input import FieldError, to_datum
from schemas.codec import EncodeError
from schemas.contracts import SchemaName, load_schema
from schemas.errors import ContractError
from schemas.records import Channel, Decision, Prediction, Transaction

__all__ = ["PredictionReader", "PredictionWriter", "TransactionReader", "TransactionWriter"]

# The fields the transaction reader and writer are written for, in order: a changed schema
# must change them too.
_LAYOUT = (
    ("event_id", "string"),
    ("card_id", "string"),
    ("merchant_id", "string"),
    ("amount", "double"),
    ("currency", "string"),
    ("mcc", "string"),
    ("country", "string"),
    ("channel", "enum Channel"),
    ("event_time", "long"),
    ("card_country", "union [null, string]"),
    ("device_id", "union [null, string]"),
)
_DOUBLE = struct.Struct("<d").unpack_from
_PACK_DOUBLE = struct.Struct("<d").pack


class TransactionReader:
    """Reads the Avro binary body of the `Transaction` schema into a `Transaction`.

    The record `Transaction.from_avro` makes of fastavro's dict, for a body written with
    exactly this schema (`AvroCodec.own_body_offset` finds it; other writer schemas and
    framing stay with `AvroCodec`). A body that is not one (truncated, an overlong or
    out-of-range varint, a negative length, bad UTF-8, an enum or union index out of
    range, trailing bytes) is a `DecodeError` naming the field, never a wrong record
    (fastavro wraps overlong or out-of-range varints, and reads an enum or union index -1
    as the last symbol or branch).
    """

    __slots__ = ("_body", "_channels", "_symbols")

    def __init__(self) -> None:
        self._body = BodySchema(_schema("Transaction", _LAYOUT, "TransactionReader"))
        channel = dict(self._body.fields)["channel"]
        self._symbols = tuple(Channel(symbol) for symbol in channel["symbols"])
        self._channels = enum_table(self._symbols)

    @property
    def fingerprint(self) -> bytes:
        """CRC-64-AVRO fingerprint of the schema it reads (as `AvroCodec.fingerprint`)."""
        return self._body.fingerprint

    def read(self, data: bytes, offset: int = 0) -> Transaction:
        """The transaction in the body that starts at `offset` and ends with `data`."""
        pos = offset
        try:
            event_id, pos = text_at(data, pos)
            card_id, pos = text_at(data, pos)
            merchant_id, pos = text_at(data, pos)
            (amount,) = _DOUBLE(data, pos)
            currency, pos = text_at(data, pos + 8)
            mcc, pos = text_at(data, pos)
            country, pos = text_at(data, pos)
            channel, pos = enum_at(data, pos, self._channels, self._symbols)
            event_time, pos = millis_at(data, pos)
            card_country, pos = _optional_text_at(data, pos)
            device_id, pos = _optional_text_at(data, pos)
            if pos != len(data):
                raise BadBodyError
        except (BadBodyError, IndexError, ValueError, struct.error) as exc:
            # A string cut short slices short, but the next field then starts past the end.
            raise self._body.error(data, offset, exc) from exc
        return Transaction(
            event_id,
            _intern(card_id),
            _intern(merchant_id),
            amount,
            _intern(currency),
            _intern(mcc),
            _intern(country),
            channel,
            event_time,
            None if card_country is None else _intern(card_country),
            device_id,
        )


def _optional_text_at(data: bytes, pos: int) -> tuple[str | None, int]:
    """The ``["null", "string"]`` union at `pos` in any encoding, and the position after it."""
    branch = data[pos]
    if branch == 0:
        return None, pos + 1
    if branch == 2:  # branch 1 (zigzag 2): the string
        return text_at(data, pos + 1)
    branch, pos = long_at(data, pos)
    if branch == 0:
        return None, pos
    if branch == 1:
        return text_at(data, pos)
    raise BadBodyError


class TransactionWriter:
    """Writes the Avro binary body of the `Transaction` schema for a `Transaction`.

    The same bytes as fastavro's `schemaless_writer` on `txn.to_avro()`, without framing
    (`AvroCodec.frame` adds it). A transaction that does not fit the schema is an
    `EncodeError` naming the field.
    """

    __slots__ = ("_channels", "_schema")

    def __init__(self) -> None:
        schema = self._schema = _schema("Transaction", _LAYOUT, "TransactionWriter")
        symbols = next(f["type"]["symbols"] for f in schema["fields"] if f["name"] == "channel")
        self._channels = {Channel(s): long_bytes(i) for i, s in enumerate(symbols)}

    def body(self, txn: Transaction) -> bytes:
        """The Avro binary body of `txn` (no header)."""
        try:
            card_country, device_id = txn.card_country, txn.device_id
            return b"".join(
                (
                    string_bytes(txn.event_id),
                    string_bytes(txn.card_id),
                    string_bytes(txn.merchant_id),
                    _PACK_DOUBLE(txn.amount),
                    string_bytes(txn.currency),
                    string_bytes(txn.mcc),
                    string_bytes(txn.country),
                    self._channels[txn.channel],
                    long_bytes(txn.event_time),
                    b"\x00" if card_country is None else b"\x02" + string_bytes(card_country),
                    b"\x00" if device_id is None else b"\x02" + string_bytes(device_id),
                )
            )
        except (
            KeyError,
            ValueError,
            TypeError,
            AttributeError,
            OverflowError,
            struct.error,
        ) as exc:
            raise _encode_error(self._schema, f"transaction {txn.event_id!r}", txn, exc) from exc


def _encode_error(schema: dict[str, Any], what: str, record: Any, exc: Exception) -> EncodeError:
    """The error naming the field of `record` that does not fit `schema`, chained to `exc`.

    Enum fields may hold their `StrEnum` member or any value (named as it is).
    """
    datum = {}
    for field in schema["fields"]:
        value = getattr(record, field["name"], None)
        datum[field["name"]] = value.value if isinstance(value, StrEnum) else value
    where = f"cannot encode the {what}"
    try:
        to_datum(schema, datum, named={}, from_json=False)
    except FieldError as field_error:
        error = EncodeError(f"{where}: {field_error}")
    else:
        error = EncodeError(f"{where}: {type(exc).__name__}: {exc}")
    error.__cause__ = exc  # compiled, `raise ... from exc` does not set it (see body_error)
    return error


# -- predictions ---------------------------------------------------------------------

# The fields `PredictionWriter` and `PredictionReader` are written for, in order: a changed
# schema must change them too.
_PREDICTION_LAYOUT = (
    ("event_id", "string"),
    ("card_id", "string"),
    ("model_name", "string"),
    ("model_version", "string"),
    ("variant", "string"),
    ("served", "boolean"),
    ("score", "double"),
    ("decision", "enum Decision"),
    ("event_time", "long"),
    ("scored_at", "long"),
    ("source_timestamp", "long"),
)


class PredictionWriter:
    """Writes the Avro binary body of the `Prediction` schema for a `Prediction`.

    The same bytes as fastavro's `schemaless_writer` on `prediction.to_avro()`, without
    framing (`AvroCodec.frame` adds it). A prediction that does not fit the schema (a
    field of the wrong type, a time outside the long range, unencodable text) is an
    `EncodeError` naming the field.
    """

    __slots__ = ("_decisions", "_schema", "_texts")

    def __init__(self) -> None:
        schema = self._schema = _schema("Prediction", _PREDICTION_LAYOUT, "PredictionWriter")
        self._decisions = {d: long_bytes(i) for i, d in enumerate(_decision_symbols(schema))}
        # Model names, versions and variants repeat on every prediction: encoded once each.
        self._texts: dict[str, bytes] = {}

    def body(self, prediction: Prediction) -> bytes:
        """The Avro binary body of `prediction` (no header)."""
        texts = self._texts
        try:
            model = texts.get(prediction.model_name)
            if model is None:
                model = self._remember(prediction.model_name)
            version = texts.get(prediction.model_version)
            if version is None:
                version = self._remember(prediction.model_version)
            variant = texts.get(prediction.variant)
            if variant is None:
                variant = self._remember(prediction.variant)
            served = prediction.served
            if served is not True and served is not False:
                raise TypeError(served)
            return b"".join(
                (
                    string_bytes(prediction.event_id),
                    string_bytes(prediction.card_id),
                    model,
                    version,
                    variant,
                    b"\x01" if served else b"\x00",
                    _PACK_DOUBLE(prediction.score),
                    self._decisions[prediction.decision],
                    long_bytes(prediction.event_time),
                    long_bytes(prediction.scored_at),
                    long_bytes(prediction.source_timestamp),
                )
            )
        except (
            KeyError,
            ValueError,
            TypeError,
            AttributeError,
            OverflowError,
            struct.error,
        ) as exc:
            what = f"prediction of event {prediction.event_id!r}"
            raise _encode_error(self._schema, what, prediction, exc) from exc

    def _remember(self, text: str) -> bytes:
        encoded = string_bytes(text)
        if len(self._texts) < _TEXTS_HELD:
            self._texts[text] = encoded
        return encoded


_TEXTS_HELD = 1024  # distinct model names, versions and variants: a handful in practice


class PredictionReader:
    """Reads the Avro binary body of the `Prediction` schema into a `Prediction`.

    The record `Prediction.from_avro` makes of fastavro's dict, for a body written with
    exactly this schema (`AvroCodec.own_body_offset` finds it; other writer schemas and
    framing stay with `AvroCodec`). A body that is not one is a `DecodeError` naming the
    field (see `TransactionReader`).
    """

    __slots__ = ("_body", "_by_byte", "_decisions")

    def __init__(self) -> None:
        schema = _schema("Prediction", _PREDICTION_LAYOUT, "PredictionReader")
        self._body = BodySchema(schema)
        self._decisions = _decision_symbols(schema)
        self._by_byte = enum_table(self._decisions)

    @property
    def fingerprint(self) -> bytes:
        """CRC-64-AVRO fingerprint of the schema it reads (as `AvroCodec.fingerprint`)."""
        return self._body.fingerprint

    def read(self, data: bytes, offset: int = 0) -> Prediction:
        """The prediction in the body that starts at `offset` and ends with `data`."""
        try:
            event_id, pos = text_at(data, offset)
            card_id, pos = text_at(data, pos)
            model_name, pos = text_at(data, pos)
            model_version, pos = text_at(data, pos)
            variant, pos = text_at(data, pos)
            served = data[pos]
            if served > 1:
                raise BadBodyError
            (score,) = _DOUBLE(data, pos + 1)
            pos += 9
            decision, pos = enum_at(data, pos, self._by_byte, self._decisions)
            event_time, pos = millis_at(data, pos)
            scored_at, pos = millis_at(data, pos)
            source_timestamp, pos = millis_at(data, pos)
            if pos != len(data):
                raise BadBodyError
        except (BadBodyError, IndexError, ValueError, struct.error) as exc:
            raise self._body.error(data, offset, exc) from exc
        return Prediction(
            event_id,
            card_id,
            model_name,
            model_version,
            variant,
            served == 1,
            score,
            decision,
            event_time,
            scored_at,
            source_timestamp,
        )


def _schema(name: SchemaName, layout: tuple[tuple[str, str], ...], user: str) -> dict[str, Any]:
    """Schema `name`, checked to have the fields (name, type label) `user` is written for."""
    schema = load_schema(name)
    found = tuple((f["name"], type_label(f["type"])) for f in schema["fields"])
    if found != layout:
        msg = (
            f"{user} is written for skewless.{name} with the fields {list(layout)!r}, "
            f"the schema has {list(found)!r}: update schemas/records_avro.py"
        )
        raise ContractError(msg)
    return schema


def _decision_symbols(schema: dict[str, Any]) -> tuple[Decision, ...]:
    """The `Decision` of each enum index of the schema's `decision` field."""
    field = next(f for f in schema["fields"] if f["name"] == "decision")
    return tuple(Decision(symbol) for symbol in field["type"]["symbols"])
