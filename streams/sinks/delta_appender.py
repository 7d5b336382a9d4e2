"""Exactly-once appends to a Delta table from a replayable stream.

Every commit carries one app transaction per source partition (`<app_id>.<partition>`, the
highest source offset committed), so the table itself records how far each partition got.
A sink resumed from a Bytewax snapshot knows the first table version it may have written
after that snapshot; on resume it loads the (partition, offset) pairs added since then and
skips exactly those when the source replays them. A sink started without recovery state
skips every offset at or below the partition's committed app-transaction version.

delta-rs does not skip an already-committed app transaction by itself, hence the checks.

Commits can run off the caller's thread: `cut()` takes the buffer as `Rows`, and
`write(rows)` commits them from any one thread at a time — skipping rows whose offsets the
table's app transactions already cover, so re-writing `Rows` kept in a snapshot after a
crash adds nothing twice. `Rows` pickle as Arrow IPC, or as their Python rows (msgpack of
their `RowFormat`) while not built yet.

Log checkpoints are written on a background thread every `checkpoint_every` versions, not
by delta-rs's post-commit hook: that hook runs inside the commit, on the dataflow's worker
thread, and measured ~300 ms against a ~50 ms commit — a stall every hundred epochs.
The next commit after a checkpoint reopens the table handle from it: a delta-rs handle
kept up to date with `update_incremental` replays every commit since it was opened on each
write, so a live worker's commits grew by ~0.6 ms of CPU per version (30 ms at start,
220 ms after 330 versions, on the features table; a commit per second per table would
have outgrown its epoch within the hour). Reopened, they grow only with the table's
files, which the appender compacts as it goes (see `DeltaAppender`).

A commit reads nothing of the log first, nor after: `write_deltalake` brings the handle
up to date itself, resolving the versions others added meanwhile (the compaction beside
it, `skewless compact`). On the local filesystem every read of the log lists the whole
`_delta_log`, however recent its checkpoint: with 100,000 older entries a commit cost 412
ms of CPU reading it before and after the write, 206 ms without (`benchmarks/delta_log.py`:
~2.4 µs per entry per commit remain, the write's own reads).

What a compaction replaced, and the log's old versions, are deleted as the appender goes
too, once older than its `retention` (7 days by default; the table's log and deleted-file
retention when it creates the table): a month of a commit a second, kept (Delta's default
log retention is 30 days), was 2.6 million entries per table, and every file a compaction
replaced stayed on disk until `skewless compact`. Seven days are still ~630,000 entries
at a commit a second: hence the workers' commit interval (`streams.sinks.commit_interval`).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import (
    CommitProperties,
    DeltaTable,
    PostCommitHookProperties,
    Transaction,
    write_deltalake,
)
from deltalake.exceptions import DeltaError, TableNotFoundError

from streams.delta_tables import RowFormat
from streams.errors import StoreError

__all__ = ["RETENTION", "DeltaAppender", "Rows", "ensure_table", "retention_properties"]

_NO_HOOKS = PostCommitHookProperties(create_checkpoint=False, cleanup_expired_logs=False)

# How long replaced files and old log versions are kept, so how far back time travel
# reaches: Delta's default for files, and `skewless compact`'s.
RETENTION = timedelta(days=7)


def retention_properties(retention: timedelta) -> dict[str, str]:
    """Table properties keeping old log versions for `retention`, and replaced files'
    tombstones a day longer.

    A vacuum finds a replaced file by its tombstone (the log's remove action), which a
    checkpoint drops once older than the table's deleted-file retention (seen here: with
    both retentions 0, a compaction's tombstones were gone from its checkpoint). Kept no
    longer than the vacuum's retention, a tombstone would be dropped by the next
    checkpoint before the next vacuum came, and its file stay on disk for good.
    """

    def interval(duration: timedelta) -> str:
        return f"interval {int(duration.total_seconds())} seconds"

    return {
        "delta.logRetentionDuration": interval(retention),
        "delta.deletedFileRetentionDuration": interval(retention + _TOMBSTONE_MARGIN),
    }


_TOMBSTONE_MARGIN = timedelta(days=1)


def ensure_table(
    uri: str,
    schema: pa.Schema,
    *,
    partition_by: Sequence[str],
    storage_options: dict[str, str] | None = None,
    configuration: Mapping[str, str] | None = None,
) -> DeltaTable:
    """Open the table at `uri`, creating it empty with `schema` if it does not exist.

    `configuration` holds the table properties of a table created here.
    """
    try:
        return DeltaTable(uri, storage_options=storage_options)
    except TableNotFoundError:
        pass
    try:
        return DeltaTable.create(
            uri,
            schema,
            mode="ignore",
            partition_by=list(partition_by),
            storage_options=storage_options,
            configuration=dict(configuration) if configuration else None,
        )
    except DeltaError as exc:
        msg = f"cannot create Delta table at {uri!r}: {exc}"
        raise StoreError(msg) from exc


_BUILD_NOW = 64  # rows from which `add_rows` builds the table at once
# Rows `add_rows` gathers from small batches before it builds them, and `Rows.build_paced`
# builds between pauses: ~1 ms of building, then the worker thread gets the interpreter
# lock. Paced, measured on the whole pipeline at 5,000 events/s (benchmarks/scoring.py,
# medians of 3 interleaved runs): p99 event -> prediction 111 -> 62 ms, the feature
# stage's 85 -> 42 ms, against an epoch's rows built in one go.
_SLICE_ROWS = 512
_PAUSE_S = 0.001


class _Pending:
    """Python rows buffered as they came, in their `RowFormat`."""

    __slots__ = ("format", "items")

    def __init__(self, row_format: RowFormat, items: list[Any] | None = None) -> None:
        self.format = row_format
        self.items: list[Any] = [] if items is None else items


class Rows:
    """Rows cut from an appender's buffer for one commit: the table and its top offsets.

    Both are computed on first use — by the committing thread, not the worker that cuts:
    building Arrow columns per small batch, concatenating an epoch's chunks and grouping
    them by partition cost the worker a fixed ~250 µs per batch plus ~3-6 ms per epoch.
    """

    __slots__ = ("_lock", "_offsets", "_parts", "_table")

    def __init__(self, parts: Sequence[pa.Table | _Pending]) -> None:
        self._parts = list(parts)
        self._lock = threading.Lock()  # the committer and a snapshot may both ask
        self._table: pa.Table | None = None
        self._offsets: dict[int, int] | None = None

    @classmethod
    def of(cls, table: pa.Table) -> Rows:
        """`table` (columns `source_partition`, `source_offset` required) as `Rows`."""
        return cls([table])

    @classmethod
    def joined(cls, many: Sequence[Rows]) -> Rows:
        """The rows of `many`, in order, as one `Rows`."""
        parts: list[pa.Table | _Pending] = []
        for rows in many:
            with rows._lock:
                parts += rows._parts if rows._table is None else [rows._table]
        return cls(parts)

    @property
    def table(self) -> pa.Table:
        """The rows as one table."""
        with self._lock:
            if self._table is None:
                tables = [
                    p if isinstance(p, pa.Table) else p.format.build(p.items) for p in self._parts
                ]
                self._table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
                self._parts = []
            return self._table

    def build_paced(self, *, slice_rows: int = _SLICE_ROWS, pause_s: float = _PAUSE_S) -> None:
        """Build `table` a slice of Python rows at a time, sleeping `pause_s` after each.

        For the committing thread: building holds the interpreter lock (~9 ms per 5,000
        feature rows), and a thread that does not release it keeps it for the whole switch
        interval (5 ms) against the worker thread, once per turn until it is done. The
        lock of `Rows` is not held meanwhile: a snapshot pickling the rows reads them as
        they were cut, and a `table` another caller builds meanwhile wins (this build is
        dropped).
        """
        parts = self._parts  # `table` rebinds it when it builds, never changes it
        tables: list[pa.Table] = []
        for part in parts:
            if isinstance(part, pa.Table):
                tables.append(part)
                continue
            for at in range(0, len(part.items), slice_rows):
                tables.append(part.format.build(part.items[at : at + slice_rows]))
                time.sleep(pause_s)
                if self._table is not None:
                    return
        if not tables:
            return
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        with self._lock:
            if self._table is None:
                self._table, self._parts = table, []

    @property
    def offsets(self) -> dict[int, int]:
        """Source partition -> highest source offset in `table`."""
        if self._offsets is None:
            grouped = self.table.group_by("source_partition").aggregate([("source_offset", "max")])
            self._offsets = dict(
                zip(
                    grouped.column("source_partition").to_pylist(),
                    grouped.column("source_offset_max").to_pylist(),
                    strict=True,
                )
            )
        return self._offsets

    def __reduce__(self) -> tuple[Any, tuple[list[tuple[Any, ...]]]]:
        """Pickle built tables as Arrow IPC and rows not built yet in their `RowFormat`.

        Recovery pickles the rows a snapshot stages on the worker thread, right after they
        are cut: building them there took 30-66 ms per epoch at 5,000 events/s (feature
        and raw tables); encoding them, 10-20 ms.
        """
        with self._lock:
            parts = list(self._parts) if self._table is None else [self._table]
        kept: list[tuple[Any, ...]] = [
            ("ipc", _ipc(p))
            if isinstance(p, pa.Table)
            else ("rows", p.format, p.format.encode(p.items))
            for p in parts
        ]
        return (Rows._unpickled, (kept,))

    @classmethod
    def _unpickled(cls, kept: Sequence[tuple[Any, ...]]) -> Rows:
        parts: list[pa.Table | _Pending] = []
        for part in kept:
            if part[0] == "ipc":
                parts.append(pa.ipc.open_stream(part[1]).read_all())
            else:
                _, row_format, data = part
                parts.append(_Pending(row_format, row_format.decode(data)))
        return cls(parts)

    def to_ipc(self) -> bytes:
        """The rows as an Arrow IPC stream."""
        return _ipc(self.table)

    @classmethod
    def from_ipc(cls, data: bytes) -> Rows:
        """Rows from `to_ipc` (snapshots of earlier releases staged rows this way)."""
        return cls.of(pa.ipc.open_stream(data).read_all())


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()  # type: ignore[no-any-return]


class DeltaAppender:
    """Buffers rows of one table and commits them idempotently per source partition.

    The log is checkpointed every `checkpoint_every` versions, and the handle reopened
    from each checkpoint (`reopened_at`: the version it was last reopened at, -1 before).
    Measured on the features table, 150-row commits, versions 300-400: 87.5 ms of CPU per
    commit checkpointing every 100 versions, 56.9 every 25, 57.7 every 10. The rest grows
    with the table's files (41.8 ms per commit over versions 0-250, 119.7 over 1250-1500),
    so once this appender has committed `compact_every` versions since it last did, the
    next checkpoint first bin-packs the table's small files (`optimize.compact`, one
    task): a live worker commits each table once per epoch, ~600 small files in 10
    minutes. Rows keep their place in the table's history, so replays are skipped as
    before (the files a compaction adds count as added since any version before it).
    After each compaction the same thread vacuums the files replaced more than `retention`
    ago and cleans up the log versions older than the table's log retention, which
    `retention_properties` sets on a table the appender creates (an existing table keeps
    its own).
    """

    def __init__(
        self,
        uri: str,
        schema: pa.Schema,
        *,
        app_id: str,
        partition_by: Sequence[str],
        resume_version: int | None,
        storage_options: dict[str, str] | None = None,
        checkpoint_every: int = 25,
        compact_every: int | None = 600,
        retention: timedelta = RETENTION,
    ) -> None:
        self.uri = uri
        self._checkpoint_every = checkpoint_every
        self._compact_every = compact_every
        self._retention = retention
        self._commits = 0  # versions this appender committed
        self._compacted_at = 0  # `_commits` when it last asked for a compaction
        self._checkpoint: Future[None] | None = None
        self._schema = schema
        self._app_id = app_id
        self._partition_by = list(partition_by)
        self._storage = storage_options
        self._table = ensure_table(
            uri,
            schema,
            partition_by=partition_by,
            storage_options=storage_options,
            configuration=retention_properties(retention),
        )
        self._lock = threading.Lock()  # the table handle, shared with a committer thread
        # The newest version checkpointed by `_checkpoint_in_background` (see `reopened_at`).
        self._checkpointed = -1
        self.reopened_at = -1
        self._resumed = resume_version is not None
        self._committed: dict[int, int] = {}
        self._skip: dict[int, set[int]] = defaultdict(set)
        if resume_version is not None:
            self._load_skip(resume_version)
        self._buffer: list[pa.Table | _Pending] = []
        self.rows_buffered = 0
        self._taken = 0  # parts of the buffer `take_new` has handed out
        self.rows_taken = 0

    def _app(self, partition: int) -> str:
        return f"{self._app_id}.{partition}"

    def _load_skip(self, since_version: int) -> None:
        """Remember every (partition, offset) added at or after `since_version`."""
        self._table.update_incremental()
        current = self._table.version()
        if since_version > current:
            return
        before: set[str] = set()
        if since_version > 0:
            try:
                old = DeltaTable(self.uri, version=since_version - 1, storage_options=self._storage)
            except (DeltaError, OSError) as exc:
                msg = (
                    f"cannot resume writing Delta table {self.uri!r}: the recovery snapshot "
                    f"refers to version {since_version - 1}, which its log no longer holds "
                    f"(cleaned up after its retention): delete the recovery directory and run "
                    f"`skewless features backfill` ({exc})"
                )
                raise StoreError(msg) from exc
            before = set(old.file_uris())
        added = [f for f in self._table.file_uris() if f not in before]
        if not added:
            return
        dataset = ds.dataset(added, format="parquet", filesystem=None)
        cols = dataset.to_table(columns=["source_partition", "source_offset"])
        for p, o in zip(
            cols.column("source_partition").to_pylist(),
            cols.column("source_offset").to_pylist(),
            strict=True,
        ):
            self._skip[int(p)].add(int(o))

    def committed_version(self, partition: int) -> int:
        """The highest offset of `partition` committed by this app (-1 if none)."""
        version = self._committed.get(partition)
        if version is None:
            with self._lock:
                version = self._committed.setdefault(partition, self._table_version(partition))
        return version

    def _table_version(self, partition: int) -> int:
        found = self._table.transaction_version(self._app(partition))
        return -1 if found is None else int(found)

    def accepts(self, partition: int, offset: int) -> bool:
        """False for a replayed record this table already holds."""
        if self._resumed:
            return offset not in self._skip.get(partition, ())
        return offset > self.committed_version(partition)

    def add(self, table: pa.Table) -> None:
        """Buffer rows (columns `source_partition`, `source_offset` required)."""
        if table.num_rows == 0:
            return
        self._buffer.append(table)
        self.rows_buffered += table.num_rows

    def add_rows(self, items: Sequence[Any], row_format: RowFormat) -> None:
        """Buffer Python rows; `row_format` makes them a table, now or when committed.

        Building Arrow columns costs a fixed ~80-180 µs per call: batches of fewer than
        `_BUILD_NOW` rows (live traffic comes in batches of a few events) wait, and are
        built together here once they are `_SLICE_ROWS` rows; a larger one (a backlog) is
        built now. Either way the rows are built on the caller's thread, in slices spread
        over the epoch: the committing thread builds only the last slice, where building
        an epoch's rows, even paced, takes the interpreter lock from the worker in turns
        at every commit (at 5,000 events/s end to end, p99 medians 120 against 142 ms
        over 6 interleaved pairs, within that day's noise). Deferring every batch, large
        ones too, cost the throughput benchmark ~7%.
        """
        if not items:
            return
        if len(items) >= _BUILD_NOW:
            self.add(row_format.build(items))
            return
        last = self._buffer[-1] if len(self._buffer) > self._taken else None
        if not isinstance(last, _Pending) or last.format is not row_format:
            last = _Pending(row_format)
            self._buffer.append(last)
        last.items.extend(items)
        self.rows_buffered += len(items)
        if len(last.items) >= _SLICE_ROWS:  # built here, a slice at a time (see above)
            self._buffer[-1] = row_format.build(last.items)

    def cut(self) -> Rows | None:
        """Take the buffered rows for `write` (None if nothing is buffered)."""
        if not self._buffer:
            return None
        rows = Rows(self._buffer)
        self._buffer = []
        self.rows_buffered = 0
        self._taken = self.rows_taken = 0
        return rows

    def take_new(self) -> Rows | None:
        """The rows buffered since the last `take_new` or `cut` (None if none), still buffered.

        For a recovery log written in pieces: the parts handed out are never added to
        again, and `cut` still takes them (with the rest) for the commit.
        """
        parts = self._buffer[self._taken :]
        if not parts:
            return None
        self._taken = len(self._buffer)
        self.rows_taken = self.rows_buffered
        return Rows(parts)

    def commit(self) -> int | None:
        """Commit the buffer as one Delta version; returns it (None if nothing buffered)."""
        rows = self.cut()
        return None if rows is None else self.write(rows)

    def write(self, rows: Rows) -> int | None:
        """Commit `rows` as one version, unless the table already holds them (then None).

        Call from one thread at a time; `accepts` may run concurrently on another.
        """
        with self._lock:
            self._reopen_if_checkpointed()
            held = {p: self._table_version(p) for p in rows.offsets}
        if all(held[p] >= o for p, o in rows.offsets.items()):
            return None
        txns = [
            Transaction(app_id=self._app(p), version=max(o, held[p]))
            for p, o in sorted(rows.offsets.items())
        ]
        with self._lock:
            try:
                write_deltalake(
                    self._table,
                    rows.table,
                    mode="append",
                    partition_by=self._partition_by,
                    commit_properties=CommitProperties(app_transactions=txns),
                    post_commithook_properties=_NO_HOOKS,
                )
            except (DeltaError, OSError) as exc:
                msg = f"Delta commit of {rows.table.num_rows} rows to {self.uri!r} failed: {exc}"
                raise StoreError(msg) from exc
            version = self._table.version()
        for txn in txns:
            partition = int(txn.app_id.rsplit(".", 1)[1])
            self._committed[partition] = txn.version
        self._commits += 1
        if version % self._checkpoint_every == 0:
            every = self._compact_every
            compact = every is not None and self._commits - self._compacted_at >= every
            if self._checkpoint_in_background(version, compact=compact) and compact:
                self._compacted_at = self._commits
        return version

    def _reopen_if_checkpointed(self) -> None:
        """Reopen the handle from a checkpoint written since it was last opened (lock held).

        Only a cost: a table that cannot be reopened now keeps the handle it has.
        """
        checkpointed = self._checkpointed
        if checkpointed <= self.reopened_at:
            return
        with contextlib.suppress(DeltaError, OSError):
            self._table = DeltaTable(self.uri, storage_options=self._storage)
            self.reopened_at = checkpointed

    def resume_version(self) -> int:
        """The first version rows written from now on can land in (nothing in flight).

        The handle's version, not the log's newest: reading the log cost the worker 1-9 ms
        per snapshot. Versions other writers (compaction) added since are at or above it,
        so a resume that skips rows added from it on still skips every row of ours.
        """
        with self._lock:
            return self._table.version() + 1

    def _checkpoint_in_background(self, version: int, *, compact: bool) -> bool:
        """Checkpoint the log off the worker thread, compacted first if `compact`.

        One at a time: while one runs, this does nothing and returns False.
        """
        if self._checkpoint is not None and not self._checkpoint.done():
            return False
        self._checkpoint = _checkpoint_thread().submit(self._write_checkpoint, version, compact)
        return True

    def _write_checkpoint(self, version: int, compact: bool) -> None:
        # Read optimisations and housekeeping only: a failure (a concurrent `skewless
        # compact` conflicting, say) is retried at the next interval, never surfaced to
        # the dataflow.
        with contextlib.suppress(DeltaError, OSError):
            if compact:  # the newest version: the compaction commits on top of it
                table = DeltaTable(self.uri, storage_options=self._storage)
                table.optimize.compact(max_concurrent_tasks=1, post_commithook_properties=_NO_HOOKS)
            else:
                table = DeltaTable(self.uri, version=version, storage_options=self._storage)
            table.create_checkpoint()
            self._checkpointed = table.version()  # the next commit reopens the handle from it
            if compact:
                self._housekeep(table)

    def _housekeep(self, table: DeltaTable) -> None:
        """Delete replaced files and log versions older than the retention.

        Vacuum first: it finds replaced files by their tombstones, which the log cleanup
        may delete. It deletes only those (delta-rs's "lite" vacuum): a file the commit
        thread is writing, not in the log yet, is never touched, however old (tested).
        """
        table.vacuum(
            retention_hours=int(self._retention.total_seconds() // 3600),
            dry_run=False,
            enforce_retention_duration=False,
            post_commithook_properties=_NO_HOOKS,
        )
        table.cleanup_metadata()

    def settle(self) -> None:
        """Wait for the background checkpoint in progress (compaction, housekeeping), if any."""
        checkpoint = self._checkpoint
        if checkpoint is not None:
            checkpoint.result()

    def snapshot_version(self) -> int:
        """Commit, then the first version a replay from this point might find rows in."""
        self.commit()
        return self.resume_version()


@functools.cache
def _checkpoint_thread() -> ThreadPoolExecutor:
    """The one thread this process writes log checkpoints on, for every appender.

    One long-lived thread rather than one per checkpoint: delta-rs has crashed processes
    whose Delta calls ran on many short-lived threads (delta-io/delta-rs#4643, reported on
    Windows), and a worker of the executor is waited for at exit, so a checkpoint or a
    compaction is not cut off halfway (a clean stop waits for one in progress).
    """
    return ThreadPoolExecutor(1, thread_name_prefix="delta-checkpoint")
