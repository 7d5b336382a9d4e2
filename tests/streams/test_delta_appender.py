"""The Delta appender: idempotent per-partition commits, off-thread commits and checkpoints."""

from __future__ import annotations

import os
import pickle
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from schemas.features import FeatureVector
from schemas.features.fraud import FRAUD_FEATURES
from schemas.records import Channel, Label, Transaction
from streams import state_log
from streams.delta_tables import (
    LABEL_ROWS,
    TRANSACTION_ROWS,
    feature_rows,
    labels_schema,
    labels_table,
)
from streams.errors import StoreError
from streams.maintenance import compact_table
from streams.sinks.delta_appender import DeltaAppender, Rows, _Pending, retention_properties
from streams.sinks.delta_commits import STAGED, STAGED_GEN, BackgroundCommits


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
    _checkpointing_appender(uri, checkpoint_every=3, batches=3)
    checkpoint = Path(uri) / "_delta_log" / "00000000000000000003.checkpoint.parquet"
    deadline = time.monotonic() + 30
    while not checkpoint.exists():
        assert time.monotonic() < deadline, "no checkpoint at version 3 within 30 s"
        time.sleep(0.05)  # polling interval of the deadline loop
    assert not (Path(uri) / "_delta_log" / "00000000000000000002.checkpoint.parquet").exists()


def _checkpointing_appender(
    uri: str, *, checkpoint_every: int, batches: int, compact_every: int | None = None
) -> DeltaAppender:
    """An appender checkpointing every `checkpoint_every` versions, `batches` of 5 committed."""
    appender = DeltaAppender(
        uri,
        labels_schema(),
        app_id="a",
        partition_by=["label_date"],
        resume_version=None,
        checkpoint_every=checkpoint_every,
        compact_every=compact_every,
    )
    for batch in range(batches):
        appender.add(labels_table(_rows(0, range(batch * 5, batch * 5 + 5))))
        appender.commit()
    return appender


def _labels_appender(uri: str, resume_version: int | None = None) -> DeltaAppender:
    return DeltaAppender(
        uri, labels_schema(), app_id="a", partition_by=["label_date"], resume_version=resume_version
    )


def _event_ids(uri: str) -> list[str]:
    return sorted(DeltaTable(uri).to_pyarrow_table(columns=["event_id"])["event_id"].to_pylist())


def test_a_snapshot_keeps_the_rows_it_commits_in_the_background(tmp_path: Path) -> None:
    uri = str(tmp_path / "labels")
    appender = _labels_appender(uri)
    commits = BackgroundCommits({"labels": appender})
    appender.add(labels_table(_rows(0, range(5))))
    state = commits.snapshot()
    commits.wait()
    assert _event_ids(uri) == sorted(f"e{o}" for o in range(5))
    # Recovery pickles the snapshot, staged rows included.
    restored_state = pickle.loads(pickle.dumps(state))
    assert restored_state[STAGED]["labels"].offsets == {0: 4}
    # A restart from that snapshot re-commits nothing: the table holds the rows already.
    again = BackgroundCommits({"labels": _labels_appender(uri, state["labels"])})
    again.restore(restored_state)
    assert _event_ids(uri) == sorted(f"e{o}" for o in range(5))


def test_rows_a_crash_kept_from_landing_are_committed_once_on_restore(tmp_path: Path) -> None:
    uri = str(tmp_path / "labels")
    first = _labels_appender(uri)
    first.add(labels_table(_rows(0, range(3))))
    first.commit()
    staged = Rows.of(labels_table(_rows(0, range(3, 6)))).to_ipc()
    state = {"labels": first.resume_version(), STAGED: {"labels": staged}}
    for _ in range(2):  # the restored worker dies again before its next snapshot
        restored = BackgroundCommits({"labels": _labels_appender(uri, state["labels"])})
        restored.restore(state)
    assert _event_ids(uri) == sorted(f"e{o}" for o in range(6))


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([("source_partition", "ascending"), ("source_offset", "ascending")])


def test_python_rows_are_cut_and_land_as_their_tables_in_the_order_they_came(
    tmp_path: Path,
) -> None:
    by_rows, by_table = str(tmp_path / "rows"), str(tmp_path / "table")
    deferred, direct = _labels_appender(by_rows), _labels_appender(by_table)
    batches = [_rows(0, range(2)), _rows(1, range(3)), _rows(0, range(2, 4))]
    deferred.add_rows(batches[0], LABEL_ROWS)
    deferred.add(labels_table(batches[1]))  # a table between two runs of Python rows
    deferred.add_rows(batches[2], LABEL_ROWS)
    deferred.add_rows([], LABEL_ROWS)
    assert deferred.rows_buffered == 7
    cut = deferred.cut()
    assert cut is not None
    assert cut.table == pa.concat_tables([labels_table(b) for b in batches])
    deferred.write(cut)
    for batch in batches:
        direct.add(labels_table(batch))
    direct.commit()
    # Delta does not promise row order across a commit: compare the rows, sorted.
    assert _sorted(DeltaTable(by_rows).to_pyarrow_table()) == _sorted(
        DeltaTable(by_table).to_pyarrow_table()
    )
    assert [deferred.accepts(p, o) for p, o in ((0, 3), (0, 4), (1, 2), (1, 3))] == [
        False,
        True,
        False,
        True,
    ]


def test_a_backlog_sized_batch_of_python_rows_is_cut_as_its_table(tmp_path: Path) -> None:
    appender = _labels_appender(str(tmp_path / "labels"))
    appender.add_rows(_rows(0, range(200)), LABEL_ROWS)
    cut = appender.cut()
    assert cut is not None
    assert cut.table == labels_table(_rows(0, range(200)))


def test_staged_python_rows_restore_as_their_table(tmp_path: Path) -> None:
    appender = _labels_appender(str(tmp_path / "labels"))
    appender.add_rows(_rows(2, range(4)), LABEL_ROWS)
    cut = appender.cut()
    assert cut is not None
    restored = pickle.loads(pickle.dumps(cut))
    assert restored.table == labels_table(_rows(2, range(4)))
    assert restored.offsets == cut.offsets == {2: 3}


def _mixed_cut(tmp_path: Path, first: int) -> tuple[Rows, pa.Table]:
    """Rows cut from live-sized batches of Python rows (partition 0: `first` rows in 6s),
    a built table (partition 1: 3 rows) and 10 more Python rows; and the table they are."""
    appender = _labels_appender(str(tmp_path / "labels"))
    for start in range(0, first, 6):  # kept as Python rows until cut
        appender.add_rows(_rows(0, range(start, min(start + 6, first))), LABEL_ROWS)
    appender.add(labels_table(_rows(1, range(3))))
    appender.add_rows(_rows(0, range(first, first + 10)), LABEL_ROWS)
    cut = appender.cut()
    assert cut is not None
    parts = [_rows(0, range(first)), _rows(1, range(3)), _rows(0, range(first, first + 10))]
    return cut, pa.concat_tables([labels_table(p) for p in parts])


def test_rows_built_paced_are_the_rows_built_at_once(tmp_path: Path) -> None:
    cut, whole = _mixed_cut(tmp_path, 60)
    cut.build_paced(slice_rows=7, pause_s=0.0)
    assert cut.table == whole
    assert cut.offsets == {0: 69, 1: 2}


def test_a_paced_build_gives_way_to_a_table_built_meanwhile(tmp_path: Path) -> None:
    appender = _labels_appender(str(tmp_path / "labels"))
    appender.add_rows(_rows(0, range(20)), LABEL_ROWS)
    cut = appender.cut()
    assert cut is not None
    built = cut.table  # another caller built the table first
    cut.build_paced(slice_rows=5, pause_s=0.0)
    assert cut.table is built


def test_staged_rows_not_built_pickle_as_rows_and_built_ones_as_arrow(tmp_path: Path) -> None:
    """A snapshot does not build the epoch's rows on the worker thread to pickle them."""
    cut, want = _mixed_cut(tmp_path, 3)
    _, (kept,) = cut.__reduce__()
    assert [part[0] for part in kept] == ["rows", "ipc", "rows"]
    restored = pickle.loads(pickle.dumps(cut))
    assert restored.table == want
    assert restored.offsets == {0: 12, 1: 2}
    cut.build_paced(pause_s=0.0)  # once built, they pickle as one Arrow table
    _, (kept,) = cut.__reduce__()
    assert [part[0] for part in kept] == ["ipc"]
    assert pickle.loads(pickle.dumps(cut)).table == want


def test_transaction_and_feature_rows_survive_their_snapshot_form() -> None:
    txn = Transaction(
        event_id="e1",
        card_id="c1",
        merchant_id="m1",
        amount=0.1,
        currency="EUR",
        mcc="5411",
        country="FR",
        channel=Channel.ONLINE,
        event_time=1_767_225_600_000,
        card_country=None,
        device_id="d1",
    )
    rows = [(txn, 3, 17, 1_767_225_600_005)]
    assert TRANSACTION_ROWS.decode(TRANSACTION_ROWS.encode(rows)) == rows
    vectors = [
        FeatureVector(
            event_id="e1",
            keys=("c1", "m1"),
            event_time=1,
            source_timestamp=2,
            source_partition=0,
            source_offset=5,
            computed_at=3,
            definition_version=FRAUD_FEATURES.version,
            late=True,
            values=tuple(
                -0.0 if i == 0 else i / 3 for i in range(len(FRAUD_FEATURES.feature_names))
            ),
        )
    ]
    form = feature_rows(FRAUD_FEATURES)
    back = pickle.loads(pickle.dumps(form)).decode(form.encode(vectors))
    assert back == vectors
    assert str(back[0].values[0]) == "-0.0"
    assert form.build(back) == form.build(vectors)


def test_with_a_state_log_a_snapshot_logs_the_rows_it_commits_and_drops_them_after(
    tmp_path: Path,
) -> None:
    uri = str(tmp_path / "labels")
    with state_log.opened(tmp_path / "recovery") as log:
        assert log is not None
        appender, commits = _logging(uri)  # a fresh start
        appender.add_rows(_rows(0, range(5)), LABEL_ROWS)
        state = commits.snapshot()
        assert STAGED not in state
        assert state[STAGED_GEN] == 1
        commits.wait()
        assert _event_ids(uri) == sorted(f"e{o}" for o in range(5))
        assert log.resume("delta-staged", "p0", 1) == []  # committed, so dropped
        commits.close()


def test_logged_rows_a_crash_kept_from_landing_are_committed_once_on_restore(
    tmp_path: Path,
) -> None:
    uri = str(tmp_path / "labels")
    first = _labels_appender(uri)
    first.add(labels_table(_rows(0, range(3))))
    first.commit()
    staged = {"labels": Rows([_Pending(LABEL_ROWS, _rows(0, range(3, 6)))])}
    state = {"labels": first.resume_version(), STAGED_GEN: 1}
    with state_log.opened(tmp_path / "recovery") as log:
        assert log is not None
        log.resume("delta-staged", "p0", 0)
        log.append("delta-staged", "p0", 1, pickle.dumps(staged))  # the snapshot's log entry
        log.append("delta-staged", "p0", 2, pickle.dumps({}))  # a later one, never committed
        for _ in range(2):  # the restored worker dies again before its next snapshot
            restored = BackgroundCommits(
                {"labels": _labels_appender(uri, state["labels"])}, log_key="p0"
            )
            restored.restore(state)
            restored.close()
        assert _event_ids(uri) == sorted(f"e{o}" for o in range(6))
        assert log.resume("delta-staged", "p0", 1) == []


def _versions(uri: str) -> int:
    return DeltaTable(uri).version()


def _logging(uri: str) -> tuple[DeltaAppender, BackgroundCommits]:
    """An appender and its commits, logged in the open state log, from a fresh start."""
    appender = _labels_appender(uri)
    commits = BackgroundCommits({"labels": appender}, log_key="p0")
    commits.restore(None)
    return appender, commits


def _snapshot_then_die(commits: BackgroundCommits, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The snapshot's state, the worker dying before the commit it starts lands."""
    with monkeypatch.context() as patched:
        patched.setattr(BackgroundCommits, "_commit", lambda *_, **__: None)
        return commits.snapshot()


def _restart(uri: str, state: Any) -> None:
    """A worker restored from `state` that commits what it staged, then stops."""
    restored = BackgroundCommits({"labels": _labels_appender(uri, state["labels"])}, log_key="p0")
    restored.restore(state)
    restored.close()


def test_rows_logged_in_pieces_are_restored_as_the_one_commit_their_snapshot_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = str(tmp_path / "labels")
    with state_log.opened(tmp_path / "recovery") as log:
        assert log is not None
        appender, commits = _logging(uri)
        # Offsets out of order across batches, as keyed steps may emit them.
        for offsets in (range(4, 7), range(2), range(9, 10), range(2, 4), range(7, 9)):
            appender.add_rows(_rows(0, offsets), LABEL_ROWS)
            commits.log_new(piece_rows=2)
        state = _snapshot_then_die(commits, monkeypatch)
        generations = log.resume_generations("delta-staged", "p0", state[STAGED_GEN])
        assert [len(parts) for parts in generations] == [5]  # 4 pieces, then the rest
        before = _versions(uri)
        for _ in range(2):  # the restored worker dies again before its next snapshot
            _restart(uri, state)
        assert _event_ids(uri) == sorted(f"e{o}" for o in range(10))
        assert _versions(uri) == before + 1  # one version, as the lost commit would be


def test_a_commit_between_snapshots_takes_the_rows_of_the_pieces_logged_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = str(tmp_path / "labels")
    with state_log.opened(tmp_path / "recovery"):
        appender, commits = _logging(uri)
        appender.add_rows(_rows(0, range(3)), LABEL_ROWS)
        commits.log_new(piece_rows=2)
        commits.submit()  # a full buffer: committed now, its piece dropped
        commits.wait()
        appender.add_rows(_rows(0, range(3, 8)), LABEL_ROWS)
        commits.log_new(piece_rows=2)
        _restart(uri, _snapshot_then_die(commits, monkeypatch))
        assert _event_ids(uri) == sorted(f"e{o}" for o in range(8))


def test_snapshots_that_defer_the_commit_log_rows_until_one_commits_them_all(
    tmp_path: Path,
) -> None:
    uri = str(tmp_path / "labels")
    with state_log.opened(tmp_path / "recovery") as log:
        assert log is not None
        appender, commits = _logging(uri)
        appender.add_rows(_rows(0, range(3)), LABEL_ROWS)
        assert commits.snapshot(commit=False)[STAGED_GEN] == 1
        appender.add_rows(_rows(0, range(3, 5)), LABEL_ROWS)
        commits.snapshot(commit=False)
        assert _versions(uri) == 0  # nothing committed yet
        appender.add_rows(_rows(0, range(5, 8)), LABEL_ROWS)
        assert commits.snapshot()[STAGED_GEN] == 3
        commits.wait()
        assert _versions(uri) == 1  # the three epochs' rows as one version
        assert _event_ids(uri) == sorted(f"e{o}" for o in range(8))
        assert log.resume("delta-staged", "p0", 3) == []  # every generation dropped
        commits.close()


def test_a_commit_between_snapshots_drops_the_generations_deferred_snapshots_logged(
    tmp_path: Path,
) -> None:
    # The feature sink commits between snapshots when its buffer is full or, once the
    # interval has passed, from an idle source poll: the generations the deferring
    # snapshots logged are in that commit, and must leave the log with it.
    uri = str(tmp_path / "labels")
    with state_log.opened(tmp_path / "recovery") as log:
        assert log is not None
        appender, commits = _logging(uri)
        for offsets in (range(3), range(3, 5)):
            appender.add_rows(_rows(0, offsets), LABEL_ROWS)
            commits.snapshot(commit=False)
        commits.submit()
        commits.wait()
        assert _versions(uri) == 1
        assert _event_ids(uri) == sorted(f"e{o}" for o in range(5))
        assert log.resume_generations("delta-staged", "p0", 2) == []


def test_without_a_state_log_snapshots_that_defer_the_commit_keep_the_rows_buffered(
    tmp_path: Path,
) -> None:
    uri = str(tmp_path / "labels")
    appender = _labels_appender(uri)
    commits = BackgroundCommits({"labels": appender})  # a flow without recovery
    appender.add_rows(_rows(0, range(3)), LABEL_ROWS)
    assert STAGED not in commits.snapshot(commit=False)
    appender.add_rows(_rows(0, range(3, 5)), LABEL_ROWS)
    commits.snapshot(commit=False)
    assert _versions(uri) == 0  # nothing committed yet
    assert appender.rows_buffered == 5
    commits.snapshot()
    commits.wait()
    assert _versions(uri) == 1  # both epochs' rows as one version
    appender.add_rows(_rows(0, range(5, 7)), LABEL_ROWS)
    commits.snapshot(commit=False)
    commits.close()  # a clean stop commits what is buffered
    assert _versions(uri) == 2
    assert _event_ids(uri) == sorted(f"e{o}" for o in range(7))


def test_rows_of_deferred_commits_a_crash_kept_from_landing_are_committed_once_on_restore(
    tmp_path: Path,
) -> None:
    uri = str(tmp_path / "labels")
    with state_log.opened(tmp_path / "recovery"):
        appender, commits = _logging(uri)
        appender.add_rows(_rows(0, range(3)), LABEL_ROWS)
        commits.snapshot()
        commits.wait()  # e0-e2 landed
        appender.add_rows(_rows(0, range(3, 5)), LABEL_ROWS)
        commits.snapshot(commit=False)
        appender.add_rows(_rows(0, range(5, 6)), LABEL_ROWS)
        commits.log_new(piece_rows=1)
        state = commits.snapshot(commit=False)  # the worker dies after this snapshot
        for _ in range(2):  # the restored worker dies again before its next snapshot
            _restart(uri, state)
        assert _event_ids(uri) == sorted(f"e{o}" for o in range(6))


def test_commits_after_a_checkpoint_reopen_the_table_from_it(tmp_path: Path) -> None:
    uri = str(tmp_path / "labels")
    appender = _checkpointing_appender(uri, checkpoint_every=2, batches=2)
    assert appender.reopened_at == -1
    deadline = time.monotonic() + 30
    while appender.reopened_at < 0:  # each replayed write reopens once version 2 is checkpointed
        assert time.monotonic() < deadline, "no reopen from a checkpoint within 30 s"
        time.sleep(0.05)  # polling interval of the deadline loop
        appender.add(labels_table(_rows(0, range(10))))
        assert appender.commit() is None
    assert appender.reopened_at == 2
    assert (Path(uri) / "_delta_log" / "00000000000000000002.checkpoint.parquet").exists()
    assert [appender.accepts(0, o) for o in (9, 10)] == [False, True]
    appender.add(labels_table(_rows(0, range(10, 12))))
    assert appender.commit() == 3
    assert _event_ids(uri) == sorted(f"e{o}" for o in range(12))


def test_compaction_beside_the_commits_keeps_every_row_once_and_replays_skipped(
    tmp_path: Path,
) -> None:
    uri = str(tmp_path / "labels")
    appender = _checkpointing_appender(uri, checkpoint_every=2, compact_every=4, batches=2)
    resume = appender.resume_version()  # a snapshot taken before any compaction
    offset = 10
    deadline = time.monotonic() + 30
    while not any(h.get("operation") == "OPTIMIZE" for h in DeltaTable(uri).history()):
        assert time.monotonic() < deadline, "no compaction within 30 s"
        time.sleep(0.05)  # polling interval of the deadline loop
        appender.add(labels_table(_rows(0, range(offset, offset + 2))))
        appender.commit()
        offset += 2
    files = len(DeltaTable(uri).file_uris())
    assert files < appender.resume_version() - 1  # fewer files than commits
    assert _event_ids(uri) == sorted(f"e{o}" for o in range(offset))
    # A worker resumed from the earlier snapshot skips every row the table holds ...
    resumed = _labels_appender(uri, resume)
    assert not any(resumed.accepts(0, o) for o in range(10, offset))
    assert resumed.accepts(0, offset)
    # ... and so does one started without recovery state.
    fresh = _labels_appender(uri)
    assert [fresh.accepts(0, o) for o in (offset - 1, offset)] == [False, True]


def test_a_commit_lands_on_top_of_versions_other_writers_added_since_the_last(
    tmp_path: Path,
) -> None:
    # The appender reads no log before a commit (each listing of a local `_delta_log` costs
    # with its size): the commit itself resolves what others added meanwhile.
    uri = str(tmp_path / "labels")
    ours = _labels_appender(uri)
    ours.add(labels_table(_rows(0, range(5))))
    assert ours.commit() == 1
    other = DeltaAppender(
        uri, labels_schema(), app_id="b", partition_by=["label_date"], resume_version=None
    )
    other.add(labels_table(_rows(1, range(5))))
    assert other.commit() == 2
    compact_table(uri, retention=timedelta(0))  # `skewless compact` beside the worker
    newest = DeltaTable(uri).version()
    assert newest > 2
    assert [ours.accepts(0, o) for o in (4, 5)] == [False, True]
    ours.add(labels_table(_rows(0, range(5, 8))))
    assert ours.commit() == newest + 1
    assert ours.resume_version() == newest + 2
    assert DeltaTable(uri).to_pyarrow_table(columns=["event_id"]).num_rows == 13
    assert [_labels_appender(uri).accepts(0, o) for o in (7, 8)] == [False, True]


def test_after_a_compaction_replaced_files_and_old_log_versions_past_retention_are_deleted(
    tmp_path: Path,
) -> None:
    uri = str(tmp_path / "labels")
    appender = DeltaAppender(
        uri,
        labels_schema(),
        app_id="a",
        partition_by=["label_date"],
        resume_version=None,
        checkpoint_every=1,
        compact_every=3,
        retention=timedelta(0),
    )
    log = Path(uri) / "_delta_log"
    # A data file written two hours ago and not committed yet (as a commit in flight's).
    stray = Path(uri) / "part-00000-in-flight.parquet"
    pq.write_table(labels_table(_rows(1, range(1))), stray)
    os.utime(stray, (time.time() - 7200, time.time() - 7200))
    for batch in range(3):  # versions 1-3, each checkpointed; the third compacted first
        appender.add(labels_table(_rows(0, range(batch * 5, batch * 5 + 5))))
        appender.commit()
        appender.settle()  # no commit runs beside the housekeeping, whose retention is 0
    table = DeltaTable(uri)
    assert table.metadata().configuration == retention_properties(timedelta(0))
    assert any(h.get("operation") == "VACUUM END" for h in table.history())
    # Only the compacted file is left of the table's, and the log starts at the checkpoint.
    assert stray.exists()
    on_disk = sorted(
        str(p.relative_to(uri))
        for p in Path(uri).rglob("*.parquet")
        if log not in p.parents and p != stray
    )
    assert on_disk == sorted(
        Path(f).relative_to(Path(uri).resolve()).as_posix() for f in table.file_uris()
    )
    assert len(on_disk) == 1
    assert not (log / "00000000000000000000.json").exists()
    assert _event_ids(uri) == sorted(f"e{o}" for o in range(15))
    # Writing goes on, replays are still skipped ...
    appender.add(labels_table(_rows(0, range(15, 20))))
    appender.commit()
    assert _event_ids(uri) == sorted(f"e{o}" for o in range(20))
    assert [_labels_appender(uri).accepts(0, o) for o in (19, 20)] == [False, True]
    # ... but a snapshot from before the log's first version can no longer be resumed.
    with pytest.raises(StoreError, match=r"no longer holds.*features backfill"):
        _labels_appender(uri, resume_version=1)
