"""Backfill replays history through the same dataflow and reproduces the feature rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest
import redis
from deltalake import DeltaTable

from schemas.features.fraud import FRAUD_FEATURES
from skewless.endpoints import Endpoints
from streams.audit import audit_skew
from streams.delta_tables import FEATURES, TRANSACTIONS, table_uri
from streams.features.flow import build_feature_flow
from streams.runner import run_dataflow
from streams.sinks.feature_store import FeatureStoreConfig
from streams.sources import DeltaTransactionsSource, KafkaTransactions
from tests.factories import produce_transactions, transactions

pytestmark = pytest.mark.integration

_COMPARED = ["event_id", "event_time", "source_partition", "source_offset", "late"]


def _rows(root: Path) -> pa.Table:
    table = DeltaTable(table_uri(str(root), FEATURES)).to_pyarrow_table(
        columns=_COMPARED + list(FRAUD_FEATURES.feature_names)
    )
    return table.sort_by([("source_partition", "ascending"), ("source_offset", "ascending")])


def test_backfill_from_delta_reproduces_feature_rows_bit_for_bit(
    tmp_path: Path,
    kafka_config: dict[str, str],
    make_topic: Callable[..., str],
    clean_redis: redis.Redis,
    services: Endpoints,
) -> None:
    # In event-time order, over partitions of unequal sizes: a merchant's events come from
    # all four, so only a merge by event time replays them in the order the live run read.
    events = transactions(3_000, seed=31, cards=50, merchants=12)
    topic = make_topic("tx", 4)
    produce_transactions(kafka_config, topic, events)

    live = FeatureStoreConfig(
        feature_set=FRAUD_FEATURES,
        app_id="live",
        redis_url=services.redis_url,
        redis_prefix="live",
        delta_root=str(tmp_path / "live"),
        delta_storage_options=None,
        kafka_config=None,
        features_topic=None,
    )
    source = KafkaTransactions(kafka_config, topic, bounded=True)
    run_dataflow(build_feature_flow(live, source, dead_letters=None))

    backfill = replace(
        live, app_id="backfill", redis_prefix="backfill", delta_root=str(tmp_path / "backfill"),
        write_raw=False,
    )  # fmt: skip
    raw = DeltaTable(table_uri(str(tmp_path / "live"), TRANSACTIONS))
    run_dataflow(build_feature_flow(backfill, DeltaTransactionsSource(raw), dead_letters=None))

    original, replayed = _rows(tmp_path / "live"), _rows(tmp_path / "backfill")
    assert original.num_rows == len(events)
    assert replayed.equals(original)  # every value, bit for bit (NaN-free float columns)
    report = audit_skew(
        clean_redis, FRAUD_FEATURES, prefix="backfill", delta_root=str(tmp_path / "backfill")
    )
    assert report.ok, report.mismatches[:5]
