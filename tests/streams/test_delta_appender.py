"""The Delta appender: idempotent per-partition commits and off-thread log checkpoints."""

from __future__ import annotations

import time
from pathlib import Path

from schemas.records import Label
from streams.delta_tables import labels_schema, labels_table
from streams.sinks.delta_appender import DeltaAppender


def _rows(partition: int, offsets: range) -> list[tuple[Label, int, int]]:
    return [(Label(f"e{o}", True, 1_767_225_600_000 + o, "r"), partition, o) for o in offsets]


def test_replays_are_skipped_by_committed_version_without_recovery_state(tmp_path: Path) -> None:
    uri = str(tmp_path / "labels")
    first = DeltaAppender(
        uri, labels_schema(), app_id="a", partition_by=["label_date"], resume_version=None
    )
    first.add(labels_table(_rows(0, range(10))))
    first.commit()
    again = DeltaAppender(
        uri, labels_schema(), app_id="a", partition_by=["label_date"], resume_version=None
    )
    assert [again.accepts(0, o) for o in (0, 9, 10)] == [False, False, True]
    assert again.accepts(1, 0)


def test_log_checkpoints_are_written_off_the_commit_path(tmp_path: Path) -> None:
    uri = str(tmp_path / "labels")
    appender = DeltaAppender(
        uri,
        labels_schema(),
        app_id="a",
        partition_by=["label_date"],
        resume_version=None,
        checkpoint_every=3,
    )
    for batch in range(3):
        appender.add(labels_table(_rows(0, range(batch * 5, batch * 5 + 5))))
        appender.commit()
    checkpoint = Path(uri) / "_delta_log" / "00000000000000000003.checkpoint.parquet"
    deadline = time.monotonic() + 30
    while not checkpoint.exists():
        assert time.monotonic() < deadline, "no checkpoint at version 3 within 30 s"
        time.sleep(0.05)  # polling interval of the deadline loop
    assert not (Path(uri) / "_delta_log" / "00000000000000000002.checkpoint.parquet").exists()
