"""The skew audit against a live worker: Delta trailing Redis is pending, not skew."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from schemas.features import CompiledFeatureSet, FeatureVector, LocalEngine
from schemas.features.fraud import FRAUD_FEATURES
from streams import delta_tables
from streams.audit import audit_skew
from streams.sinks.delta_appender import DeltaAppender
from streams.sinks.online import RedisOnlineWriter
from tests.factories import transactions

pytestmark = pytest.mark.integration


def _vectors() -> list[FeatureVector]:
    """Vectors of a short in-order stream of 4 cards, as the dataflow computes them."""
    engine = LocalEngine(CompiledFeatureSet(FRAUD_FEATURES))
    out = []
    for offset, event in enumerate(transactions(40, seed=31, cards=4, merchants=3)):
        values, late = engine.compute(event)
        out.append(
            FeatureVector(
                event_id=event.event_id,
                keys=(event.card_id, event.merchant_id),
                event_time=event.event_time,
                source_timestamp=event.event_time,
                source_partition=0,
                source_offset=offset,
                computed_at=event.event_time,
                definition_version=FRAUD_FEATURES.version,
                late=late,
                values=values,
            )
        )
    return out


def _stores(
    client: redis.Redis, delta_root: Path, online: list[FeatureVector], offline: list[FeatureVector]
) -> None:
    RedisOnlineWriter(client, FRAUD_FEATURES, prefix="a").write(online)
    appender = DeltaAppender(
        delta_tables.table_uri(str(delta_root), delta_tables.FEATURES),
        delta_tables.features_schema(FRAUD_FEATURES),
        app_id="audit",
        partition_by=["event_date"],
        resume_version=None,
    )
    appender.add_rows(offline, delta_tables.feature_rows(FRAUD_FEATURES))
    appender.commit()


def test_an_online_vector_newer_than_the_last_commit_is_pending_not_a_mismatch(
    tmp_path: Path, clean_redis: redis.Redis
) -> None:
    vectors = _vectors()
    _stores(clean_redis, tmp_path, vectors, vectors[:-1])  # the last row not committed yet
    report = audit_skew(clean_redis, FRAUD_FEATURES, prefix="a", delta_root=str(tmp_path))
    assert report.ok, report.mismatches[:5]
    # The last event's card and merchant are newer online than in Delta.
    assert report.pending == 2
    assert report.entities == 4 + 3


def test_an_online_vector_older_than_the_last_commit_is_a_mismatch(
    tmp_path: Path, clean_redis: redis.Redis
) -> None:
    vectors = _vectors()
    _stores(clean_redis, tmp_path, vectors[:-1], vectors)  # Redis missed the last write
    report = audit_skew(clean_redis, FRAUD_FEATURES, prefix="a", delta_root=str(tmp_path))
    assert report.pending == 0
    missed = {(m.entity, m.field) for m in report.mismatches}
    assert {("card", "event_id"), ("merchant", "event_id")} <= missed
