"""Small `features` and `labels` Delta tables with the writer's exact schemas, for tests.

The schemas come from `streams.delta_tables` (the writer), so these tables are what the
pipeline writes; `offline` itself never imports `streams`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake import write_deltalake

from offline.delta_reader import DataVersion
from offline.training_set import TrainingSet
from offline.validation import range_rules
from schemas.features import FeatureSet
from schemas.features.fraud import FRAUD_FEATURES
from streams.delta_tables import features_schema, labels_schema

__all__ = [
    "DAY_MS",
    "T0",
    "LabelRow",
    "append_features",
    "append_labels",
    "feature_values",
    "make_training_set",
]

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
DAY_MS = 86_400_000
_MS_PER_DAY = DAY_MS


@dataclass(frozen=True)
class LabelRow:
    event_id: str
    is_fraud: bool
    label_time: int
    source_partition: int = 0
    source_offset: int = 0


def feature_values(n: int, *, seed: int, feature_set: FeatureSet = FRAUD_FEATURES) -> np.ndarray:
    """`[n, d]` float64 values that pass every range rule of the fraud definition."""
    rng = np.random.default_rng(seed)
    rules = range_rules(feature_set, max_events_per_second=100.0)
    columns = []
    for name in feature_set.feature_names:
        rule = rules[name]
        if rule.values is not None:
            col = rng.integers(0, 2, n).astype(np.float64)
        elif rule.integer:
            col = rng.integers(1, 9, n).astype(np.float64)
        elif np.isfinite(rule.high):
            col = rng.uniform(rule.low, rule.high, n) * 0.999
        elif rule.low == 0.0:
            col = rng.lognormal(3, 1, n)
        else:
            col = rng.normal(0, 1, n)
        columns.append(col)
    return np.column_stack(columns) if columns else np.empty((n, 0))


def append_features(
    uri: Path,
    times: Sequence[int],
    *,
    ids: Sequence[str] | None = None,
    partitions: Sequence[int] | None = None,
    offsets: Sequence[int] | None = None,
    values: np.ndarray | None = None,
    definition_version: str | None = None,
    feature_set: FeatureSet = FRAUD_FEATURES,
    seed: int = 0,
) -> None:
    """Append one row per event time to the features table at `uri` (created if absent)."""
    n = len(times)
    ids = ids if ids is not None else [f"e{i}" for i in range(n)]
    partitions = partitions if partitions is not None else [0] * n
    offsets = offsets if offsets is not None else list(range(n))
    values = values if values is not None else feature_values(n, seed=seed)
    schema = features_schema(feature_set)
    us = pa.array([t * 1000 for t in times], pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    data: dict[str, pa.Array] = {
        "event_id": pa.array(ids, pa.string()),
        "card_id": pa.array([f"c{i % 5}" for i in range(n)], pa.string()),
        "merchant_id": pa.array([f"m{i % 3}" for i in range(n)], pa.string()),
        "event_time": us,
        "source_partition": pa.array(partitions, pa.int32()),
        "source_offset": pa.array(offsets, pa.int64()),
        "source_timestamp": us,
        "computed_at": us,
        "definition_version": pa.array(
            [definition_version or feature_set.version] * n, pa.string()
        ),
        "late": pa.array([False] * n, pa.bool_()),
        "event_date": pa.array([t // _MS_PER_DAY for t in times], pa.int32()).cast(pa.date32()),
    }
    for j, name in enumerate(feature_set.feature_names):
        data[name] = pa.array(values[:, j], pa.float64())
    table = pa.Table.from_arrays([data[f.name] for f in schema], schema=schema)
    write_deltalake(str(uri), table, mode="append", partition_by=["event_date"])


def append_labels(uri: Path, rows: Sequence[LabelRow]) -> None:
    """Append labels to the labels table at `uri` (created if absent)."""
    times = [r.label_time for r in rows]
    table = pa.Table.from_arrays(
        [
            pa.array([r.event_id for r in rows], pa.string()),
            pa.array([r.is_fraud for r in rows], pa.bool_()),
            pa.array([t * 1000 for t in times], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            pa.array(["chargeback"] * len(rows), pa.string()),
            pa.array([r.source_partition for r in rows], pa.int32()),
            pa.array([r.source_offset for r in rows], pa.int64()),
            pa.array([t // _MS_PER_DAY for t in times], pa.int32()).cast(pa.date32()),
        ],
        schema=labels_schema(),
    )
    write_deltalake(str(uri), table, mode="append", partition_by=["label_date"])


def make_training_set(
    n: int = 1000,
    *,
    seed: int = 0,
    positives_every: int = 50,
    values: np.ndarray | None = None,
    feature_names: tuple[str, ...] = FRAUD_FEATURES.feature_names,
) -> TrainingSet:
    """A valid in-memory training set of the fraud definition (2% positives by default)."""
    x = values if values is not None else feature_values(n, seed=seed)
    times = T0 + np.arange(n, dtype=np.int64) * 60_000
    y = np.zeros(n, dtype=np.float32)
    if positives_every:
        y[::positives_every] = 1.0
    split = np.zeros(n, dtype=np.int8)
    split[int(n * 0.7) :] = 1
    split[int(n * 0.85) :] = 2
    return TrainingSet(
        feature_names=feature_names,
        x=np.asarray(x, dtype=np.float32),
        y=y,
        event_time=times,
        event_id=np.array([f"e{i}" for i in range(n)], dtype=object),
        split=split,
        data_version=DataVersion.of({"features": 3, "labels": 1}),
        definition_version=FRAUD_FEATURES.version,
        cutoff_ms=int(times[-1]) + 30 * DAY_MS,
        maturity_ms=7 * DAY_MS,
    )
