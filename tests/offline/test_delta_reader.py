"""Reading Delta by version: pinned versions, data-version records, clear errors."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from offline import tables
from offline.delta_reader import DataVersion, current_versions, read_table
from offline.errors import OfflineError
from schemas.features.fraud import FRAUD_FEATURES
from streams import delta_tables
from tests.offline.delta_factory import DAY_MS, T0, LabelRow, append_features, append_labels


def test_table_constants_mirror_the_writer() -> None:
    assert (tables.TRANSACTIONS, tables.FEATURES, tables.LABELS) == (
        delta_tables.TRANSACTIONS,
        delta_tables.FEATURES,
        delta_tables.LABELS,
    )
    written = delta_tables.features_schema(FRAUD_FEATURES).names
    keys = {e.key_field for e in FRAUD_FEATURES.entities}
    metadata = [n for n in written if n not in FRAUD_FEATURES.feature_names and n not in keys]
    assert set(metadata) == set(tables.FEATURE_METADATA_COLUMNS)
    assert tuple(delta_tables.labels_schema().names) == tables.LABEL_COLUMNS
    assert tables.table_uri("s3://b/delta/", "labels") == delta_tables.table_uri(
        "s3://b/delta/", "labels"
    )


def test_data_version_round_trips_through_json_sorted_by_table() -> None:
    version = DataVersion.of({"labels": 2, "features": 31})
    assert version.to_json() == '{"features":31,"labels":2}'
    assert DataVersion.from_json(version.to_json()) == version
    assert version["features"] == 31
    assert "labels" in version
    assert "transactions" not in version
    assert str(version) == "features@31,labels@2"
    assert hash(version) == hash(DataVersion.of({"features": 31, "labels": 2}))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("not json", "expected JSON"), ('{"features": "3"}', "integer"), ("[1]", "object")],
)
def test_data_version_from_bad_json_says_what_was_expected(text: str, fragment: str) -> None:
    with pytest.raises(OfflineError, match=fragment):
        DataVersion.from_json(text)


def test_data_version_refuses_negative_versions_and_unknown_tables() -> None:
    with pytest.raises(OfflineError, match="features@-1"):
        DataVersion.of({"features": -1})
    with pytest.raises(OfflineError, match="no table 'labels'"):
        DataVersion.of({"features": 1})["labels"]


def test_read_table_reads_a_pinned_version(tmp_path: Path) -> None:
    append_features(tmp_path / "features", [T0, T0 + 1], ids=["a", "b"])
    append_features(tmp_path / "features", [T0 + 2, T0 + 3, T0 + 4], ids=["c", "d", "e"])
    root = str(tmp_path)
    assert current_versions(root, ["features"]) == DataVersion.of({"features": 1})
    assert read_table(root, "features", version=0).num_rows == 2
    assert read_table(root, "features").num_rows == 5
    only = read_table(root, "features", version=0, columns=["event_id"])
    assert only.column_names == ["event_id"]
    assert sorted(only["event_id"].to_pylist()) == ["a", "b"]


def test_read_table_pushes_a_filter_down(tmp_path: Path) -> None:
    append_labels(
        tmp_path / "labels",
        [LabelRow("a", True, T0), LabelRow("b", True, T0 + DAY_MS)],
    )
    limit = pa.scalar(T0 * 1000, pa.timestamp("us", tz="UTC"))
    rows = read_table(str(tmp_path), "labels", filters=pc.field("label_time") <= limit)
    assert rows["event_id"].to_pylist() == ["a"]


def test_missing_table_version_and_column_are_named(tmp_path: Path) -> None:
    root = str(tmp_path)
    with pytest.raises(OfflineError, match=r"no Delta table at '.*labels'"):
        read_table(root, "labels")
    append_labels(tmp_path / "labels", [LabelRow("a", True, T0)])
    with pytest.raises(OfflineError, match=r"versions 0\.\.0; version 4 does not exist"):
        read_table(root, "labels", version=4)
    with pytest.raises(OfflineError, match=r"no column\(s\) \['nope'\]"):
        read_table(root, "labels", columns=["event_id", "nope"])
    with pytest.raises(OfflineError, match="features"):
        current_versions(root, ["labels", "features"])
