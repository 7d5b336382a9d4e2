"""PredictionWriter: fastavro's bytes for any prediction, framed by the codec, or an error."""

from __future__ import annotations

from functools import cache
from io import BytesIO
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from fastavro import parse_schema, schemaless_writer
from hypothesis import given
from hypothesis import strategies as st

from schemas import records_avro
from schemas.codec import AvroCodec, EncodeError, Framing
from schemas.contracts import load_schema
from schemas.errors import ContractError
from schemas.records import Decision, Prediction
from schemas.records_avro import PredictionWriter
from tests.schemas.test_records_avro import _doubles, _millis, _texts

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


@cache
def codecs() -> tuple[AvroCodec, AvroCodec, AvroCodec]:
    """Single-object producer, Confluent producer, consumer (registry only)."""
    schema = load_schema("Prediction")
    registry = SchemaRegistryClient.new_client({"url": "mock://prediction-writer"})
    return (
        AvroCodec(schema),
        AvroCodec(schema, registry=registry, topic="predictions"),
        AvroCodec(schema, registry=registry),
    )


def fastavro_body(prediction: Prediction) -> bytes:
    buf = BytesIO()
    schemaless_writer(buf, parse_schema(load_schema("Prediction")), prediction.to_avro())
    return buf.getvalue()


@given(predictions)
def test_body_is_fastavros_bytes_for_any_prediction(prediction: Prediction) -> None:
    assert PredictionWriter().body(prediction) == fastavro_body(prediction)


def test_repeated_model_texts_are_written_the_same_every_time() -> None:
    writer = PredictionWriter()
    first = [writer.body(example(event_id=f"e-{i}", variant=v)) for i, v in enumerate("ab" * 3)]
    assert first == [
        fastavro_body(example(event_id=f"e-{i}", variant=v)) for i, v in enumerate("ab" * 3)
    ]


@given(predictions, st.sampled_from([Framing.SINGLE_OBJECT, Framing.CONFLUENT]))
def test_framed_body_equals_encode_and_round_trips(
    prediction: Prediction, framing: Framing
) -> None:
    single_object, confluent, consumer = codecs()
    producer = single_object if framing is Framing.SINGLE_OBJECT else confluent
    data = producer.frame(PredictionWriter().body(prediction))
    assert data == producer.encode(prediction.to_avro())
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


def test_a_schema_the_writer_was_not_written_for_is_a_contract_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    schema = load_schema("Prediction")
    schema["fields"][6]["type"] = "float"
    monkeypatch.setattr(records_avro, "load_schema", lambda name: schema)
    with pytest.raises(ContractError, match=r"the schema has .*\('score', 'float'\)"):
        PredictionWriter()
