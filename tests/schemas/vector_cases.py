"""Feature sets, random vectors and codecs shared by the vector writer and reader tests."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from hypothesis import strategies as st
from msgspec.structs import replace

from schemas.codec import AvroCodec
from schemas.features import Aggregation, Entity, FeatureSet, FeatureView, Identity
from schemas.features.fraud import FRAUD_FEATURES
from schemas.features.vector import FeatureVector, feature_vector_schema
from schemas.features.vector_avro import FeatureVectorWriter

TINY = FeatureSet(
    name="tiny",
    request_features=(Identity("amount", source="amount"),),
    views=(
        FeatureView(
            name="merchant",
            entity=Entity("merchant", key_field="merchant_id"),
            aggregations=(Aggregation("merchant_count_1h", "count", timedelta(hours=1)),),
        ),
    ),
)
FEATURE_SETS = {fs.name: fs for fs in (FRAUD_FEATURES, TINY)}

_longs = st.integers(-(2**63), 2**63 - 1) | st.integers(0, 2**42)  # any, and epoch-millis-like
_doubles = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True) | st.sampled_from(
    [-0.0, float("nan"), float("-inf"), 5e-324, -2.2250738585072014e-308]
)
_texts = st.text() | st.sampled_from(["", "é", "卡-7", "\U0001f4b3", "\x00"])


@st.composite
def vectors(draw: st.DrawFn, feature_set: FeatureSet) -> FeatureVector:
    """Any vector that fits `feature_set`'s schema: full ranges, NaNs, any text."""
    n_keys, n_values = len(feature_set.entities), len(feature_set.feature_names)
    return FeatureVector(
        event_id=draw(_texts),
        keys=tuple(draw(st.lists(_texts, min_size=n_keys, max_size=n_keys))),
        event_time=draw(_longs),
        source_timestamp=draw(_longs),
        source_partition=draw(st.integers(-(2**31), 2**31 - 1)),
        source_offset=draw(_longs),
        computed_at=draw(_longs),
        definition_version=draw(st.just(feature_set.version) | _texts),
        late=draw(st.booleans()),
        values=tuple(draw(st.lists(_doubles, min_size=n_values, max_size=n_values))),
    )


fs_and_vectors = st.sampled_from(list(FEATURE_SETS.values())).flatmap(
    lambda fs: st.tuples(st.just(fs), vectors(fs))
)


def example(feature_set: FeatureSet = FRAUD_FEATURES, **changes: Any) -> FeatureVector:
    """A typical vector of `feature_set`, with `changes`."""
    example = FeatureVector(
        event_id="e-1",
        keys=tuple(f"{e.name}-1" for e in feature_set.entities),
        event_time=1_700_000_000_123,
        source_timestamp=1_700_000_000_150,
        source_partition=3,
        source_offset=2**40,
        computed_at=1_700_000_000_190,
        definition_version=feature_set.version,
        late=False,
        values=tuple(float(i) / 3 for i in range(len(feature_set.feature_names))),
    )
    return replace(example, **changes)


@cache
def codecs(name: str) -> tuple[FeatureVectorWriter, AvroCodec, AvroCodec, AvroCodec]:
    """Writer, single-object producer, Confluent producer, consumer (registry only)."""
    schema = feature_vector_schema(FEATURE_SETS[name])
    registry = SchemaRegistryClient.new_client({"url": f"mock://vector-writer-{name}"})
    return (
        FeatureVectorWriter(FEATURE_SETS[name]),
        AvroCodec(schema),
        AvroCodec(schema, registry=registry, topic="features"),
        AvroCodec(schema, registry=registry),
    )
