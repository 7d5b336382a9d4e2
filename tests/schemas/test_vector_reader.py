"""FeatureVectorReader: the slow path's vector for any own-schema body, else a DecodeError."""

from __future__ import annotations

import copy
import struct
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import astuple

from schemas.codec import AvroCodec, DecodeError, Framing
from schemas.features import FeatureSet
from schemas.features.fraud import FRAUD_FEATURES
from schemas.features.vector import FeatureVector, feature_vector_schema
from schemas.features.vector_avro import FeatureVectorReader
from tests.schemas.body_cases import corrupted, names_the_problem, resolved_offset, varint
from tests.schemas.vector_cases import FEATURE_SETS, TINY, codecs, example, fs_and_vectors

READERS = {name: FeatureVectorReader(fs) for name, fs in FEATURE_SETS.items()}
_FRAMINGS = st.sampled_from([Framing.SINGLE_OBJECT, Framing.CONFLUENT])


def _fields(vector: FeatureVector) -> list[Any]:
    """The vector's fields with the values as bytes: NaN payloads compare, bit exact."""
    fields = list(astuple(vector))
    fields[-1] = struct.pack(f"<{len(vector.values)}d", *vector.values)
    return fields


def _assert_same(got: FeatureVector, expected: FeatureVector) -> None:
    assert _fields(got) == _fields(expected)
    assert [type(f) for f in astuple(got)] == [type(f) for f in astuple(expected)]


def _slow(feature_set: FeatureSet, codec: AvroCodec, data: bytes) -> FeatureVector:
    return FeatureVector.from_avro(feature_set, codec.decode(data))


def _framed(feature_set: FeatureSet, vector: FeatureVector, framing: Framing) -> bytes:
    writer, single_object, confluent, _ = codecs(feature_set.name)
    producer = single_object if framing is Framing.SINGLE_OBJECT else confluent
    return producer.frame(writer.body(vector))


def _consumer(feature_set: FeatureSet, data: bytes) -> tuple[AvroCodec, int]:
    """The consumer codec, after it resolved the header of `data`, and its body offset."""
    consumer = codecs(feature_set.name)[3]
    return consumer, resolved_offset(consumer, data)


def _names_the_problem(error: DecodeError) -> bool:
    return names_the_problem(error, "cannot decode skewless.features.")


# -- the vector of the slow path ----------------------------------------------------


@given(fs_and_vectors, _FRAMINGS)
def test_reads_the_vector_the_slow_path_decodes(
    case: tuple[FeatureSet, FeatureVector], framing: Framing
) -> None:
    feature_set, vector = case
    data = _framed(feature_set, vector, framing)
    consumer, offset = _consumer(feature_set, data)
    assert offset == (10 if framing is Framing.SINGLE_OBJECT else 5)
    got = READERS[feature_set.name].read(data, offset)
    _assert_same(got, vector)
    _assert_same(got, _slow(feature_set, consumer, data))


def test_reads_a_bare_body_from_offset_zero() -> None:
    writer = codecs(TINY.name)[0]
    assert READERS[TINY.name].read(writer.body(example(TINY))) == example(TINY)


def test_reader_and_codec_agree_on_the_schema_fingerprint() -> None:
    for name, feature_set in FEATURE_SETS.items():
        codec = AvroCodec(feature_vector_schema(feature_set))
        assert READERS[name].fingerprint == codec.fingerprint


# -- own_body_offset ----------------------------------------------------------------


def test_own_body_offset_is_after_the_header_of_the_own_schema() -> None:
    writer, single_object, confluent, consumer = codecs(FRAUD_FEATURES.name)
    body = writer.body(example())
    assert single_object.own_body_offset(single_object.frame(body)) == 10
    assert confluent.own_body_offset(confluent.frame(body)) == 5  # the id it registered
    assert consumer.own_body_offset(single_object.frame(body)) == 10


def test_an_unseen_confluent_id_is_none_until_decode_resolves_it() -> None:
    registry = SchemaRegistryClient.new_client({"url": "mock://vector-reader-unseen"})
    schema = feature_vector_schema(TINY)
    data = AvroCodec(schema, registry=registry).frame(codecs(TINY.name)[0].body(example(TINY)))
    consumer = AvroCodec(schema, registry=registry)
    assert consumer.own_body_offset(data) is None
    consumer.decode(data)
    assert consumer.own_body_offset(data) == 5


@pytest.mark.parametrize(
    "data",
    [b"", b"\xc3\x01", b"\xc3\x01" + bytes(8) + b"\x00", b"\x00\x00\x00", b'{"event_id": "e"}'],
)
def test_own_body_offset_of_anything_else_is_none(data: bytes) -> None:
    assert codecs(TINY.name)[1].own_body_offset(data) is None


def _evolved(feature_set: FeatureSet) -> dict[str, Any]:
    schema = copy.deepcopy(feature_vector_schema(feature_set))
    schema["fields"].append({"name": "risk_tier", "type": ["null", "string"], "default": None})
    return schema


def test_an_evolved_writer_schema_takes_the_slow_path() -> None:
    vector = example(TINY)
    record = {**vector.to_avro(TINY), "risk_tier": "high"}
    evolved = _evolved(TINY)
    consumer = AvroCodec(feature_vector_schema(TINY), writer_schemas=[evolved])
    data = AvroCodec(evolved).encode(record)
    assert consumer.own_body_offset(data) is None
    assert _slow(TINY, consumer, data) == vector


def test_an_evolved_confluent_writer_takes_the_slow_path_after_decode_too() -> None:
    registry = SchemaRegistryClient.new_client({"url": "mock://vector-reader-evolved"})
    vector = example(TINY)
    producer = AvroCodec(_evolved(TINY), registry=registry, subject="tiny")
    data = producer.encode({**vector.to_avro(TINY), "risk_tier": None})
    consumer = AvroCodec(feature_vector_schema(TINY), registry=registry, subject="tiny")
    assert _slow(TINY, consumer, data) == vector
    assert consumer.own_body_offset(data) is None


# -- corrupt bodies -----------------------------------------------------------------


@given(fs_and_vectors, _FRAMINGS)
def test_every_truncation_is_a_decode_error_naming_the_field(
    case: tuple[FeatureSet, FeatureVector], framing: Framing
) -> None:
    feature_set, vector = case
    data = _framed(feature_set, vector, framing)
    _, offset = _consumer(feature_set, data)
    reader = READERS[feature_set.name]
    for end in range(offset, len(data)):
        with pytest.raises(DecodeError, match="truncated payload") as info:
            reader.read(data[:end], offset)
        assert _names_the_problem(info.value), info.value


def _read_or_error(feature_set: FeatureSet, data: bytes) -> None:
    """The reader raises a DecodeError naming the problem, or agrees with the slow path."""
    consumer, offset = codecs(feature_set.name)[1], 10
    got: FeatureVector | DecodeError
    try:
        got = READERS[feature_set.name].read(data, offset)
    except DecodeError as exc:
        got = exc
    if isinstance(got, DecodeError):
        assert _names_the_problem(got), got
    else:
        _assert_same(got, _slow(feature_set, consumer, data))


@given(st.sampled_from(list(FEATURE_SETS.values())), st.binary(max_size=300))
def test_a_garbage_body_is_a_decode_error_or_the_slow_paths_vector(
    feature_set: FeatureSet, body: bytes
) -> None:
    _read_or_error(feature_set, codecs(feature_set.name)[1].frame(body))


@given(fs_and_vectors, st.data())
def test_a_corrupted_body_is_a_decode_error_or_the_slow_paths_vector(
    case: tuple[FeatureSet, FeatureVector], data: st.DataObject
) -> None:
    feature_set, vector = case
    body = corrupted(codecs(feature_set.name)[0].body(vector), data)
    _read_or_error(feature_set, codecs(feature_set.name)[1].frame(body))


def _tiny_body(**fields: bytes) -> bytes:
    """TINY's example body, some fields replaced by raw bytes."""
    v = example(TINY, event_id="e-1", keys=("m-1",), values=(1.5, 2.0))
    parts = {
        "event_id": varint(3) + b"e-1",
        "event_time": varint(v.event_time),
        "source_timestamp": varint(v.source_timestamp),
        "source_partition": varint(v.source_partition),
        "source_offset": varint(v.source_offset),
        "computed_at": varint(v.computed_at),
        "definition_version": varint(len(TINY.version)) + TINY.version.encode(),
        "late": b"\x00",
        "merchant_id": varint(3) + b"m-1",
        "values": struct.pack("<2d", *v.values),
    }
    parts.update(fields)
    return b"".join(parts.values())


def test_the_tiny_body_reads_as_its_vector() -> None:
    expected = example(TINY, keys=("m-1",), values=(1.5, 2.0))
    assert READERS[TINY.name].read(_tiny_body()) == expected


_TINY_FP = AvroCodec(feature_vector_schema(TINY)).fingerprint.hex()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"event_id": b"\x01"},
            r"invalid Avro body \(negative length\) \(\d+ bytes, writer schema {fp}\): "
            r"field 'event_id' \(string\) at byte 0: length -1",
        ),
        (
            {"event_id": b"\x04\xffx"},
            r"invalid Avro body .*: field 'event_id' \(string\) at byte 0: not UTF-8: "
            r"'utf-8' codec can't decode byte 0xff in position 0",
        ),
        (
            {"event_time": b"\xff" * 10 + b"\x01"},
            r"field 'event_time' \(long\) at byte 4: varint longer than 10 bytes: ff ff",
        ),
        (
            {"event_time": b"\xff" * 9 + b"\x7f"},
            r"field 'event_time' \(long\) at byte 4: .* is outside the Avro long range",
        ),
        (
            {"source_partition": varint(2**31)},
            r"field 'source_partition' \(int\) at byte 16: 2147483648 is outside the Avro int",
        ),
        (
            {"late": b"\x02"},
            r"field 'late' \(boolean\) at byte \d+: byte 02, expected 00 or 01",
        ),
        (
            {"merchant_id": varint(30) + b"m-1"},
            r"truncated payload .*: field 'merchant_id' \(string\) at byte \d+: "
            r"a string of 30 bytes, 19 left",
        ),
        (
            {"values": b"\x00" * 15},
            r"truncated payload \(\d+ bytes, writer schema {fp}\): "
            r"field 'merchant_count_1h' \(double\) at byte \d+: 8 bytes needed, 7 left",
        ),
        (
            {"values": b"\x00" * 16 + b"zz"},
            r"2 trailing bytes after the record \(record ends at byte (\d+) of \d+, "
            r"writer schema {fp}\): 7a 7a$",
        ),
    ],
)
def test_a_corrupt_body_is_a_decode_error_naming_field_expected_and_got(
    fields: dict[str, bytes], message: str
) -> None:
    pattern = r"^cannot decode skewless\.features\.tiny\.FeatureVector: .*" + message
    with pytest.raises(DecodeError, match=pattern.replace("{fp}", _TINY_FP)) as info:
        READERS[TINY.name].read(_tiny_body(**fields))
    assert info.value.__cause__ is not None


def test_a_varint_cut_short_by_the_end_is_a_truncated_payload() -> None:
    data = _tiny_body()[:6]  # inside event_time
    with pytest.raises(DecodeError, match=r"field 'event_time' \(long\) at byte 4: varint cut"):
        READERS[TINY.name].read(data)
