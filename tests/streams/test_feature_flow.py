"""The feature dataflow end to end: real broker, real Redis, real Delta tables."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka import Producer
from deltalake import DeltaTable

from schemas.codec import AvroCodec, Framing
from schemas.contracts import codec_for, registry_client
from schemas.features import CompiledFeatureSet, FeatureVector, LocalEngine, feature_vector_schema
from schemas.features.fraud import FRAUD_FEATURES
from schemas.records import DeadLetter, Transaction
from skewless.endpoints import Endpoints
from streams.audit import audit_skew
from streams.delta_tables import FEATURES, table_uri
from streams.features.flow import build_feature_flow
from streams.runner import run_dataflow
from streams.sinks.dead_letter import DeadLetterTarget
from streams.sinks.feature_store import FeatureStoreConfig
from streams.sources import KafkaTransactions
from tests.factories import produce_payloads, produce_transactions, transactions
from tests.kafka_helpers import consume_all

pytestmark = pytest.mark.integration

GARBAGE = [b"", b"\x00\x01", b"{not json", b'{"event_id": "x"}', b"\xc3\x01" + b"\x00" * 8 + b"zz"]


def _config(
    delta_root: Path, services: Endpoints, kafka_config: dict[str, str], features_topic: str
) -> FeatureStoreConfig:
    return FeatureStoreConfig(
        feature_set=FRAUD_FEATURES,
        app_id="test-features",
        redis_url=services.redis_url,
        redis_prefix="t",
        delta_root=str(delta_root),
        delta_storage_options=None,
        kafka_config=kafka_config,
        features_topic=features_topic,
    )


def _run(
    config: FeatureStoreConfig, kafka_config: dict[str, str], topic: str, dead_topic: str
) -> None:
    flow = build_feature_flow(
        config,
        KafkaTransactions(kafka_config, topic, bounded=True),
        dead_letters=DeadLetterTarget(kafka_config, dead_topic),
    )
    run_dataflow(flow)


def _assert_rows_equal_engine(rows: list[dict[str, Any]], order: list[Transaction]) -> None:
    """Every feature row is what the in-process engine computes processing `order`."""
    engine = LocalEngine(CompiledFeatureSet(FRAUD_FEATURES))
    expected = {e.event_id: engine.compute(e) for e in order}
    for row in rows:
        values, late = expected[row["event_id"]]
        assert tuple(row[n] for n in FRAUD_FEATURES.feature_names) == values, row["event_id"]
        assert row["late"] == late


def test_one_partition_stream_lands_identically_in_every_store(
    tmp_path: Path,
    kafka_config: dict[str, str],
    make_topic: Callable[..., str],
    clean_redis: redis.Redis,
    services: Endpoints,
) -> None:
    events = transactions(2_000, seed=11, cards=40, merchants=15)
    source, features_topic = make_topic("tx", 1), make_topic("fv", 4)
    dead_topic = make_topic("dl", 1)
    codec = codec_for("Transaction")
    payloads = [(e.card_id, codec.encode(e.to_avro())) for e in events]
    junk_offsets = []
    for i, junk in enumerate(GARBAGE * 4):  # 1% garbage, interleaved
        offset = 50 + i * 97
        payloads.insert(offset, (f"junk{i}", junk))
        junk_offsets.append(offset)
    produce_payloads(kafka_config, source, payloads)

    delta_root = tmp_path / "delta"
    _run(
        _config(delta_root, services, kafka_config, features_topic),
        kafka_config,
        source,
        dead_topic,
    )

    table = DeltaTable(table_uri(str(delta_root), FEATURES)).to_pyarrow_table()
    assert table.num_rows == len(events)
    assert sorted(table.column("event_id").to_pylist()) == sorted(e.event_id for e in events)

    # One partition is one processing order: the dataflow equals the in-process engine.
    _assert_rows_equal_engine(table.to_pylist(), events)

    report = audit_skew(clean_redis, FRAUD_FEATURES, prefix="t", delta_root=str(delta_root))
    assert report.entities == 40 + 15
    assert report.ok, report.mismatches[:5]

    fv_codec = AvroCodec(feature_vector_schema(FRAUD_FEATURES))
    vectors = [
        FeatureVector.from_avro(FRAUD_FEATURES, fv_codec.decode(m.value() or b""))
        for m in consume_all(kafka_config, features_topic)
    ]
    assert {v.event_id for v in vectors} == {e.event_id for e in events}
    assert all(v.source_timestamp > 0 for v in vectors)

    dl_codec = codec_for("DeadLetter")
    dead = [
        DeadLetter.from_avro(dl_codec.decode(m.value() or b""))
        for m in consume_all(kafka_config, dead_topic)
    ]
    assert sorted(d.source_offset for d in dead) == junk_offsets
    assert all(d.reason and d.source_topic == source and d.source_partition == 0 for d in dead)


def test_a_backlog_over_unequal_partitions_is_read_in_event_time_order(
    tmp_path: Path,
    kafka_config: dict[str, str],
    make_topic: Callable[..., str],
    clean_redis: redis.Redis,
    services: Endpoints,
) -> None:
    # A quarter of the cards on partition 0, the rest on 1: read a batch per partition at a
    # time, partition 0 ran 3x ahead in event time, and a merchant (with events on both)
    # marked partition 1's events late and left them out of its windows.
    events = transactions(6_000, seed=14, cards=40, merchants=6)
    source, features_topic = make_topic("tx", 2), make_topic("fv", 1)
    codec = codec_for("Transaction")
    producer = Producer({**kafka_config, "enable.idempotence": True, "linger.ms": 20})
    for e in events:
        partition = 0 if int(e.card_id[1:]) % 4 == 0 else 1
        producer.produce(
            source, key=e.card_id.encode(), value=codec.encode(e.to_avro()), partition=partition
        )
    assert producer.flush(60) == 0

    delta_root = tmp_path / "delta"
    config = _config(delta_root, services, kafka_config, features_topic)
    _run(config, kafka_config, source, make_topic("dl", 1))

    rows = DeltaTable(table_uri(str(delta_root), FEATURES)).to_pyarrow_table().to_pylist()
    assert len(rows) == len(events)
    assert not any(row["late"] for row in rows)
    # The stream is in event-time order, so the merged order is (event time, partition,
    # offset), and the dataflow equals the in-process engine run in that order.
    by_id = {e.event_id: e for e in events}
    rows.sort(key=lambda r: (r["event_time"], r["source_partition"], r["source_offset"]))
    _assert_rows_equal_engine(rows, [by_id[row["event_id"]] for row in rows])
    report = audit_skew(clean_redis, FRAUD_FEATURES, prefix="t", delta_root=str(delta_root))
    assert report.ok, report.mismatches[:5]


def test_replay_adds_no_rows_and_keeps_stores_equal(
    tmp_path: Path,
    kafka_config: dict[str, str],
    make_topic: Callable[..., str],
    clean_redis: redis.Redis,
    services: Endpoints,
) -> None:
    events = transactions(3_000, seed=12, cards=60, merchants=20)
    source, features_topic = make_topic("tx", 4), make_topic("fv", 4)
    dead_topic = make_topic("dl", 1)
    produce_transactions(kafka_config, source, events)
    delta_root = tmp_path / "delta"
    config = _config(delta_root, services, kafka_config, features_topic)

    _run(config, kafka_config, source, dead_topic)
    _run(config, kafka_config, source, dead_topic)  # no recovery state: a full replay

    table = DeltaTable(table_uri(str(delta_root), FEATURES)).to_pyarrow_table()
    assert table.num_rows == len(events)
    assert len(set(table.column("event_id").to_pylist())) == len(events)
    report = audit_skew(clean_redis, FRAUD_FEATURES, prefix="t", delta_root=str(delta_root))
    assert report.ok, report.mismatches[:5]


def test_with_a_schema_registry_every_record_uses_the_confluent_wire_format(
    tmp_path: Path,
    kafka_config: dict[str, str],
    make_topic: Callable[..., str],
    clean_redis: redis.Redis,
    services: Endpoints,
) -> None:
    registry = {"url": "mock://feature-flow-test"}  # confluent-kafka's in-memory registry
    events = transactions(300, seed=13, cards=10, merchants=5)
    source, features_topic = make_topic("tx", 1), make_topic("fv", 1)
    dead_topic = make_topic("dl", 1)
    txn_codec = codec_for("Transaction", registry=registry_client(registry), topic=source)
    payloads = [(e.card_id, txn_codec.encode(e.to_avro())) for e in events]
    assert all(value[0] == 0 for _, value in payloads)  # Confluent framing: magic byte 0
    produce_payloads(kafka_config, source, [*payloads, ("junk", b"\x00\x00\x00\x00\x63zz")])

    config = replace(
        _config(tmp_path / "delta", services, kafka_config, features_topic),
        schema_registry=registry,
    )
    dead = DeadLetterTarget(kafka_config, dead_topic, schema_registry=registry)
    flow = build_feature_flow(
        config, KafkaTransactions(kafka_config, source, bounded=True), dead_letters=dead
    )
    run_dataflow(flow)

    fv_codec = AvroCodec(feature_vector_schema(FRAUD_FEATURES), registry=registry_client(registry))
    records = [m.value() or b"" for m in consume_all(kafka_config, features_topic)]
    assert {fv_codec.detect_framing(r) for r in records} == {Framing.CONFLUENT}
    ids = {FeatureVector.from_avro(FRAUD_FEATURES, fv_codec.decode(r)).event_id for r in records}
    assert ids == {e.event_id for e in events}
    (letter,) = consume_all(kafka_config, dead_topic)
    dl_codec = codec_for("DeadLetter", registry=registry_client(registry))
    assert (letter.value() or b"")[0] == 0
    assert "schema id 99" in DeadLetter.from_avro(dl_codec.decode(letter.value() or b"")).reason
