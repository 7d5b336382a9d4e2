"""Exactly-once appends to a Delta table from a replayable stream.

Every commit carries one app transaction per source partition (`<app_id>.<partition>`, the
highest source offset committed), so the table itself records how far each partition got.
A sink resumed from a Bytewax snapshot knows the first table version it may have written
after that snapshot; on resume it loads the (partition, offset) pairs added since then and
skips exactly those when the source replays them. A sink started without recovery state
skips every offset at or below the partition's committed app-transaction version.

delta-rs does not skip an already-committed app transaction by itself, hence the checks.

Log checkpoints are written on a background thread every `checkpoint_every` versions, not
by delta-rs's post-commit hook: that hook runs inside the commit, on the dataflow's worker
thread, and measured ~300 ms against a ~50 ms commit — a stall every hundred epochs.
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from collections.abc import Sequence

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

from streams.errors import StoreError

__all__ = ["DeltaAppender", "ensure_table"]

_NO_HOOKS = PostCommitHookProperties(create_checkpoint=False, cleanup_expired_logs=False)


def ensure_table(
    uri: str,
    schema: pa.Schema,
    *,
    partition_by: Sequence[str],
    storage_options: dict[str, str] | None = None,
) -> DeltaTable:
    """Open the table at `uri`, creating it empty with `schema` if it does not exist."""
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
        )
    except DeltaError as exc:
        msg = f"cannot create Delta table at {uri!r}: {exc}"
        raise StoreError(msg) from exc


class DeltaAppender:
    """Buffers rows of one table and commits them idempotently per source partition."""

    def __init__(
        self,
        uri: str,
        schema: pa.Schema,
        *,
        app_id: str,
        partition_by: Sequence[str],
        resume_version: int | None,
        storage_options: dict[str, str] | None = None,
        checkpoint_every: int = 100,
    ) -> None:
        self.uri = uri
        self._checkpoint_every = checkpoint_every
        self._checkpointer: threading.Thread | None = None
        self._schema = schema
        self._app_id = app_id
        self._partition_by = list(partition_by)
        self._storage = storage_options
        self._table = ensure_table(
            uri, schema, partition_by=partition_by, storage_options=storage_options
        )
        self._resumed = resume_version is not None
        self._committed: dict[int, int] = {}
        self._skip: dict[int, set[int]] = defaultdict(set)
        if resume_version is not None:
            self._load_skip(resume_version)
        self._buffer: list[pa.Table] = []
        self._max_offsets: dict[int, int] = {}
        self._first_uncovered: int | None = None
        self.rows_buffered = 0

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
            old = DeltaTable(self.uri, version=since_version - 1, storage_options=self._storage)
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
            found = self._table.transaction_version(self._app(partition))
            version = self._committed[partition] = -1 if found is None else int(found)
        return version

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
        grouped = table.group_by("source_partition").aggregate([("source_offset", "max")])
        for p, o in zip(
            grouped.column("source_partition").to_pylist(),
            grouped.column("source_offset_max").to_pylist(),
            strict=True,
        ):
            if o > self._max_offsets.get(p, -1):
                self._max_offsets[p] = o

    def commit(self) -> int | None:
        """Commit the buffer as one Delta version; returns it (None if nothing buffered)."""
        if not self._buffer:
            return None
        data = pa.concat_tables(self._buffer)
        txns = []
        for p, o in sorted(self._max_offsets.items()):
            version = max(o, self.committed_version(p))
            txns.append(Transaction(app_id=self._app(p), version=version))
        try:
            write_deltalake(
                self._table,
                data,
                mode="append",
                partition_by=self._partition_by,
                commit_properties=CommitProperties(app_transactions=txns),
                post_commithook_properties=_NO_HOOKS,
            )
        except (DeltaError, OSError) as exc:
            msg = f"Delta commit of {data.num_rows} rows to {self.uri!r} failed: {exc}"
            raise StoreError(msg) from exc
        self._table.update_incremental()
        version = self._table.version()
        for txn in txns:
            partition = int(txn.app_id.rsplit(".", 1)[1])
            self._committed[partition] = txn.version
        if self._first_uncovered is None:
            self._first_uncovered = version
        if version % self._checkpoint_every == 0:
            self._checkpoint_in_background(version)
        self._buffer.clear()
        self._max_offsets.clear()
        self.rows_buffered = 0
        return version

    def _checkpoint_in_background(self, version: int) -> None:
        """Checkpoint the log off the worker thread (one at a time; a busy one skips)."""
        if self._checkpointer is not None and self._checkpointer.is_alive():
            return

        def checkpoint() -> None:
            # Only a read optimisation: a failure is retried at the next interval (or by
            # `skewless compact`), never surfaced to the dataflow.
            with contextlib.suppress(DeltaError, OSError):
                table = DeltaTable(self.uri, version=version, storage_options=self._storage)
                table.create_checkpoint()

        self._checkpointer = threading.Thread(
            target=checkpoint, name=f"delta-checkpoint-{version}", daemon=True
        )
        self._checkpointer.start()

    def snapshot_version(self) -> int:
        """Commit, then the first version a replay from this point might find rows in."""
        self.commit()
        first = self._first_uncovered
        self._first_uncovered = None
        if first is None:
            self._table.update_incremental()
            first = self._table.version() + 1
        return first
