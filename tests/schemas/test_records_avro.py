"""Transaction bodies: the reader gives the slow path's transaction or a DecodeError, the
writer the codec's bytes or an EncodeError.
"""

from __future__ import annotations

import copy
import struct
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import astuple

from schemas import records_avro
from schemas.codec import AvroCodec, DecodeError, EncodeError, Framing
from schemas.contracts import load_schema
from schemas.errors import ContractError
from schemas.records import Channel, Transaction
from schemas.records_avro import TransactionReader, TransactionWriter
from tests.schemas.body_cases import (
    codecs,
    corrupted,
    names_the_problem,
    producer,
    resolved_offset,
    varint,
)

READER = TransactionReader()
WRITER = TransactionWriter()
_FRAMINGS = st.sampled_from([Framing.SINGLE_OBJECT, Framing.CONFLUENT])

_texts = st.text() | st.sampled_from(["", "é", "卡-7", "\U0001f4b3", "\x00", "x" * 64, "é" * 70])
_doubles = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True) | st.sampled_from(
    [-0.0, float("nan"), float("-inf"), 5e-324, -2.2250738585072014e-308]
)
_millis = st.integers(-(2**63), 2**63 - 1) | st.integers(0, 2**42)  # any, and epoch-millis-like

transactions = st.builds(
    Transaction,
    event_id=_texts,
    card_id=_texts,
    merchant_id=_texts,
    amount=_doubles,
    currency=_texts,
    mcc=_texts,
    country=_texts,
    channel=st.sampled_from(list(Channel)),
    event_time=_millis,
    card_country=st.none() | _texts,
    device_id=st.none() | _texts,
)


def example(**changes: Any) -> Transaction:
    """A typical transaction, with `changes`."""
    fields = {
        "event_id": "e-1",
        "card_id": "c-1",
        "merchant_id": "m-1",
        "amount": 12.5,
        "currency": "EUR",
        "mcc": "5411",
        "country": "DE",
        "channel": Channel.ATM,
        "event_time": 1_767_225_600_123,
        "card_country": "DE",
        "device_id": None,
    }
    return Transaction(**{**fields, **changes})


def _fields(txn: Transaction) -> list[Any]:
    """The transaction's fields with the amount as bytes: NaN payloads compare, bit exact."""
    fields = list(astuple(txn))
    fields[3] = struct.pack("<d", txn.amount)
    return fields


def _assert_same(got: Transaction, expected: Transaction) -> None:
    assert _fields(got) == _fields(expected)
    assert [type(f) for f in astuple(got)] == [type(f) for f in astuple(expected)]
    assert got.channel is expected.channel


def _slow(codec: AvroCodec, data: bytes) -> Transaction:
    return Transaction.from_avro(codec.decode(data))


def _framed(txn: Transaction, framing: Framing) -> bytes:
    return producer("Transaction", framing).encode(txn.to_avro())


def _consumer(data: bytes) -> tuple[AvroCodec, int]:
    """The consumer codec, after it resolved the header of `data`, and its body offset."""
    consumer = codecs("Transaction")[2]
    return consumer, resolved_offset(consumer, data)


def _names_the_problem(error: DecodeError) -> bool:
    return names_the_problem(error, "cannot decode skewless.Transaction: ")


# -- the record of the slow path ----------------------------------------------------


@given(transactions, _FRAMINGS)
def test_reads_the_transaction_the_slow_path_decodes(txn: Transaction, framing: Framing) -> None:
    data = _framed(txn, framing)
    consumer, offset = _consumer(data)
    assert offset == (10 if framing is Framing.SINGLE_OBJECT else 5)
    got = READER.read(data, offset)
    _assert_same(got, txn)
    _assert_same(got, _slow(consumer, data))


def test_reads_a_bare_body_from_offset_zero() -> None:
    data = codecs("Transaction")[0].encode(example().to_avro())
    assert READER.read(data[10:]) == example()


def test_entity_and_category_strings_are_one_object_per_value() -> None:
    first, second = (
        READER.read(codecs("Transaction")[0].encode(example(event_id=e).to_avro())[10:])
        for e in ("1", "2")
    )
    for field in ("card_id", "merchant_id", "currency", "mcc", "country", "card_country"):
        assert getattr(first, field) is getattr(second, field), field


def test_reader_and_codec_agree_on_the_schema_fingerprint() -> None:
    assert READER.fingerprint == AvroCodec(load_schema("Transaction")).fingerprint


@pytest.mark.parametrize("user", [TransactionReader, TransactionWriter])
def test_a_schema_they_were_not_written_for_is_a_contract_error(
    monkeypatch: pytest.MonkeyPatch, user: type[Any]
) -> None:
    schema = load_schema("Transaction")
    schema["fields"][3]["type"] = "float"
    monkeypatch.setattr(records_avro, "load_schema", lambda name: schema)
    with pytest.raises(ContractError, match=r"the schema has .*\('amount', 'float'\)"):
        user()


# -- other writer schemas -----------------------------------------------------------


def _evolved() -> dict[str, Any]:
    schema = copy.deepcopy(load_schema("Transaction"))
    schema["fields"].append({"name": "risk_tier", "type": ["null", "string"], "default": None})
    return schema


def test_an_evolved_writer_schema_takes_the_slow_path() -> None:
    txn = example()
    consumer = AvroCodec(load_schema("Transaction"))
    consumer.add_writer_schema(_evolved())
    data = AvroCodec(_evolved()).encode({**txn.to_avro(), "risk_tier": "high"})
    assert consumer.own_body_offset(data) is None
    assert _slow(consumer, data) == txn


def test_an_evolved_confluent_writer_takes_the_slow_path_after_decode_too() -> None:
    registry = SchemaRegistryClient.new_client({"url": "mock://records-avro-evolved"})
    txn = example(device_id="d-9")
    producer = AvroCodec(_evolved(), registry=registry, subject="transactions-value")
    data = producer.encode({**txn.to_avro(), "risk_tier": None})
    consumer = AvroCodec(load_schema("Transaction"), registry=registry)
    assert consumer.own_body_offset(data) is None
    assert _slow(consumer, data) == txn
    assert consumer.own_body_offset(data) is None


# -- corrupt bodies -----------------------------------------------------------------


@given(transactions, _FRAMINGS)
def test_every_truncation_is_a_decode_error_naming_the_field(
    txn: Transaction, framing: Framing
) -> None:
    data = _framed(txn, framing)
    _, offset = _consumer(data)
    for end in range(offset, len(data)):
        with pytest.raises(DecodeError, match="truncated payload") as info:
            READER.read(data[:end], offset)
        assert _names_the_problem(info.value), info.value


def _read_or_error(data: bytes) -> None:
    """The reader raises a DecodeError naming the problem, or agrees with the slow path."""
    got: Transaction | DecodeError
    try:
        got = READER.read(data, 10)
    except DecodeError as exc:
        got = exc
    if isinstance(got, DecodeError):
        assert _names_the_problem(got), got
    else:
        _assert_same(got, _slow(codecs("Transaction")[0], data))


@given(st.binary(max_size=200))
def test_a_garbage_body_is_a_decode_error_or_the_slow_paths_record(body: bytes) -> None:
    _read_or_error(codecs("Transaction")[0].frame(body))


@given(transactions, st.data())
def test_a_corrupted_body_is_a_decode_error_or_the_slow_paths_record(
    txn: Transaction, data: st.DataObject
) -> None:
    body = corrupted(codecs("Transaction")[0].encode(txn.to_avro())[10:], data)
    _read_or_error(codecs("Transaction")[0].frame(body))


def _body(**fields: bytes) -> bytes:
    """`example()`'s body (device_id "d-1"), some fields replaced by raw bytes."""
    parts = {
        "event_id": varint(3) + b"e-1",
        "card_id": varint(3) + b"c-1",
        "merchant_id": varint(3) + b"m-1",
        "amount": struct.pack("<d", 12.5),
        "currency": varint(3) + b"EUR",
        "mcc": varint(4) + b"5411",
        "country": varint(2) + b"DE",
        "channel": varint(2),
        "event_time": varint(1_767_225_600_123),
        "card_country": varint(1) + varint(2) + b"DE",
        "device_id": varint(1) + varint(3) + b"d-1",
    }
    parts.update(fields)
    return b"".join(parts.values())


def test_the_example_body_reads_as_its_transaction() -> None:
    assert READER.read(_body()) == example(device_id="d-1")
    assert READER.read(_body(device_id=b"\x00")) == example()


@pytest.mark.parametrize(
    ("fields", "changes"),
    [
        ({"channel": b"\x84\x00"}, {}),  # index 2 in two bytes
        ({"card_country": b"\x82\x80\x00" + varint(2) + b"DE"}, {}),
        ({"device_id": b"\x80\x00"}, {"device_id": None}),
        ({"event_time": varint(-5)}, {"event_time": -5}),
        ({"mcc": varint(70) + b"5" * 70}, {"mcc": "5" * 70}),
        ({"device_id": b"\x02" + varint(80) + b"d" * 80}, {"device_id": "d" * 80}),
    ],
)
def test_other_valid_encodings_read_as_the_slow_path_does(
    fields: dict[str, bytes], changes: dict[str, Any]
) -> None:
    data = codecs("Transaction")[0].frame(_body(**fields))
    expected = example(**{"device_id": "d-1", **changes})
    assert READER.read(data, 10) == expected == _slow(codecs("Transaction")[0], data)


_FP = READER.fingerprint.hex()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"event_id": b"\x01"},
            r"invalid Avro body \(negative length\) \(\d+ bytes, writer schema {fp}\): "
            r"field 'event_id' \(string\) at byte 0: length -1",
        ),
        (
            {"card_id": b"\x04\xffx"},
            r"invalid Avro body .*: field 'card_id' \(string\) at byte 4: not UTF-8: "
            r"'utf-8' codec can't decode byte 0xff in position 0",
        ),
        (
            {"amount": b"\x00" * 7},  # currency's length byte is the amount's last, "E" its
            r"invalid Avro body \(negative length\) .*: field 'currency' \(string\) "
            r"at byte 20: length -35",
        ),
        (
            {"channel": b"\x08"},
            r"invalid Avro body .*: field 'channel' \(enum Channel\) at byte 32: enum index 4, "
            r"expected 0 to 3 \(POS, ONLINE, ATM, CONTACTLESS\)",
        ),
        (
            {"channel": b"\x01"},
            r"field 'channel' \(enum Channel\) at byte 32: enum index -1, expected 0 to 3",
        ),
        (
            {"channel": b"\xff" * 6 + b"\x0f"},
            r"field 'channel' \(enum Channel\) at byte 32: -\d+ is outside the Avro int range",
        ),
        (
            {"event_time": b"\xff" * 10 + b"\x01"},
            r"field 'event_time' \(long\) at byte 33: varint longer than 10 bytes: ff ff",
        ),
        (
            {"event_time": b"\xff" * 9 + b"\x7f"},
            r"field 'event_time' \(long\) at byte 33: .* is outside the Avro long range",
        ),
        (
            {"card_country": b"\x04DE"},
            r"field 'card_country' \(union \[null, string\]\) at byte 39: union index 2, "
            r"expected 0 or 1 \(null, string\)",
        ),
        (
            {"card_country": b"\x01\x04DE"},
            r"field 'card_country' \(union \[null, string\]\) at byte 39: union index -1",
        ),
        (
            {"device_id": b"\x02\x03"},
            r"invalid Avro body \(negative length\) .*: field 'device_id' "
            r"\(union \[null, string\]\) at byte 43: length -2",
        ),
        (
            {"device_id": b"\x02\x20d-1"},
            r"truncated payload .*: field 'device_id' \(union \[null, string\]\) at byte 43: "
            r"a string of 16 bytes, 3 left",
        ),
        (
            {"device_id": b"\x00zz"},
            r"2 trailing bytes after the record \(record ends at byte 44 of 46, "
            r"writer schema {fp}\): 7a 7a$",
        ),
    ],
)
def test_a_corrupt_body_is_a_decode_error_naming_field_expected_and_got(
    fields: dict[str, bytes], message: str
) -> None:
    pattern = r"^cannot decode skewless\.Transaction: .*" + message
    with pytest.raises(DecodeError, match=pattern.replace("{fp}", _FP)) as info:
        READER.read(_body(**fields))
    assert info.value.__cause__ is not None


def test_a_varint_cut_short_by_the_end_is_a_truncated_payload() -> None:
    data = _body()[:36]  # inside event_time
    with pytest.raises(
        DecodeError, match=r"truncated payload .*field 'event_time' \(long\) at byte 33: varint cut"
    ):
        READER.read(data)


# -- writing ------------------------------------------------------------------------


@given(transactions, _FRAMINGS)
def test_writer_gives_the_codecs_bytes_for_any_transaction(
    txn: Transaction, framing: Framing
) -> None:
    codec = producer("Transaction", framing)
    assert codec.frame(WRITER.body(txn)) == codec.encode(txn.to_avro())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"event_time": 2**63}, r"field 'event_time': expected long"),
        ({"amount": "12"}, r"field 'amount': expected double, got string '12'"),
        ({"channel": "BRANCH"}, r"field 'channel': expected one of"),
        ({"device_id": 7}, r"field 'device_id': expected"),
        ({"mcc": "\ud800"}, r"UnicodeEncodeError"),
    ],
)
def test_a_transaction_that_does_not_fit_is_an_encode_error_naming_it(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(EncodeError, match=r"^cannot encode the transaction 'e-1': .*" + message):
        WRITER.body(example(**changes))
