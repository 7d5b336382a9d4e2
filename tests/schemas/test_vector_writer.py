"""FeatureVectorWriter: fastavro's bytes for any vector, framed by the codec, or an error."""

from __future__ import annotations

import struct
from io import BytesIO
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from fastavro import parse_schema, schemaless_writer
from hypothesis import given
from hypothesis import strategies as st

from schemas.codec import AvroCodec, EncodeError, Framing
from schemas.features import FeatureSet
from schemas.features.fraud import FRAUD_FEATURES
from schemas.features.vector import FeatureVector, feature_vector_schema
from schemas.features.vector_avro import FeatureVectorWriter
from tests.schemas.vector_cases import TINY, codecs, example, fs_and_vectors


def _fastavro_body(feature_set: FeatureSet, record: dict[str, Any]) -> bytes:
    buf = BytesIO()
    schemaless_writer(buf, parse_schema(feature_vector_schema(feature_set)), record)
    return buf.getvalue()


@given(fs_and_vectors)
def test_body_is_fastavros_bytes_for_any_vector(case: tuple[FeatureSet, FeatureVector]) -> None:
    feature_set, vector = case
    body = FeatureVectorWriter(feature_set).body(vector)
    assert body == _fastavro_body(feature_set, vector.to_avro(feature_set))


@given(fs_and_vectors, st.sampled_from([Framing.SINGLE_OBJECT, Framing.CONFLUENT]))
def test_framed_body_equals_encode_and_round_trips_bit_exact(
    case: tuple[FeatureSet, FeatureVector], framing: Framing
) -> None:
    feature_set, vector = case
    writer, single_object, confluent, consumer = codecs(feature_set.name)
    producer = single_object if framing is Framing.SINGLE_OBJECT else confluent
    data = producer.frame(writer.body(vector))
    assert producer.detect_framing(data) is framing
    assert data == producer.encode(vector.to_avro(feature_set))
    back = FeatureVector.from_avro(feature_set, consumer.decode(data))
    assert writer.body(back) == writer.body(vector)  # bit exact, NaN payloads included


def test_confluent_frame_registers_the_schema_on_first_use() -> None:
    registry = SchemaRegistryClient.new_client({"url": "mock://vector-writer-frame"})
    codec = AvroCodec(feature_vector_schema(TINY), registry=registry, topic="tiny-features")
    data = codec.frame(FeatureVectorWriter(TINY).body(example(TINY)))
    schema_id = registry.get_latest_version("tiny-features-value").schema_id
    assert schema_id is not None
    assert data[:5] == b"\x00" + schema_id.to_bytes(4, "big")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"keys": ("c-1",)}, r"expected 2 keys \['card_id', 'merchant_id'\], got 1"),
        ({"keys": ("c-1", "m-1", "x")}, r"expected 2 keys \['card_id', 'merchant_id'\], got 3"),
        ({"values": (1.0,) * 26}, r"expected 27 values \['amount', 'log_amount', .*\], got 26"),
        ({"values": ()}, r"expected 27 values .*, got 0"),
        ({"source_partition": 2**31}, r"field 'source_partition': expected int in \["),
        ({"source_offset": 2**63}, r"field 'source_offset': expected long in \["),
        ({"event_time": -(2**63) - 1}, r"field 'event_time': expected long"),
        ({"event_time": 1.5}, r"field 'event_time': expected long"),
        ({"values": ("x",) * 27}, r"field 'amount': expected double, got string 'x'"),
        ({"keys": ("c-1", None)}, r"field 'merchant_id': expected string, got null"),
    ],
)
def test_a_vector_that_does_not_fit_is_an_encode_error_naming_it(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(EncodeError, match=r"event 'e-1' for 'fraud': " + message):
        FeatureVectorWriter(FRAUD_FEATURES).body(example(**changes))


def test_unencodable_text_is_an_encode_error() -> None:
    with pytest.raises(EncodeError, match="UnicodeEncodeError") as info:
        FeatureVectorWriter(FRAUD_FEATURES).body(example(keys=("c-\ud800", "m-1")))
    assert isinstance(info.value.__cause__, UnicodeEncodeError)


def test_body_ends_with_late_the_keys_then_little_endian_doubles() -> None:
    vector = example(TINY, values=(-0.0, float("inf")))
    body = FeatureVectorWriter(TINY).body(vector)
    assert body.endswith(b"\x00\x14merchant-1" + struct.pack("<2d", -0.0, float("inf")))
