"""Keyed state as an append-only log beside Bytewax's recovery store.

Bytewax recovery snapshots every key an epoch touched, whole, on the worker thread. For
window state that is the wrong shape: a merchant's state holds every event of its longest
window, and re-pickling it every second cost the feature worker 120-200 ms per epoch at
5,000 events/s (the pause sets p99 latency). The changes since the last snapshot are small.

So a step that keeps its state here stages, at each snapshot, one *generation* per key: a
blob of what changed (for window state: the epoch's events), and gives Bytewax only the
generation number. The feature store sink's snapshot, which Bytewax takes after every
upstream step's and before it commits the epoch, writes all staged generations (and its
own staged Delta rows) in one SQLite transaction: a transaction per key (33 for the fraud
features) cost the worker ~10 ms more of its epoch pause. On resume Bytewax hands back the
number of its last committed snapshot; the step reads every blob up to it and replays
them, and discards generations written after it (a crash between our commit and
Bytewax's). Generations up to one are merged by `compact`, on a background thread, so the
log stays the size of the state it describes.

A generation can also be written in *pieces* while its epoch runs (`queue_piece`, off the
worker thread), its staged blob then holding only the rest: the view steps log their
events so, and the feature store sink its Delta rows (its snapshot went from 22.7 to 3.4 ms
at 5,000 events/s). A piece belongs to the generation after the head; it counts once that
generation is flushed, and a resume discards the pieces of generations after the
snapshot's, as it does their blobs.

The log is one SQLite file in a folder of the recovery directory (WAL, `synchronous=NORMAL`):
a write is in the operating system once its transaction commits, so it survives the worker
being killed. A machine crash can lose the last commits; `resume` then finds the log ends
before the generation Bytewax asks for and says so, rather than resuming from less state.

`run_dataflow` opens the log when recovery is on (`active()` returns it while the flow
runs) and closes it after, flushing first if the flow ended rather than failed; without
recovery `active()` is `None` and steps keep their state in memory only.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from itertools import groupby
from operator import itemgetter
from pathlib import Path

from streams.errors import StreamsError

__all__ = ["DIR_NAME", "FILE_NAME", "REBUILD", "StateLog", "StateLogError", "active", "opened"]

DIR_NAME = "state-log"
FILE_NAME = "state-log.sqlite3"

# What a user does when recovery state cannot be used: the features are rebuilt from history.
REBUILD = "delete the recovery directory and run `skewless features backfill` to rebuild it"

_CHECKPOINT_BYTES = 4 << 20  # appended between checkpoints
_OPEN_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS gens (
    step TEXT NOT NULL,
    key TEXT NOT NULL,
    gen INTEGER NOT NULL,
    blob BLOB NOT NULL,
    PRIMARY KEY (step, key, gen)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pieces (
    step TEXT NOT NULL,
    key TEXT NOT NULL,
    gen INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    blob BLOB NOT NULL,
    PRIMARY KEY (step, key, gen, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heads (
    step TEXT NOT NULL,
    key TEXT NOT NULL,
    gen INTEGER NOT NULL,
    merged INTEGER NOT NULL,
    PRIMARY KEY (step, key)
) WITHOUT ROWID;
"""


class StateLogError(StreamsError):
    """The state log cannot give the state a recovery snapshot refers to."""


class StateLog:
    """Generations of keyed state in one SQLite file; safe to share between worker threads.

    Each thread gets its own connection. `heads` holds, per (step, key), the newest
    generation written and the newest one merged by `compact` (older rows are gone);
    `pieces` the pieces of generations, numbered in the order they were written.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._opening = threading.Lock()  # one connection opened at a time
        self._compactor: ThreadPoolExecutor | None = None
        self._compactions: dict[tuple[str, str], Future[None]] = {}
        self._unchecked = 0  # bytes appended since the last checkpoint was started
        self._checkpointed: Future[None] | None = None
        self._heads: dict[tuple[str, str], int] = {}  # of the keys resumed by this log
        self._staged: list[tuple[str, str, int, bytes]] = []
        self._pieces: dict[tuple[str, str, int], int] = {}  # pieces written of a generation
        self._piece_writer: ThreadPoolExecutor | None = None
        self._queued: list[Future[None]] = []  # pieces queued and maybe not written yet

    def append(self, step: str, key: str, gen: int, blob: bytes) -> None:
        """Write generation `gen` of (step, key) now; it must follow the head."""
        self.stage(step, key, gen, blob)
        self.flush()

    def stage(self, step: str, key: str, gen: int, blob: bytes) -> None:
        """Queue generation `gen` of (step, key) for the next `flush`; it must follow the head.

        (step, key) must have been `resume`d by this log first (that reads its head).
        """
        with self._lock:
            head = self._heads.get((step, key))
            if head is None:
                msg = f"state log of {step!r}/{key!r}: written before it was resumed"
                raise StateLogError(msg)
            if gen != head + 1:
                msg = f"state log of {step!r}/{key!r}: generation {gen} after {head}"
                raise StateLogError(msg)
            self._heads[(step, key)] = gen
            self._staged.append((step, key, gen, blob))

    def flush(self) -> None:
        """Write every staged generation, in one transaction.

        A dataflow whose steps `stage` must `flush` before Bytewax commits the epoch: the
        feature store sink does it in its snapshot, which runs after every upstream step's.
        Pieces queued before are written first (see `queue_piece`).
        """
        self.wait_pieces()
        with self._lock:
            staged, self._staged = self._staged, []
        if not staged:
            return
        with self._transaction() as db:
            db.executemany("INSERT INTO gens VALUES (?, ?, ?, ?)", staged)
            # max: two sink partitions' flushes may commit a key's generations out of order.
            db.executemany(
                "INSERT INTO heads VALUES (?, ?, ?, 0) "
                "ON CONFLICT (step, key) DO UPDATE SET gen = max(gen, excluded.gen)",
                [row[:3] for row in staged],
            )
        with self._lock:
            for step, key, gen, _ in staged:
                self._pieces.pop((step, key, gen), None)
        self._written(sum(len(row[3]) for row in staged))

    def _written(self, size: int) -> None:
        """Count `size` bytes appended; start a checkpoint every `_CHECKPOINT_BYTES`."""
        with self._lock:
            if self._checkpointed is not None and self._checkpointed.done():
                self._checkpointed.result()  # raises a failed checkpoint's error
            self._unchecked += size
            if self._unchecked < _CHECKPOINT_BYTES:
                return
            self._unchecked = 0
            self._checkpointed = self._background().submit(self._checkpoint)

    def queue_piece(self, step: str, key: str, gen: int, encode: Callable[[], bytes]) -> None:
        """Write a piece of generation `gen` of (step, key), which must follow the head.

        `encode` makes the blob, and it is written, on a background thread: the worker
        thread hands the content over and goes on (encoding holds the interpreter lock
        mostly while the worker waits for input, and writing releases it). The generation
        is `stage`d later with the rest of its content; `resume` gives its pieces in the
        order they were queued, then its blob. `flush`, `drop_pieces` and `resume` first
        wait until every queued piece is written.
        """
        seq = self._claim_piece(step, key, gen)
        with self._lock:
            if self._piece_writer is None:
                self._piece_writer = ThreadPoolExecutor(1, thread_name_prefix="state-log-pieces")
            self._queued.append(
                self._piece_writer.submit(lambda: self._insert_piece(step, key, gen, seq, encode()))
            )

    def wait_pieces(self) -> None:
        """Wait until every queued piece is written; raise the error of a failed one."""
        with self._lock:
            queued = list(self._queued)
        try:
            for piece in queued:  # all of them: another thread's flush may wait for the same
                piece.result()
        finally:
            with self._lock:  # a failure is raised once
                self._queued = [piece for piece in self._queued if not piece.done()]

    def drop_pieces(self, step: str, key: str, gen: int) -> None:
        """Delete the pieces of generation `gen`, not staged yet (their content is elsewhere)."""
        self.wait_pieces()
        with self._transaction() as db:
            db.execute(
                "DELETE FROM pieces WHERE step = ? AND key = ? AND gen = ?", (step, key, gen)
            )

    def resume(self, step: str, key: str, gen: int) -> list[bytes]:
        """The blobs of generations up to `gen` in order, after discarding any later ones.

        `gen` 0 is a fresh start: every generation of (step, key) is discarded.
        """
        return [blob for parts in self.resume_generations(step, key, gen) for blob in parts]

    def resume_generations(self, step: str, key: str, gen: int) -> list[list[bytes]]:
        """As `resume`, grouped by generation: each one's pieces in order, then its blob."""
        self.wait_pieces()  # none lands after the discard below
        self._wait_compaction(step, key)
        with self._transaction() as db:
            written, merged = _head(db, step, key)
            if gen > written:
                msg = (
                    f"state log of {step!r}/{key!r} ends at generation {written}, but the "
                    f"recovery snapshot refers to {gen} (was the machine restarted while the "
                    f"worker ran?): {REBUILD}"
                )
                raise StateLogError(msg)
            if 0 < gen < merged:
                msg = (
                    f"state log of {step!r}/{key!r} was compacted up to generation {merged}, "
                    f"past the recovery snapshot's {gen}: {REBUILD}"
                )
                raise StateLogError(msg)
            with self._lock:
                self._heads[(step, key)] = gen
                self._pieces = {k: n for k, n in self._pieces.items() if k[:2] != (step, key)}
                self._staged = [row for row in self._staged if row[:2] != (step, key)]
            after = (step, key, gen)
            db.execute("DELETE FROM gens WHERE step = ? AND key = ? AND gen > ?", after)
            db.execute("DELETE FROM pieces WHERE step = ? AND key = ? AND gen > ?", after)
            db.execute(
                "INSERT OR REPLACE INTO heads VALUES (?, ?, ?, ?)",
                (step, key, gen, min(merged, gen)),
            )
            rows = _blobs(db, step, key, gen)
        return [[blob for _, blob in parts] for _, parts in groupby(rows, key=itemgetter(0))]

    def holds(self, step: str, key: str) -> bool:
        """Whether (step, key) has a generation written."""
        with self._transaction() as db:
            return _head(db, step, key)[0] > 0

    def newest_generation(self) -> int:
        """The newest generation any key has written (0: the log holds none)."""
        with self._transaction() as db:
            (gen,) = db.execute("SELECT COALESCE(MAX(gen), 0) FROM heads").fetchone()
        return int(gen)

    def drop(self, step: str, key: str, upto: int) -> None:
        """Delete generations up to `upto`, pieces too (their content is kept elsewhere now)."""
        with self._transaction() as db:
            _delete_upto(db, step, key, upto)

    def compact(
        self, step: str, key: str, upto: int, merge: Callable[[list[bytes]], list[bytes]]
    ) -> None:
        """On a background thread, replace generations up to `upto` by `merge` of them.

        `merge` gets the blobs in order and returns at most as many, in order (they take
        the generation numbers up to `upto`). It runs beside the worker thread: it should
        hold the interpreter lock a few milliseconds at a time. One compaction per (step,
        key) at a time; a request while one runs is dropped. The error of a failed one is
        raised by the next request (or `resume`, or `close`).
        """
        with self._lock:
            running = self._compactions.get((step, key))
            if running is not None:
                if not running.done():
                    return
                running.result()
            self._compactions[(step, key)] = self._background().submit(
                self._compact, step, key, upto, merge
            )

    def close(self) -> None:
        """Finish compactions in flight (raising their error) and close every connection.

        Generations staged and not flushed are dropped, as a crash would drop them: no
        committed Bytewax snapshot refers to them (see `flush`).
        """
        try:
            with self._lock:
                running = list(self._compactions.values())
                self._compactions.clear()
            for future in running:
                future.result()
            self.wait_pieces()
        finally:
            for executor in (self._compactor, self._piece_writer):
                if executor is not None:
                    executor.shutdown()
            self._compactor = self._piece_writer = None
            with self._lock:
                for connection in self._connections:
                    connection.close()
                self._connections.clear()

    def _compact(
        self, step: str, key: str, upto: int, merge: Callable[[list[bytes]], list[bytes]]
    ) -> None:
        # Read and merge outside the write transaction: the worker keeps appending.
        rows = _blobs(self._connection(), step, key, upto)
        generations = len({g for g, _ in rows})
        if generations < 2:
            return
        merged = merge([blob for _, blob in rows])
        if len(merged) > generations:
            msg = f"state log of {step!r}/{key!r}: a merge of {generations} generations gave "
            msg += f"{len(merged)}"
            raise StateLogError(msg)
        first = upto - len(merged) + 1
        with self._transaction() as db:
            _delete_upto(db, step, key, upto)
            db.executemany(
                "INSERT INTO gens VALUES (?, ?, ?, ?)",
                [(step, key, first + i, blob) for i, blob in enumerate(merged)],
            )
            db.execute("UPDATE heads SET merged = ? WHERE step = ? AND key = ?", (upto, step, key))

    def _claim_piece(self, step: str, key: str, gen: int) -> int:
        """The number of the next piece of generation `gen`, which must follow the head."""
        with self._lock:
            head = self._heads.get((step, key))
            if head is None or gen != head + 1:
                msg = f"state log of {step!r}/{key!r}: a piece of generation {gen} after {head}"
                raise StateLogError(msg)
            seq = self._pieces.get((step, key, gen), 0)
            self._pieces[(step, key, gen)] = seq + 1
            return seq

    def _insert_piece(self, step: str, key: str, gen: int, seq: int, blob: bytes) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO pieces VALUES (?, ?, ?, ?, ?)", (step, key, gen, seq, blob))
        self._written(len(blob))

    def _background(self) -> ThreadPoolExecutor:
        """The thread compacting and checkpointing (call with `_lock` held)."""
        if self._compactor is None:
            self._compactor = ThreadPoolExecutor(1, thread_name_prefix="state-log")
        return self._compactor

    def _checkpoint(self) -> None:
        try:
            self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            msg = f"state log {str(self.path)!r}: checkpoint failed: {exc}"
            raise StateLogError(msg) from exc

    def _wait_compaction(self, step: str, key: str) -> None:
        with self._lock:
            running = self._compactions.pop((step, key), None)
        if running is not None:
            running.result()

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            with self._opening:
                db = self._open()
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    def _open(self) -> sqlite3.Connection:
        """A new connection, set up (call with `_opening` held).

        One thread at a time, and retried while the file is locked: after a kill the first
        connection recovers the WAL under an exclusive lock, and a connection opened beside
        it (the two workers of the kill -9 test) failed at once, busy timeout or not.
        """
        deadline = time.monotonic() + _OPEN_TIMEOUT_S
        while True:
            db = None
            try:
                # Created on first use: flows without logged steps leave no file behind.
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Used by its own thread only; `close` closes it from another, after the threads.
                db = sqlite3.connect(
                    self.path,
                    timeout=_OPEN_TIMEOUT_S,
                    isolation_level=None,
                    check_same_thread=False,
                )
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
                # Checkpoints (copying the WAL into the database, with an fsync) run on the
                # background thread, not inside whichever commit crosses the threshold:
                # on the worker thread they cost the epoch's snapshot ~10-20 ms.
                db.execute("PRAGMA wal_autocheckpoint = 0")
                db.executescript(_SCHEMA)
                return db
            except (sqlite3.Error, OSError) as exc:
                if db is not None:
                    db.close()
                locked = isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
                if not locked or time.monotonic() > deadline:
                    msg = f"cannot open the state log {str(self.path)!r}: {exc}"
                    raise StateLogError(msg) from exc
                time.sleep(0.01)  # retry interval of a deadline loop

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            msg = f"state log {str(self.path)!r}: {exc}"
            raise StateLogError(msg) from exc


def _head(db: sqlite3.Connection, step: str, key: str) -> tuple[int, int]:
    row = db.execute(
        "SELECT gen, merged FROM heads WHERE step = ? AND key = ?", (step, key)
    ).fetchone()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


def _delete_upto(db: sqlite3.Connection, step: str, key: str, upto: int) -> None:
    """Delete the generations up to `upto` of (step, key), with their pieces."""
    db.execute("DELETE FROM gens WHERE step = ? AND key = ? AND gen <= ?", (step, key, upto))
    db.execute("DELETE FROM pieces WHERE step = ? AND key = ? AND gen <= ?", (step, key, upto))


def _blobs(db: sqlite3.Connection, step: str, key: str, upto: int) -> list[tuple[int, bytes]]:
    """(generation, blob) of each generation up to `upto`: its pieces in order, then its blob.

    Pieces of a generation never staged (none is written: see `resume`) are left out.
    """
    rows = db.execute(
        "SELECT gen, blob FROM ("
        "  SELECT gen, seq, blob FROM pieces WHERE step = ?1 AND key = ?2 AND gen <= ?3"
        "  AND gen IN (SELECT gen FROM gens WHERE step = ?1 AND key = ?2)"
        "  UNION ALL"
        "  SELECT gen, -1 AS seq, blob FROM gens WHERE step = ?1 AND key = ?2 AND gen <= ?3"
        ") ORDER BY gen, seq = -1, seq",
        (step, key, upto),
    ).fetchall()
    return [(int(g), bytes(b)) for g, b in rows]


_active: StateLog | None = None


def active() -> StateLog | None:
    """The state log of the dataflow running in this process, if recovery is on."""
    return _active


@contextmanager
def opened(recovery_dir: Path | None) -> Iterator[StateLog | None]:
    """Make the state log in `recovery_dir` the active one while the block runs."""
    global _active
    if recovery_dir is None:
        yield None
        return
    if _active is not None:
        msg = "a dataflow with recovery is already running in this process"
        raise StreamsError(msg)
    # Not beside Bytewax's partitions: there the log's WAL index (-shm) went missing
    # mid-run, and its commits with it (the kill -9 test caught it); in a folder it does not.
    log = StateLog(recovery_dir / DIR_NAME / FILE_NAME)
    _active = log
    try:
        yield log
        # The flow ended (its sources did). Bytewax snapshots the steps at their end of
        # input but may close the sink without its snapshot (1 run in 3 here): what the
        # steps staged then is what the last committed snapshot refers to.
        log.flush()
    finally:
        _active = None
        log.close()
