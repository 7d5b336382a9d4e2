"""Delta housekeeping compacts streaming's small files without changing the data."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from streams.maintenance import compact_table


def test_compaction_merges_small_files_and_keeps_every_row(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    for i in range(12):  # twelve streaming commits, one small file each
        write_deltalake(uri, pa.table({"k": [i] * 10, "day": ["d1"] * 10}), mode="append",
                        partition_by=["day"])  # fmt: skip
    before = DeltaTable(uri).to_pyarrow_table().sort_by("k")

    result = compact_table(uri, retention=timedelta(0))

    assert result is not None
    assert result.files_before == 12
    assert result.files_after == 1
    assert result.vacuumed == 12  # the replaced small files, retention 0 in a test
    assert DeltaTable(uri).to_pyarrow_table().sort_by("k").equals(before)


def test_compacting_a_missing_table_is_a_no_op(tmp_path: Path) -> None:
    assert compact_table(str(tmp_path / "absent")) is None
