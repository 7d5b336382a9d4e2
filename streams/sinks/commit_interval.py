"""When a sink partition's Delta rows are committed: every `interval`, not every epoch.

On the local filesystem every Delta commit lists the table's whole `_delta_log`, which
keeps the retention's versions (`streams.sinks.delta_appender`): a commit every epoch
would outgrow its epoch within days. So a sink hands its `BackgroundCommits` to an
`IntervalCommits`: snapshots between commits only log their rows in the state log (with
recovery) or keep them buffered (without: a restart reads its source from the start and
the appenders skip what the tables hold), a full buffer is committed at once, and an idle
source poll on the partition's thread commits what is due (`streams.idle`: Bytewax
snapshots only the sink partitions written to in the epoch). An interval of 0 commits at
every snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from streams import idle
from streams.sinks.delta_commits import BackgroundCommits

__all__ = ["IntervalCommits"]


def _nothing() -> None:
    """No other store to wait for."""


class IntervalCommits:
    """Commits `commits` at most every `interval`, once `acknowledge` has returned.

    `acknowledge` waits until the sink's other stores hold what it wrote (whatever Delta
    holds must be in them too). Construct it on the thread the sink partition runs on
    (in the partition's constructor): its idle callback is that thread's.
    """

    def __init__(
        self,
        commits: BackgroundCommits,
        interval: timedelta,
        *,
        full_rows: int,
        acknowledge: Callable[[], None] = _nothing,
    ) -> None:
        self._commits = commits
        self._interval_s = interval.total_seconds()
        self._full_rows = full_rows
        self._acknowledge = acknowledge
        self._committed_at = time.monotonic()
        if self._interval_s > 0:
            idle.register(self.commit_if_due)

    def added(self, rows_buffered: int) -> None:
        """After rows were added: commit now if `rows_buffered` fills the buffer, else log."""
        if rows_buffered >= self._full_rows:
            self.commit_now()
        else:
            self._commits.log_new()

    def commit_if_due(self) -> None:
        """Commit what is buffered once the interval has passed since the last commit."""
        if self._commits.rows_buffered() == 0:
            return
        if time.monotonic() - self._committed_at >= self._interval_s:
            self.commit_now()

    def commit_now(self) -> None:
        """Commit everything buffered (between snapshots)."""
        self._acknowledge()
        self._commits.submit()
        self._committed_at = time.monotonic()

    def snapshot(self) -> dict[str, Any]:
        """The sink partition's snapshot state; commits too once the interval has passed."""
        self._acknowledge()
        now = time.monotonic()
        commit = now - self._committed_at >= self._interval_s
        if commit:
            self._committed_at = now
        return self._commits.snapshot(commit=commit)

    def close(self) -> None:
        """Commit everything buffered, on this thread, and stop the commit thread."""
        idle.unregister(self.commit_if_due)
        self._acknowledge()
        self._commits.close()
