"""The packaged Avro contracts: loadable by name, matching the typed records."""

from __future__ import annotations

import typing
from typing import Any

import msgspec
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from schemas.codec import AvroCodec, Framing, canonical_fingerprint
from schemas.contracts import SCHEMA_NAMES, codec_for, load_schema
from schemas.errors import ContractError
from schemas.records import Channel, DeadLetter, Label, Transaction

# The CRC-64-AVRO fingerprint of the schema "null", from Avro's schema-tests.txt.
NULL_FINGERPRINT = (7195948357588979594).to_bytes(8, "little")


def test_every_name_loads_a_record_schema_named_after_it() -> None:
    assert SCHEMA_NAMES == ("Transaction", "Label", "DeadLetter", "Prediction", "DriftMetric")
    for name in SCHEMA_NAMES:
        schema = load_schema(name)
        assert schema["type"] == "record"
        assert schema["name"] == name
        assert schema["namespace"] == "skewless"


def test_load_schema_returns_a_fresh_copy() -> None:
    load_schema("Label")["fields"].clear()
    assert len(load_schema("Label")["fields"]) == 4


def test_unknown_name_is_a_contract_error_listing_the_known_ones() -> None:
    with pytest.raises(ContractError, match=r"unknown schema 'Nope'.*'Transaction'"):
        load_schema("Nope")  # type: ignore[arg-type]


@pytest.mark.parametrize("record_type", [Transaction, Label, DeadLetter])
def test_schema_fields_match_the_record_struct(record_type: type[Any]) -> None:
    schema = load_schema(record_type.__name__)  # type: ignore[arg-type]
    hints = typing.get_type_hints(record_type)
    record_fields = msgspec.structs.fields(record_type)
    assert [f["name"] for f in schema["fields"]] == [f.name for f in record_fields]
    for avro_field, record_field in zip(schema["fields"], record_fields, strict=True):
        nullable = type(None) in typing.get_args(hints[record_field.name])
        assert isinstance(avro_field["type"], list) == nullable, record_field.name
        if record_field.default is None:
            assert avro_field["type"][0] == "null"
            assert "default" in avro_field
            assert avro_field["default"] is None


def test_channel_enum_matches_the_record_enum() -> None:
    (channel,) = [f for f in load_schema("Transaction")["fields"] if f["name"] == "channel"]
    assert channel["type"]["symbols"] == [c.value for c in Channel]


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("Transaction", "event_time"),
        ("Label", "label_time"),
        ("DeadLetter", "failed_at"),
        ("Prediction", "event_time"),
        ("Prediction", "scored_at"),
        ("Prediction", "source_timestamp"),
        ("DriftMetric", "window_start"),
        ("DriftMetric", "window_end"),
    ],
)
def test_times_are_timestamp_millis(name: Any, field: str) -> None:
    (avro_field,) = [f for f in load_schema(name)["fields"] if f["name"] == field]
    assert avro_field["type"] == {"type": "long", "logicalType": "timestamp-millis"}


def test_placeholder_enums() -> None:
    prediction = {f["name"]: f["type"] for f in load_schema("Prediction")["fields"]}
    assert prediction["decision"]["symbols"] == ["approve", "review", "decline"]
    drift = {f["name"]: f["type"] for f in load_schema("DriftMetric")["fields"]}
    assert drift["level"]["symbols"] == ["ok", "warn", "alert"]
    assert drift["count"] == "long"


def test_canonical_fingerprint_matches_the_avro_reference_value() -> None:
    assert canonical_fingerprint({"type": "null"}) == NULL_FINGERPRINT


def test_fingerprint_ignores_docs_and_logical_types_but_not_fields() -> None:
    schema = load_schema("Label")
    bare: dict[str, Any] = {
        "type": "record",
        "name": "skewless.Label",
        "fields": [
            {"name": "event_id", "type": "string"},
            {"name": "is_fraud", "type": "boolean"},
            {"name": "label_time", "type": "long"},
            {"name": "reason", "type": "string"},
        ],
    }
    assert canonical_fingerprint(schema) == canonical_fingerprint(bare)
    bare["fields"].pop()
    assert canonical_fingerprint(schema) != canonical_fingerprint(bare)


def test_codec_for_shares_one_codec_per_name_without_registry() -> None:
    codec = codec_for("Transaction")
    assert codec is codec_for("Transaction")
    assert codec.name == "skewless.Transaction"
    assert codec.fingerprint == canonical_fingerprint(load_schema("Transaction"))
    assert (
        codec.encode(Transaction("e", "c", "m", 1.0, "EUR", "1", "DE", Channel.ATM, 0).to_avro())[
            :10
        ]
        == b"\xc3\x01" + codec.fingerprint
    )


def test_codec_for_with_registry_writes_confluent_framing_under_the_topic_subject() -> None:
    registry = SchemaRegistryClient.new_client({"url": "mock://contracts"})
    codec = codec_for("Label", registry=registry, topic="labels")
    assert isinstance(codec, AvroCodec)
    assert codec is not codec_for("Label")
    assert codec.subject == "labels-value"
    data = codec.encode(Label("e1", True, 5, "chargeback").to_avro())
    assert codec.detect_framing(data) is Framing.CONFLUENT
    assert registry.get_latest_version("labels-value").schema_id == int.from_bytes(data[1:5], "big")
