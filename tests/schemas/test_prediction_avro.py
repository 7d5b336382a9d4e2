"""Prediction bodies: the writer gives fastavro's bytes, the reader the slow path's record.

Both raise errors naming the field for what does not fit or does not read.
"""

from __future__ import annotations

import struct
from io import BytesIO
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import astuple

from schemas import records_avro
from schemas.codec import AvroCodec, DecodeError, EncodeError, Framing
from schemas.contracts import load_schema
from schemas.errors import ContractError
from schemas.records import Decision, Prediction
from schemas.records_avro import PredictionReader, PredictionWriter
from tests.schemas.body_cases import (
    codecs,
    corrupted,
    names_the_problem,
    producer,
    resolved_offset,
    varint,
)
from tests.schemas.test_records_avro import _doubles, _millis, _texts

READER = PredictionReader()
WRITER = PredictionWriter()
_FRAMINGS = st.sampled_from([Framing.SINGLE_OBJECT, Framing.CONFLUENT])

predictions = st.builds(
    Prediction,
    event_id=_texts,
    card_id=_texts,
    model_name=_texts,
    model_version=_texts,
    variant=_texts,
    served=st.booleans(),
    score=_doubles,
    decision=st.sampled_from(list(Decision)),
    event_time=_millis,
    scored_at=_millis,
    source_timestamp=_millis,
)


def example(**changes: Any) -> Prediction:
    """A typical champion prediction, with `changes`."""
    fields = {
        "event_id": "e-1",
        "card_id": "c-1",
        "model_name": "skewless-fraud",
        "model_version": "3",
        "variant": "champion",
        "served": True,
        "score": 0.25,
        "decision": Decision.REVIEW,
        "event_time": 1_767_225_600_123,
        "scored_at": 1_767_225_600_200,
        "source_timestamp": 1_767_225_600_150,
    }
    return Prediction(**{**fields, **changes})


def fastavro_body(prediction: Prediction) -> bytes:
    buf = BytesIO()
    schemaless_writer(buf, parse_schema(load_schema("Prediction")), prediction.to_avro())
    return buf.getvalue()


# -- writing -----------------------------------------------------------------------


@given(predictions)
def test_body_is_fastavros_bytes_for_any_prediction(prediction: Prediction) -> None:
    assert PredictionWriter().body(prediction) == fastavro_body(prediction)


def test_repeated_model_texts_are_written_the_same_every_time() -> None:
    writer = PredictionWriter()
    first = [writer.body(example(event_id=f"e-{i}", variant=v)) for i, v in enumerate("ab" * 3)]
    assert first == [
        fastavro_body(example(event_id=f"e-{i}", variant=v)) for i, v in enumerate("ab" * 3)
    ]


@given(predictions, _FRAMINGS)
def test_framed_body_equals_encode_and_round_trips(
    prediction: Prediction, framing: Framing
) -> None:
    codec, consumer = producer("Prediction", framing), codecs("Prediction")[2]
    data = codec.frame(PredictionWriter().body(prediction))
    assert data == codec.encode(prediction.to_avro())
    back = Prediction.from_avro(consumer.decode(data))
    assert PredictionWriter().body(back) == PredictionWriter().body(prediction)  # NaN too


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"event_time": 2**63}, r"field 'event_time': expected long"),
        ({"scored_at": 1.5}, r"field 'scored_at': expected long"),
        ({"served": 1}, r"field 'served': expected boolean, got int 1"),
        ({"score": "high"}, r"field 'score': expected double, got string 'high'"),
        ({"model_name": None}, r"field 'model_name': expected string, got null"),
        ({"card_id": "\ud800"}, r"UnicodeEncodeError"),
    ],
)
def test_a_prediction_that_does_not_fit_is_an_encode_error_naming_it(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(EncodeError, match=r"prediction of event 'e-1': .*" + message):
        PredictionWriter().body(example(**changes))


def test_an_unknown_decision_is_an_encode_error() -> None:
    with pytest.raises(EncodeError, match=r"prediction of event 'e-1': .*'decision'"):
        PredictionWriter().body(example(decision="block"))


@pytest.mark.parametrize("user", [PredictionWriter, PredictionReader])
def test_a_schema_they_were_not_written_for_is_a_contract_error(
    monkeypatch: pytest.MonkeyPatch, user: type[Any]
) -> None:
    schema = load_schema("Prediction")
    schema["fields"][6]["type"] = "float"
    monkeypatch.setattr(records_avro, "load_schema", lambda name: schema)
    with pytest.raises(ContractError, match=rf"{user.__name__} .*\('score', 'float'\)"):
        user()


# -- reading -----------------------------------------------------------------------


def _bits(p: Prediction) -> tuple[Any, ...]:
    """The prediction's fields, the score as bytes: NaN payloads compare, bit exact."""
    return (*astuple(p)[:6], struct.pack("<d", p.score), *astuple(p)[7:])


def _slow(codec: AvroCodec, data: bytes) -> Prediction:
    return Prediction.from_avro(codec.decode(data))


def _slow_body(body: bytes) -> Prediction:
    """The slow path's record of a bare body (framed single-object first)."""
    codec = codecs("Prediction")[0]
    return _slow(codec, codec.frame(body))


@given(predictions, _FRAMINGS)
def test_reads_the_prediction_the_slow_path_decodes(
    prediction: Prediction, framing: Framing
) -> None:
    consumer = codecs("Prediction")[2]
    data = producer("Prediction", framing).encode(prediction.to_avro())
    offset = resolved_offset(consumer, data)
    got = READER.read(data, offset)
    assert _bits(got) == _bits(prediction) == _bits(_slow(consumer, data))
    assert got.decision is prediction.decision


def test_reader_and_codec_agree_on_the_schema_fingerprint() -> None:
    assert READER.fingerprint == codecs("Prediction")[0].fingerprint


@given(predictions)
def test_every_truncation_is_a_decode_error_naming_the_field(prediction: Prediction) -> None:
    body = WRITER.body(prediction)
    for end in range(len(body)):
        with pytest.raises(DecodeError, match="truncated payload") as info:
            READER.read(body[:end])
        assert _names_the_problem(info.value), info.value


def _names_the_problem(error: DecodeError) -> bool:
    return names_the_problem(error, "cannot decode skewless.Prediction: ")


def _read_or_error(body: bytes) -> None:
    """The reader raises a DecodeError naming the problem, or agrees with the slow path."""
    got: Prediction | DecodeError
    try:
        got = READER.read(body)
    except DecodeError as exc:
        got = exc
    if isinstance(got, DecodeError):
        assert _names_the_problem(got), got
    else:
        assert _bits(got) == _bits(_slow_body(body))


@given(st.binary(max_size=120))
def test_a_garbage_body_is_a_decode_error_or_the_slow_paths_record(body: bytes) -> None:
    _read_or_error(body)


@given(predictions, st.data())
def test_a_corrupted_body_is_a_decode_error_or_the_slow_paths_record(
    prediction: Prediction, data: st.DataObject
) -> None:
    _read_or_error(corrupted(WRITER.body(prediction), data))


def _body(**fields: bytes) -> bytes:
    """`example()`'s body, some fields replaced by raw bytes."""
    parts = {
        "event_id": varint(3) + b"e-1",
        "card_id": varint(3) + b"c-1",
        "model_name": varint(14) + b"skewless-fraud",
        "model_version": varint(1) + b"3",
        "variant": varint(8) + b"champion",
        "served": b"\x01",
        "score": struct.pack("<d", 0.25),
        "decision": varint(1),
        "event_time": varint(1_767_225_600_123),
        "scored_at": varint(1_767_225_600_200),
        "source_timestamp": varint(1_767_225_600_150),
    }
    parts.update(fields)
    return b"".join(parts.values())


@pytest.mark.parametrize(
    ("fields", "changes"),
    [
        ({}, {}),
        ({"decision": b"\x82\x00"}, {"decision": Decision.REVIEW}),  # index 1 in two bytes
        ({"decision": b"\x04"}, {"decision": Decision.DECLINE}),
        ({"served": b"\x00"}, {"served": False}),
        ({"event_time": varint(-5)}, {"event_time": -5}),
        ({"scored_at": b"\x80" * 5 + b"\x00"}, {"scored_at": 0}),
        ({"variant": varint(70) + b"v" * 70}, {"variant": "v" * 70}),
    ],
)
def test_other_valid_encodings_read_as_the_slow_path_does(
    fields: dict[str, bytes], changes: dict[str, Any]
) -> None:
    body = _body(**fields)
    assert READER.read(body) == example(**changes) == _slow_body(body)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"served": b"\x02"}, r"field 'served' \(boolean\) at byte 34: byte 02, expected 00 or 01"),
        ({"decision": b"\x06"}, r"field 'decision' \(enum Decision\) at byte 43: enum index 3"),
        ({"decision": b"\x01"}, r"field 'decision' \(enum Decision\) at byte 43: enum index -1"),
        ({"source_timestamp": b"\xff" * 10 + b"\x01"}, r"field 'source_timestamp' \(long\)"),
        ({"source_timestamp": varint(1) + b"zz"}, r"2 trailing bytes after the record"),
    ],
)
def test_a_corrupt_body_is_a_decode_error_naming_the_field(
    fields: dict[str, bytes], message: str
) -> None:
    with pytest.raises(DecodeError, match=r"^cannot decode skewless\.Prediction: .*" + message):
        READER.read(_body(**fields))
