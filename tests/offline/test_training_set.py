"""Training sets: matured examples, labels known at the cutoff only, time splits, determinism."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from offline.delta_reader import DataVersion, read_table
from offline.errors import OfflineError
from offline.training_set import (
    TrainingSet,
    assemble_training_set,
    build_training_set,
    data_end_ms,
    resolve_labels,
)
from schemas.features.fraud import FRAUD_FEATURES
from tests.offline.delta_factory import (
    DAY_MS,
    T0,
    LabelRow,
    append_features,
    append_labels,
    feature_values,
    make_training_set,
)

WEEK = timedelta(days=7)
CUTOFF = T0 + 30 * DAY_MS


def _build(root: Path, **kwargs: object) -> TrainingSet:
    options: dict[str, object] = {
        "cutoff_ms": CUTOFF,
        "maturity": WEEK,
        "feature_set": FRAUD_FEATURES,
        "burn_in": timedelta(0),  # these tests are about maturity and labels; burn-in below
    }
    options.update(kwargs)
    return build_training_set(str(root), **options)  # type: ignore[arg-type]


def _by_id(ts: TrainingSet) -> dict[str, float]:
    return dict(zip(ts.event_id.tolist(), ts.y.tolist(), strict=True))


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """20 events a day apart (e0..e19) and a few labels, all before the cutoff."""
    append_features(tmp_path / "features", [T0 + i * DAY_MS for i in range(20)])
    append_labels(
        tmp_path / "labels",
        [LabelRow("e1", True, T0 + 3 * DAY_MS), LabelRow("e5", True, T0 + 9 * DAY_MS)],
    )
    return tmp_path


def test_examples_are_matured_events_only_with_an_exclusive_boundary(tmp_path: Path) -> None:
    boundary = CUTOFF - 7 * DAY_MS
    append_features(
        tmp_path / "features",
        [boundary - 1, boundary, boundary + 1, CUTOFF + DAY_MS],
        ids=["before", "at", "after", "future"],
    )
    append_labels(tmp_path / "labels", [LabelRow("before", True, T0)])
    ts = _build(tmp_path)
    assert ts.event_id.tolist() == ["before"]
    assert ts.maturity_ms == 7 * DAY_MS
    assert ts.cutoff_ms == CUTOFF


def test_late_labels_after_the_cutoff_are_never_used(world: Path) -> None:
    """Adversarial: labels stamped after T (even for old events) must not leak into y."""
    before = _build(world)
    append_labels(
        world / "labels",
        [
            LabelRow("e2", True, CUTOFF + 1),  # one millisecond too late
            LabelRow("e3", True, CUTOFF + 60 * DAY_MS),
            LabelRow("e1", False, CUTOFF + 1),  # a later reversal, also unknown at T
            LabelRow("e4", True, CUTOFF),  # exactly at T: known
        ],
    )
    after = _build(world)
    labels = _by_id(after)
    assert labels["e2"] == 0.0
    assert labels["e3"] == 0.0
    assert labels["e1"] == 1.0
    assert labels["e4"] == 1.0
    assert after.data_version["labels"] == before.data_version["labels"] + 1
    changed = {k for k, v in labels.items() if _by_id(before)[k] != v}
    assert changed == {"e4"}


def test_late_labels_are_dropped_by_the_pure_core_too() -> None:
    """Even when the reader does not filter, labels after the cutoff are ignored."""
    labels = pa.table(
        {
            "event_id": ["a", "b"],
            "is_fraud": [True, True],
            "label_time": pa.array([5_000, 5_001_000], pa.timestamp("us", tz="UTC")),
            "source_partition": pa.array([0, 0], pa.int32()),
            "source_offset": pa.array([0, 1], pa.int64()),
        }
    )
    ids, fraud = resolve_labels(labels, cutoff_ms=5_000)
    assert ids.tolist() == ["a"]
    assert fraud.tolist() == [True]
    # 5_000_500 us is half a millisecond after a 5_000 ms cutoff: not known yet.
    late = labels.set_column(2, "label_time", pa.array([5_000_500, 1], pa.timestamp("us", "UTC")))
    ids, _ = resolve_labels(late, cutoff_ms=5_000)
    assert ids.tolist() == ["b"]


def test_the_latest_known_label_wins_and_duplicates_collapse(world: Path) -> None:
    append_labels(
        world / "labels",
        [
            LabelRow("e1", False, T0 + 10 * DAY_MS),  # reversal before T: e1 becomes negative
            LabelRow("e5", True, T0 + 9 * DAY_MS),  # exact duplicate: still one positive
            LabelRow("e6", True, T0 + 10 * DAY_MS, source_offset=1),
            LabelRow("e6", False, T0 + 10 * DAY_MS, source_offset=2),  # tie: later offset wins
            LabelRow("e7", False, T0 + 8 * DAY_MS, source_offset=3),
            LabelRow("e7", True, T0 + 11 * DAY_MS, source_offset=4),  # fraud after a "not"
        ],
    )
    labels = _by_id(_build(world))
    assert (labels["e1"], labels["e5"], labels["e6"], labels["e7"]) == (0.0, 1.0, 0.0, 1.0)
    assert sum(labels.values()) == 2.0


def test_unlabeled_matured_events_are_negatives(world: Path) -> None:
    ts = _build(world)
    assert len(ts) == 20  # days 0..19, all before cutoff - maturity (day 23)
    positives = {e for e, y in _by_id(ts).items() if y == 1.0}
    assert positives == {"e1", "e5"}
    assert ts.label_rate == pytest.approx(2 / len(ts))


def test_rows_of_another_definition_are_an_error_naming_both_versions(tmp_path: Path) -> None:
    append_features(tmp_path / "features", [T0, T0 + 1], definition_version="0123456789abcdef")
    append_labels(tmp_path / "labels", [LabelRow("e0", True, T0)])
    with pytest.raises(OfflineError, match="0123456789abcdef") as info:
        _build(tmp_path)
    assert FRAUD_FEATURES.version in str(info.value)


def test_splits_are_by_time_and_never_share_a_timestamp(tmp_path: Path) -> None:
    times = [T0 + (i // 4) * 3_600_000 for i in range(200)]  # four events per timestamp
    append_features(tmp_path / "features", times, ids=[f"e{i}" for i in range(200)])
    append_labels(tmp_path / "labels", [LabelRow("e3", True, T0)])
    ts = _build(tmp_path)
    train, val, test = (ts.event_time[ts.split == code] for code in (0, 1, 2))
    assert train.max() < val.min() <= val.max() < test.min()
    assert ts.counts == {"train": 140, "val": 28, "test": 32}
    assert np.all(np.diff(ts.event_time) >= 0)
    x_train, y_train = ts.part("train")
    assert x_train.shape == (140, len(FRAUD_FEATURES.feature_names))
    assert y_train.shape == (140,)
    assert ts.x.dtype == np.float32
    assert ts.y.dtype == np.float32
    assert ts.split.dtype == np.int8
    assert ts.event_time.dtype == np.int64


@pytest.mark.parametrize("splits", [(0.5, 0.5, 0.5), (0.8, 0.3, -0.1), (1.0, 0.0)])
def test_bad_splits_are_refused(world: Path, splits: tuple[float, float, float]) -> None:
    with pytest.raises(OfflineError, match="splits"):
        _build(world, splits=splits)


def test_order_and_fingerprint_do_not_depend_on_storage_order(tmp_path: Path) -> None:
    times = [T0 + (i % 7) * 1000 for i in range(40)]
    ids = [f"e{i:02d}" for i in range(40)]
    parts = [i % 3 for i in range(40)]
    offsets = list(range(40))
    values = feature_values(40, seed=3)
    labels = [LabelRow("e05", True, T0), LabelRow("e17", True, T0)]
    a, b = tmp_path / "a", tmp_path / "b"
    append_features(
        a / "features", times, ids=ids, partitions=parts, offsets=offsets, values=values
    )
    append_labels(a / "labels", labels)
    order = np.random.default_rng(1).permutation(40)
    for chunk in np.array_split(order, 3):
        append_features(
            b / "features",
            [times[i] for i in chunk],
            ids=[ids[i] for i in chunk],
            partitions=[parts[i] for i in chunk],
            offsets=[offsets[i] for i in chunk],
            values=values[chunk],
        )
    append_labels(b / "labels", labels[::-1])
    pinned = DataVersion.of({"features": 0, "labels": 0})
    first = _build(a, cutoff_ms=T0 + 8 * DAY_MS, versions=pinned)
    second = _build(b, cutoff_ms=T0 + 8 * DAY_MS, versions=pinned.of({"features": 2, "labels": 0}))
    assert first.event_id.tolist() == second.event_id.tolist()
    np.testing.assert_array_equal(first.x, second.x)
    # Same arrays; the fingerprint also covers the data version, which differs here.
    assert first.fingerprint() != second.fingerprint()
    assert first.fingerprint() == _build(a, cutoff_ms=T0 + 8 * DAY_MS).fingerprint()


def test_pinned_versions_reproduce_an_old_training_set(world: Path) -> None:
    old = _build(world)
    append_features(world / "features", [T0 + 2 * DAY_MS], ids=["new"])
    append_labels(world / "labels", [LabelRow("e0", True, T0 + DAY_MS)])
    assert _build(world).fingerprint() != old.fingerprint()
    again = _build(world, versions=old.data_version)
    assert again.fingerprint() == old.fingerprint()
    assert again.data_version == DataVersion.of({"features": 0, "labels": 0})


def test_data_end_is_the_newest_event_or_label_time(world: Path) -> None:
    versions = DataVersion.of({"features": 0, "labels": 0})
    assert data_end_ms(str(world), versions) == T0 + 19 * DAY_MS
    append_labels(world / "labels", [LabelRow("e1", True, T0 + 40 * DAY_MS)])
    later = DataVersion.of({"features": 0, "labels": 1})
    assert data_end_ms(str(world), later) == T0 + 40 * DAY_MS


def test_training_set_arrays_are_read_only_and_must_agree() -> None:
    ts = make_training_set(50)
    with pytest.raises(ValueError, match="read-only"):
        ts.x[0, 0] = 1.0
    with pytest.raises(OfflineError, match="event_id has 3 rows, expected 50"):
        TrainingSet(
            feature_names=ts.feature_names,
            x=np.array(ts.x),
            y=np.array(ts.y),
            event_time=np.array(ts.event_time),
            event_id=np.array(["a", "b", "c"], dtype=object),
            split=np.array(ts.split),
            data_version=ts.data_version,
            definition_version=ts.definition_version,
            cutoff_ms=ts.cutoff_ms,
            maturity_ms=ts.maturity_ms,
        )
    with pytest.raises(OfflineError, match="split: expected one of"):
        ts.part("holdout")  # type: ignore[arg-type]


def test_summary_reports_counts_positives_and_versions(world: Path) -> None:
    ts = _build(world)
    summary = ts.summary()
    assert summary["rows"] == len(ts)
    assert sum(summary["counts"].values()) == len(ts)
    assert sum(summary["positives"].values()) == 2
    assert summary["data_version"] == {"features": 0, "labels": 0}
    assert summary["fingerprint"] == ts.fingerprint()


def test_assemble_reads_only_columns_it_needs_and_names_missing_ones(world: Path) -> None:
    features = read_table(str(world), "features").drop_columns(["source_offset"])
    labels = read_table(str(world), "labels")
    with pytest.raises(
        OfflineError, match=r"features table has no column\(s\) \['source_offset'\]"
    ):
        assemble_training_set(
            features,
            labels,
            feature_set=FRAUD_FEATURES,
            cutoff_ms=CUTOFF,
            maturity_ms=0,
            data_version=DataVersion.of({"features": 0, "labels": 0}),
        )


def test_burn_in_drops_the_stretch_whose_windows_had_not_filled(world: Path) -> None:
    """Default burn-in is the definition's longest window (the fraud set's: 7 days)."""
    assert FRAUD_FEATURES.max_window == WEEK
    everything = _build(world)
    burned = _build(world, burn_in=None)
    kept = {f"e{i}" for i in range(7, 20) if T0 + i * DAY_MS < CUTOFF - 7 * DAY_MS}
    assert set(burned.event_id.tolist()) == kept  # e0..e6: less than a week of history
    assert set(everything.event_id.tolist()) == kept | {f"e{i}" for i in range(7)}
    assert set(_build(world, burn_in=timedelta(days=2)).event_id.tolist()) == (
        kept | {f"e{i}" for i in range(2, 7)}
    )
