"""The state log: generations per key, resume discards what Bytewax never committed."""

from __future__ import annotations

import pickle
import threading
from functools import partial
from pathlib import Path

import pytest

from streams import state_log
from streams.errors import StreamsError
from streams.features import steps
from streams.features.steps import merge_entered
from streams.state_log import StateLog, StateLogError


def _log(tmp_path: Path) -> StateLog:
    return StateLog(tmp_path / "log.sqlite3")


def _five_generations(tmp_path: Path) -> StateLog:
    """A log whose key view/00 holds generations 1..5, each the byte of its number."""
    log = _log(tmp_path)
    log.resume("view", "00", 0)
    for gen in range(1, 6):
        log.append("view", "00", gen, bytes([gen]))
    return log


def test_resume_gives_generations_up_to_the_snapshot_and_drops_later_ones(
    tmp_path: Path,
) -> None:
    log = _log(tmp_path)
    log.resume("view", "00", 0)
    for gen, blob in enumerate((b"a", b"b", b"c"), start=1):
        log.append("view", "00", gen, blob)
    log.close()

    again = _log(tmp_path)  # a restart whose snapshot is generation 2
    assert again.resume("view", "00", 2) == [b"a", b"b"]
    again.append("view", "00", 3, b"c2")  # generation 3 is written anew
    assert again.resume("view", "00", 3) == [b"a", b"b", b"c2"]
    assert again.resume("view", "01", 0) == []
    again.close()


def test_a_fresh_start_discards_what_an_earlier_run_logged(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.resume("view", "00", 0)
    log.append("view", "00", 1, b"a")
    log.close()
    log = _log(tmp_path)
    assert log.resume("view", "00", 0) == []
    log.append("view", "00", 1, b"new")
    assert log.resume("view", "00", 1) == [b"new"]
    log.close()


def test_generations_must_follow_the_head_of_a_resumed_key(tmp_path: Path) -> None:
    log = _log(tmp_path)
    with pytest.raises(StateLogError, match="written before it was resumed"):
        log.append("view", "00", 1, b"a")
    log.resume("view", "00", 0)
    log.append("view", "00", 1, b"a")
    with pytest.raises(StateLogError, match="generation 3 after 1"):
        log.append("view", "00", 3, b"c")
    log.close()


def test_staged_generations_are_written_by_flush_and_dropped_by_a_crash(
    tmp_path: Path,
) -> None:
    log = _log(tmp_path)
    for key in ("00", "01"):
        log.resume("view", key, 0)
        log.stage("view", key, 1, key.encode())
    log.flush()  # both in one transaction
    log.stage("view", "00", 2, b"never flushed")
    log.close()  # the worker dies before the sink's next snapshot
    again = _log(tmp_path)
    assert again.resume("view", "00", 1) == [b"00"]
    assert again.resume("view", "01", 1) == [b"01"]
    with pytest.raises(StateLogError, match="ends at generation 1"):
        again.resume("view", "00", 2)
    again.close()


def test_a_flow_that_ends_keeps_what_its_steps_staged_last_and_a_failed_one_drops_it(
    tmp_path: Path,
) -> None:
    """Bytewax may close the sink at the end of input without its snapshot, after the
    steps staged the generations that its last committed snapshot refers to."""
    with state_log.opened(tmp_path) as log:
        assert log is not None
        log.resume("view", "00", 0)
        log.stage("view", "00", 1, b"the last epoch")

    def failing_flow() -> None:
        with state_log.opened(tmp_path) as log:
            assert log is not None
            assert log.resume("view", "00", 1) == [b"the last epoch"]
            log.stage("view", "00", 2, b"a failed flow's")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        failing_flow()
    with state_log.opened(tmp_path) as log:
        assert log is not None
        with pytest.raises(StateLogError, match="ends at generation 1"):
            log.resume("view", "00", 2)


def test_a_log_that_ends_before_the_snapshot_is_refused_with_the_fix(tmp_path: Path) -> None:
    log = _five_generations(tmp_path)
    with pytest.raises(StateLogError, match=r"ends at generation 5.*refers to 6.*backfill"):
        log.resume("view", "00", 6)
    log.close()


def test_compaction_merges_old_generations_and_resume_sees_the_same_blobs(
    tmp_path: Path,
) -> None:
    log = _five_generations(tmp_path)
    log.compact("view", "00", 3, lambda blobs: [b"".join(blobs)])
    assert log.resume("view", "00", 5) == [b"\x01\x02\x03", b"\x04", b"\x05"]
    log.compact("view", "00", 5, lambda blobs: [b"".join(blobs[:2]), blobs[2]])
    assert log.resume("view", "00", 5) == [b"\x01\x02\x03\x04", b"\x05"]
    log.close()


def test_resume_from_before_a_compaction_is_refused(tmp_path: Path) -> None:
    log = _five_generations(tmp_path)
    log.compact("view", "00", 4, lambda blobs: [b"".join(blobs)])
    with pytest.raises(StateLogError, match="compacted up to generation 4"):
        log.resume("view", "00", 2)
    log.close()


def test_drop_deletes_generations_without_moving_the_head(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.resume("staged", "p0", 0)
    log.append("staged", "p0", 1, b"a")
    log.append("staged", "p0", 2, b"b")
    log.drop("staged", "p0", 1)
    assert log.resume("staged", "p0", 2) == [b"b"]
    log.append("staged", "p0", 3, b"c")
    log.close()


def test_a_generation_written_in_pieces_resumes_as_its_pieces_then_its_blob(
    tmp_path: Path,
) -> None:
    log = _log(tmp_path)
    log.resume("view", "00", 0)
    log.queue_piece("view", "00", 1, lambda: b"1a")
    log.queue_piece("view", "00", 1, lambda: b"1b")  # encoded and written in order
    log.append("view", "00", 1, b"1z")  # flush waits for queued pieces
    log.append("view", "00", 2, b"2z")  # no pieces
    log.queue_piece("view", "00", 3, lambda: b"3a")  # generation 3 never staged: a crash
    log.close()

    again = _log(tmp_path)
    assert again.resume_generations("view", "00", 2) == [[b"1a", b"1b", b"1z"], [b"2z"]]
    assert again.resume("view", "00", 2) == [b"1a", b"1b", b"1z", b"2z"]
    again.queue_piece("view", "00", 3, lambda: b"3a'")  # generation 3 is written anew
    again.append("view", "00", 3, b"3z")
    assert again.resume("view", "00", 3)[-2:] == [b"3a'", b"3z"]
    again.close()


def test_pieces_belong_to_the_generation_after_the_head(tmp_path: Path) -> None:
    log = _five_generations(tmp_path)
    for gen in (5, 7):
        with pytest.raises(StateLogError, match=f"a piece of generation {gen} after 5"):
            log.queue_piece("view", "00", gen, lambda: b"x")
    with pytest.raises(StateLogError, match="after None"):
        log.queue_piece("view", "01", 1, lambda: b"x")  # never resumed
    log.close()


def test_a_failed_piece_is_raised_by_the_flush_that_waits_for_it(tmp_path: Path) -> None:
    log = _five_generations(tmp_path)

    def fail() -> bytes:
        raise StateLogError("encoding failed")

    log.queue_piece("view", "00", 6, fail)
    log.stage("view", "00", 6, b"6")
    with pytest.raises(StateLogError, match="encoding failed"):
        log.flush()
    log.close()


def test_drop_and_compaction_take_pieces_with_their_generations(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.resume("view", "00", 0)
    for gen in range(1, 5):
        log.queue_piece("view", "00", gen, partial(bytes, [gen, 0]))
        log.append("view", "00", gen, bytes([gen]))
    log.queue_piece("view", "00", 5, lambda: b"5")  # the epoch in progress
    log.compact("view", "00", 2, lambda blobs: [b"".join(blobs)])
    assert log.resume("view", "00", 4) == [
        b"\x01\x00\x01\x02\x00\x02",
        b"\x03\x00",
        b"\x03",
        b"\x04\x00",
        b"\x04",
    ]
    log.drop("view", "00", 3)
    assert log.resume_generations("view", "00", 4) == [[b"\x04\x00", b"\x04"]]
    log.queue_piece("view", "00", 5, lambda: b"5a")
    log.drop_pieces("view", "00", 5)  # a commit between snapshots took their content
    log.append("view", "00", 5, b"5")
    assert log.resume_generations("view", "00", 5)[-1] == [b"5"]
    log.close()


def test_worker_threads_append_to_their_own_keys_at_once(tmp_path: Path) -> None:
    log = _log(tmp_path)

    def write(key: str) -> None:
        log.resume("view", key, 0)
        for gen in range(1, 51):
            log.append("view", key, gen, key.encode() + bytes([gen]))

    threads = [threading.Thread(target=write, args=(f"{k:02d}",)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for k in range(4):
        key = f"{k:02d}"
        assert log.resume("view", key, 50) == [key.encode() + bytes([g]) for g in range(1, 51)]
    log.close()


def test_opened_makes_the_log_active_for_the_run_only(tmp_path: Path) -> None:
    assert state_log.active() is None
    with state_log.opened(tmp_path) as log:
        assert state_log.active() is log
        assert log is not None
        assert log.path == tmp_path / state_log.DIR_NAME / state_log.FILE_NAME
        with pytest.raises(StreamsError, match="already running"), state_log.opened(tmp_path):
            pass
    assert state_log.active() is None
    with state_log.opened(None) as none:
        assert none is None


def test_merging_keeps_each_entitys_events_within_its_retention_in_order() -> None:
    first = [("a", 1_000, (1.0,)), ("b", 5_000, (2.0,)), ("a", 2_000, (3.0,))]
    second = [("a", 12_000, (4.0,)), ("b", 5_500, (5.0,))]
    merged = merge_entered([pickle.dumps(first), pickle.dumps(second)], 10_000)
    # a's newest is 12,000: events at or before 2,000 are out; b keeps both.
    assert [e for blob in merged for e in pickle.loads(blob)] == [
        ("b", 5_000, (2.0,)),
        ("a", 12_000, (4.0,)),
        ("b", 5_500, (5.0,)),
    ]


def test_a_merge_writes_bounded_parts_and_never_more_than_it_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(steps, "_MERGED_PART", 3)
    blobs = [pickle.dumps([(f"e{g}", 1_000 * g + i, ()) for i in range(4)]) for g in range(3)]
    merged = merge_entered(blobs, 10**9)
    assert [len(pickle.loads(b)) for b in merged] == [4, 4, 4]  # 12 events, 3 blobs: 4 each
    assert [e for b in merged for e in pickle.loads(b)] == [
        e for b in blobs for e in pickle.loads(b)
    ]
    assert len(merge_entered(blobs[:1] * 2, 10**9)) == 2
