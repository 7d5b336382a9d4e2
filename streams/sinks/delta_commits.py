"""Delta commits off the dataflow's worker thread, still exactly once across crashes.

A Delta commit (Parquet write plus log commit) takes ~50 ms, and the first one of a run
~600 ms: done inside a sink's `snapshot()` it stalls the whole worker once per epoch, and
every event queued behind it waits. Here a snapshot only *cuts* each appender's buffer and
hands the rows to one background thread, which commits them in order while the worker
goes on. The snapshot keeps those rows (pickled, see `Rows`), so if the process dies before
their commit lands, the restored sink commits them first — `DeltaAppender.write` skips
rows the table already holds, so nothing lands twice. At most one commit is in flight: a
snapshot first waits for the previous one (which had a whole epoch to finish), so its
failure stops the flow within an epoch and the snapshot's resume versions are exact.

With a state log open (recovery on, see `streams.state_log`) and a `log_key`, the rows a
snapshot cuts go to the log, in the transaction that writes the view steps' generations,
and the snapshot keeps only their generation (not the rows, which Bytewax would pickle
into its own store on the worker thread). The commit thread drops them from the log once
they are in the table.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from streams import state_log
from streams.sinks.delta_appender import DeltaAppender, Rows

__all__ = ["BackgroundCommits"]

STAGED = "staged"  # the snapshot key holding the rows cut but maybe not committed
STAGED_GEN = "staged_gen"  # ... or their generation in the state log
_LOG_STEP = "delta-staged"
PIECE_ROWS = 500  # rows (of the first appender) per logged piece


class BackgroundCommits:
    """Commits the rows cut from named appenders on one background thread, in order.

    `log_key` names this sink partition's rows in the state log (unique per partition).
    """

    def __init__(
        self, appenders: Mapping[str, DeltaAppender], *, log_key: str | None = None
    ) -> None:
        self._appenders = dict(appenders)
        self._executor: ThreadPoolExecutor | None = None
        self._in_flight: Future[None] | None = None
        self._log = state_log.active() if log_key is not None else None
        self._log_key = log_key or ""
        self._gen = 0

    def restore(self, state: Mapping[str, Any] | None) -> None:
        """Commit what a snapshot staged, unless the tables already hold it (on resume)."""
        state = state or {}
        for name, rows in (state.get(STAGED) or {}).items():
            self._restore(name, rows if isinstance(rows, Rows) else Rows.from_ipc(rows))
        if self._log is not None:
            self._gen = int(state.get(STAGED_GEN, 0))
            for parts in self._log.resume_generations(_LOG_STEP, self._log_key, self._gen):
                # A generation's pieces and blob are one cut, committed as one version.
                cut: dict[str, list[Rows]] = {}
                for blob in parts:
                    for name, rows in pickle.loads(blob).items():
                        cut.setdefault(name, []).append(rows)
                for name, many in cut.items():
                    self._restore(name, Rows.joined(many))
            self._log.drop(_LOG_STEP, self._log_key, self._gen)

    def rows_buffered(self) -> int:
        """Rows added to the appenders and not cut for a commit yet."""
        return sum(a.rows_buffered for a in self._appenders.values())

    def log_new(self, *, piece_rows: int = PIECE_ROWS) -> None:
        """With a state log, log the rows added since the last piece once they are `piece_rows`.

        Call after adding rows. The piece is encoded and written on the log's background
        thread (`StateLog.queue_piece`).
        """
        log = self._log
        if log is None or not self._appenders:
            return
        first = next(iter(self._appenders.values()))
        if first.rows_buffered - first.rows_taken < piece_rows:
            return
        piece = self._take_new()
        log.queue_piece(_LOG_STEP, self._log_key, self._gen + 1, lambda: pickle.dumps(piece, 5))

    def submit(self) -> dict[str, Rows]:
        """Wait for the commit in flight, then start committing every buffer; the rows cut.

        With a state log, the generations snapshots logged without committing them
        (`snapshot(commit=False)`) are in the cut: they are dropped once it lands.
        """
        self.wait()
        if self._log is not None:  # the commit takes the rows of any pieces (see above)
            self._log.drop_pieces(_LOG_STEP, self._log_key, self._gen + 1)
        cut = self._cut()
        self._commit(cut, gen=self._gen)
        return cut

    def snapshot(self, *, commit: bool = True) -> dict[str, Any]:
        """Per appender the version replays may find rows in, plus the rows now committing.

        With a state log, `commit=False` only logs the rows: they stay buffered, and a
        later snapshot (or a full buffer, or `close`) commits every generation logged
        since the last commit as one version, then drops them from the log. A restore
        commits each generation the log still holds, unless the table holds it. Without a
        log (a flow without recovery), `commit=False` leaves the rows buffered: nothing
        resumes from this snapshot, and a restart reads the source from its start while
        the appenders skip what their tables hold.
        """
        self.wait()
        state: dict[str, Any] = {n: a.resume_version() for n, a in self._appenders.items()}
        log = self._log
        if log is None:
            if commit:
                state[STAGED] = self.submit()  # `Rows` are pickled only if recovery is on
            return state
        # Logged, then committed: the commit thread may drop them as soon as they land.
        rest = self._take_new()
        self._gen += 1
        log.stage(_LOG_STEP, self._log_key, self._gen, pickle.dumps(rest, 5))
        log.flush()  # its pieces first, with what upstream steps staged for this epoch
        if commit:
            self._commit(self._cut(), gen=self._gen)
        state[STAGED_GEN] = self._gen
        return state

    def wait(self) -> None:
        """Wait for the commit in flight; raise its `StoreError`, if any."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.result()

    def close(self) -> None:
        """Commit everything buffered, on this thread, and stop the background thread."""
        try:
            self.wait()
            for appender in self._appenders.values():
                appender.commit()
        finally:
            if self._executor is not None:
                self._executor.shutdown()
                self._executor = None

    def _cut(self) -> dict[str, Rows]:
        return {name: rows for name, a in self._appenders.items() if (rows := a.cut()) is not None}

    def _take_new(self) -> dict[str, Rows]:
        return {
            name: rows for name, a in self._appenders.items() if (rows := a.take_new()) is not None
        }

    def _commit(self, cut: dict[str, Rows], *, gen: int) -> None:
        """Start committing `cut`; once in, drop its generation `gen` (if any) from the log."""
        if cut:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="delta-commit")
            self._in_flight = self._executor.submit(self._write, cut, gen)

    def _restore(self, name: str, rows: Rows) -> None:
        appender = self._appenders.get(name)
        if appender is not None:
            appender.write(rows)

    def _write(self, cut: Mapping[str, Rows], gen: int) -> None:
        for name, rows in cut.items():
            rows.build_paced()  # not in one go: the worker thread needs the interpreter lock
            self._appenders[name].write(rows)
        if gen and self._log is not None:
            self._log.drop(_LOG_STEP, self._log_key, gen)
