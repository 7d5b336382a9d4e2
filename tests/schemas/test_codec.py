"""AvroCodec: framings, JSON input, schema evolution, and errors that name the problem."""

from __future__ import annotations

import copy
import json
import math
import struct
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient, SchemaRegistryError
from hypothesis import given
from hypothesis import strategies as st

from schemas.codec import (
    AvroCodec,
    DecodeError,
    EncodeError,
    Framing,
    canonical_fingerprint,
    detect_framing,
)
from schemas.contracts import SchemaName, codec_for, load_schema
from schemas.errors import ContractError
from schemas.records import Channel, DeadLetter, Label, Transaction

T0 = 1_700_000_000_123  # 2023-11-14T22:13:20.123Z

EXAMPLES: dict[SchemaName, dict[str, Any]] = {
    "Transaction": Transaction(
        "e-1", "card-1", "m-1", 12.34, "EUR", "5411", "DE", Channel.CONTACTLESS, T0, "FR", None
    ).to_avro(),
    "Label": Label("e-1", True, T0 + 86_400_000, "chargeback").to_avro(),
    "DeadLetter": DeadLetter(
        "transactions", 3, 2**40, b"card-1", b"\xff\x00not avro", "bad", "DecodeError", "decode", T0
    ).to_avro(),
    "Prediction": {
        "event_id": "e-1",
        "card_id": "card-1",
        "model_name": "fraud",
        "model_version": "7",
        "variant": "champion",
        "served": True,
        "score": 0.875,
        "decision": "review",
        "event_time": T0,
        "scored_at": T0 + 9,
        "source_timestamp": T0 + 2,
    },
    "DriftMetric": {
        "model_name": "fraud",
        "model_version": "7",
        "feature": "__score__",
        "window_start": T0,
        "window_end": T0 + 60_000,
        "psi": 0.031,
        "level": "ok",
        "count": 12_345,
    },
}
TXN = EXAMPLES["Transaction"]


@pytest.fixture
def registry() -> SchemaRegistryClient:
    """A fresh in-memory registry (`new_client` picks the mock for ``mock://`` URLs)."""
    return SchemaRegistryClient.new_client({"url": "mock://codec-tests"})


def _json(record: dict[str, Any]) -> bytes:
    return json.dumps(record).encode()


# -- round trips --------------------------------------------------------------------


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_single_object_round_trip(name: SchemaName) -> None:
    codec = codec_for(name)
    data = codec.encode(EXAMPLES[name])
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == codec.fingerprint
    assert codec.decode(data) == EXAMPLES[name]


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_confluent_round_trip_through_the_mock_registry(
    name: SchemaName, registry: SchemaRegistryClient
) -> None:
    producer = codec_for(name, registry=registry, topic="t")
    data = producer.encode(EXAMPLES[name])
    schema_id = registry.get_latest_version("t-value").schema_id
    assert schema_id is not None
    assert data[:5] == b"\x00" + schema_id.to_bytes(4, "big")
    assert producer.decode(data) == EXAMPLES[name]
    consumer = codec_for(name, registry=registry)  # knows the id only through the registry
    assert consumer.decode(data) == EXAMPLES[name]


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_json_input_decodes_to_the_same_dict_as_avro(name: SchemaName) -> None:
    codec = codec_for(name)
    record = dict(EXAMPLES[name])
    for key, value in record.items():  # Avro's JSON encoding of bytes: code points 0-255
        if isinstance(value, bytes):
            record[key] = value.decode("latin-1")
    assert codec.decode(_json(record)) == codec.decode(codec.encode(EXAMPLES[name]))


def test_timestamps_decode_as_int_epoch_millis() -> None:
    decoded = codec_for("Transaction").decode(codec_for("Transaction").encode(TXN))
    assert type(decoded["event_time"]) is int
    assert decoded["event_time"] == T0


def test_json_conveniences_iso_times_missing_optionals_tagged_unions_whitespace() -> None:
    record = {k: v for k, v in TXN.items() if k not in ("card_country", "device_id")}
    record["event_time"] = "2023-11-14T23:13:20.123+01:00"
    record["amount"] = 12  # a JSON integer is a fine double
    decoded = codec_for("Transaction").decode(b" \n\t" + _json(record))
    assert decoded["event_time"] == T0
    assert decoded["amount"] == 12.0
    assert isinstance(decoded["amount"], float)
    assert decoded["card_country"] is None
    assert decoded["device_id"] is None
    tagged = codec_for("Transaction").decode(_json({**TXN, "device_id": {"string": "d-9"}}))
    assert tagged["device_id"] == "d-9"
    zulu = codec_for("Label").decode(
        _json({**EXAMPLES["Label"], "label_time": "1970-01-01T00:00:01Z"})
    )
    assert zulu["label_time"] == 1000


def test_codec_accepts_a_runtime_schema_with_nested_types() -> None:
    schema = {
        "type": "record",
        "name": "FeatureVector",
        "namespace": "skewless.features",
        "fields": [
            {"name": "entity", "type": "string"},
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "values", "type": {"type": "map", "values": ["null", "double"]}},
            {"name": "counts", "type": {"type": "array", "items": "int"}},
            {"name": "digest", "type": {"type": "fixed", "name": "Digest", "size": 4}},
            {"name": "prev", "type": ["null", "Digest"], "default": None},
        ],
    }
    codec = AvroCodec(schema)
    record = {
        "entity": "card-1",
        "at": T0,
        "values": {"amount_sum_1h": 12.5, "missing": None},
        "counts": [1, 2, 3],
        "digest": b"\x00\x01\x02\x03",
        "prev": b"abcd",
    }
    assert codec.name == "skewless.features.FeatureVector"
    assert codec.decode(codec.encode(record)) == record
    as_json = {**record, "digest": "\u0000\u0001\u0002\u0003", "prev": "abcd"}
    assert codec.decode(_json(as_json)) == record
    with pytest.raises(DecodeError, match=r"field 'counts\[1\]': expected int, got string 'x'"):
        codec.decode(_json({**as_json, "counts": [1, "x"]}))


# -- framing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "framing"),
    [
        (b"\xc3\x01" + bytes(8), Framing.SINGLE_OBJECT),
        (b"\x00\x00\x00\x00\x01", Framing.CONFLUENT),
        (b'{"a": 1}', Framing.JSON),
        (b'  \r\n{"a": 1}', Framing.JSON),
    ],
)
def test_detect_framing(data: bytes, framing: Framing) -> None:
    assert detect_framing(data) is framing
    assert codec_for("Label").detect_framing(data) is framing


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"empty payload"),
        (b"\xc3\x02abc", r"unknown framing: first bytes c3 02 61 62 63"),
        (b"  [1, 2]", r"unknown framing: first bytes 20 20 5b"),
        (b"hello", r"unknown framing: first bytes 68 65 6c 6c 6f"),
    ],
)
def test_unknown_framing_is_a_decode_error_showing_the_bytes(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        detect_framing(data)
    with pytest.raises(DecodeError, match=message):
        codec_for("Label").decode(data)


# -- schema evolution ---------------------------------------------------------------


def _with_optional_field(schema: dict[str, Any]) -> dict[str, Any]:
    newer = copy.deepcopy(schema)
    newer["fields"].append({"name": "risk_tier", "type": ["null", "string"], "default": None})
    return newer


def test_old_reader_reads_data_from_a_newer_writer() -> None:
    old = load_schema("Transaction")
    new = _with_optional_field(old)
    data = AvroCodec(new).encode({**TXN, "risk_tier": "high"})
    with pytest.raises(DecodeError, match="unknown schema fingerprint"):
        AvroCodec(old).decode(data)
    assert AvroCodec(old, writer_schemas=[new]).decode(data) == TXN


def test_new_reader_reads_data_from_an_older_writer() -> None:
    old = load_schema("Transaction")
    new = _with_optional_field(old)
    data = AvroCodec(old).encode(TXN)
    assert AvroCodec(new, writer_schemas=[old]).decode(data) == {**TXN, "risk_tier": None}


def test_reader_resolves_an_older_writer_registered_under_a_confluent_id(
    registry: SchemaRegistryClient,
) -> None:
    old = load_schema("Transaction")
    data = AvroCodec(old, registry=registry, subject="s").encode(TXN)
    newer = AvroCodec(_with_optional_field(old), registry=registry, subject="s")
    assert newer.decode(data) == {**TXN, "risk_tier": None}


def test_add_writer_schema_returns_its_fingerprint() -> None:
    old = load_schema("Transaction")
    new = _with_optional_field(old)
    codec = AvroCodec(old)
    assert codec.add_writer_schema(new) == AvroCodec(new).fingerprint


# -- decode errors ------------------------------------------------------------------


def test_every_truncation_of_a_payload_is_a_decode_error() -> None:
    codec = codec_for("Transaction")
    data = codec.encode(TXN)
    messages = []
    for end in range(len(data)):
        with pytest.raises(DecodeError) as info:
            codec.decode(data[:end])
        messages.append(str(info.value))
    assert "empty payload" in messages[0]
    assert all("truncated single-object header" in m for m in messages[2:10])
    assert all("truncated payload" in m for m in messages[10:])


def test_trailing_bytes_are_a_decode_error() -> None:
    codec = codec_for("Label")
    data = codec.encode(EXAMPLES["Label"])
    with pytest.raises(DecodeError, match=r"2 trailing bytes after the record.*: 7a 7a"):
        codec.decode(data + b"zz")


def test_unknown_fingerprint_is_a_decode_error_naming_it_in_hex() -> None:
    codec = codec_for("Label")
    data = b"\xc3\x01" + bytes.fromhex("0102030405060708") + b"\x00"
    with pytest.raises(DecodeError, match=r"unknown schema fingerprint 0102030405060708; known: "):
        codec.decode(data)


def test_data_of_another_contract_is_an_unknown_fingerprint() -> None:
    data = codec_for("Label").encode(EXAMPLES["Label"])
    with pytest.raises(DecodeError, match="unknown schema fingerprint"):
        codec_for("Transaction").decode(data)


def test_garbage_body_is_a_decode_error() -> None:
    codec = codec_for("Transaction")
    with pytest.raises(DecodeError, match=r"cannot decode skewless\.Transaction"):
        codec.decode(codec.fingerprint.join([b"\xc3\x01", b"\xff" * 40]))


def test_confluent_errors_name_the_schema_id(registry: SchemaRegistryClient) -> None:
    data = b"\x00\x00\x00\x00\x2a" + b"\x00"
    with pytest.raises(DecodeError, match=r"schema id 42: unknown schema id \(no schema registry"):
        codec_for("Label").decode(data)
    with pytest.raises(
        DecodeError, match=r"schema id 42: unknown schema id in the registry"
    ) as info:
        codec_for("Label", registry=registry).decode(data)
    assert info.value.__cause__ is not None
    with pytest.raises(DecodeError, match=r"truncated Confluent header: 3 bytes"):
        codec_for("Label").decode(b"\x00\x00\x00")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", r"invalid JSON: Expecting property name"),
        (_json({**TXN, "amount": "abc"}), r"field 'amount': expected double, got string 'abc'"),
        (_json({**TXN, "amount": True}), r"field 'amount': expected double, got boolean True"),
        (_json({**TXN, "event_time": 1.5}), r"field 'event_time': expected long \(int epoch"),
        (
            _json({**TXN, "event_time": "2023-11-14T22:13:20"}),
            r"field 'event_time': expected ISO-8601 timestamp with timezone, got string "
            r"'2023-11-14T22:13:20' \(no timezone\)",
        ),
        (_json({**TXN, "event_time": "yesterday"}), r"field 'event_time': expected ISO-8601"),
        (
            _json({k: v for k, v in TXN.items() if k != "card_id"}),
            r"field 'card_id': missing required field \(type string\)",
        ),
        (
            _json({**TXN, "channel": "PHONE"}),
            r"field 'channel': expected one of \['POS', 'ONLINE', 'ATM', 'CONTACTLESS'\]"
            r" \(skewless\.Channel\), got string 'PHONE'",
        ),
        (
            _json({**TXN, "cardid": "x", "zz": 1}),
            r"record skewless\.Transaction: unknown field\(s\) \['cardid', 'zz'\]",
        ),
        (
            _json({**TXN, "card_country": 7}),
            r"field 'card_country': expected one of \['null', 'string'\], got int 7",
        ),
        (b"[]", r"unknown framing"),
    ],
)
def test_json_errors_name_field_expected_and_got(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        codec_for("Transaction").decode(data)


def test_json_bytes_outside_latin1_are_rejected() -> None:
    record = {**EXAMPLES["DeadLetter"], "key": "\u20ac", "payload": None}
    with pytest.raises(DecodeError, match=r"field 'key': expected one of \['null', 'bytes'\]"):
        codec_for("DeadLetter").decode(_json(record))


# -- encode errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({**TXN, "amount": "abc"}, r"field 'amount': expected double, got string 'abc'"),
        ({**TXN, "channel": "PHONE"}, r"field 'channel': expected one of \['POS'"),
        ({**TXN, "extra": 1}, r"unknown field\(s\) \['extra'\]"),
        ({**TXN, "event_time": "2023-11-14T22:13:20Z"}, r"field 'event_time': expected long"),
        ({**TXN, "event_time": 2**63}, r"field 'event_time': expected long in \["),
        ({k: v for k, v in TXN.items() if k != "mcc"}, r"field 'mcc': missing required field"),
        ("not a record", r"value: expected record skewless\.Transaction, got string"),
    ],
)
def test_encode_errors_name_field_expected_and_got(record: Any, message: str) -> None:
    with pytest.raises(EncodeError, match=message) as info:
        codec_for("Transaction").encode(record)
    assert info.value.__cause__ is not None
    assert isinstance(info.value, ContractError)


def test_encode_fills_defaults_for_missing_optional_fields() -> None:
    record = {k: v for k, v in TXN.items() if k != "device_id"}
    codec = codec_for("Transaction")
    assert codec.decode(codec.encode(record)) == {**record, "device_id": None}


def test_invalid_schema_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="invalid Avro schema"):
        AvroCodec({"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]})
    with pytest.raises(ContractError, match="expected an Avro record schema"):
        AvroCodec({"type": "string"})
    with pytest.raises(ContractError, match="invalid Avro schema for a fingerprint"):
        canonical_fingerprint({"type": "nope"})


# -- properties ---------------------------------------------------------------------

_text = st.text(max_size=40)
_millis = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_transactions = st.builds(
    Transaction,
    event_id=_text,
    card_id=_text,
    merchant_id=_text,
    amount=st.floats(allow_nan=False, allow_infinity=False),
    currency=_text,
    mcc=_text,
    country=_text,
    channel=st.sampled_from(Channel),
    event_time=_millis,
    card_country=st.none() | _text,
    device_id=st.none() | _text,
)
_labels = st.builds(Label, event_id=_text, is_fraud=st.booleans(), label_time=_millis, reason=_text)


@given(_transactions)
def test_any_transaction_round_trips_bit_exact(txn: Transaction) -> None:
    codec = codec_for("Transaction")
    back = Transaction.from_avro(codec.decode(codec.encode(txn.to_avro())))
    assert back == txn
    assert struct.pack("<d", back.amount) == struct.pack("<d", txn.amount)
    assert math.copysign(1.0, back.amount) == math.copysign(1.0, txn.amount)


@given(_labels)
def test_any_label_round_trips(label: Label) -> None:
    codec = codec_for("Label")
    assert Label.from_avro(codec.decode(codec.encode(label.to_avro()))) == label


@given(_transactions)
def test_any_transaction_survives_json_input(txn: Transaction) -> None:
    codec = codec_for("Transaction")
    assert Transaction.from_avro(codec.decode(_json(txn.to_avro()))) == txn


def test_registry_failure_on_encode_is_an_encode_error_naming_the_subject(
    registry: SchemaRegistryClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(subject_name: str, schema: Any, normalize_schemas: bool = False) -> int:
        raise SchemaRegistryError(409, 409, "incompatible schema")

    monkeypatch.setattr(registry, "register_schema", refuse)
    codec = codec_for("Label", registry=registry, subject="labels-value")
    with pytest.raises(EncodeError, match=r"subject 'labels-value'.*incompatible schema") as info:
        codec.encode(EXAMPLES["Label"])
    assert isinstance(info.value.__cause__, SchemaRegistryError)
