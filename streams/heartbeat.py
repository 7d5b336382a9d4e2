"""A source that hands out nothing and runs its worker's idle callbacks every second.

Under `--workers N` the feature sink has a partition on every worker thread, but the
merged source polls on one: the other threads' deferred Delta commits would wait for
traffic (`streams.idle`). This source has a partition on every worker (a Bytewax
`DynamicSource`): each wakes once an `interval` and runs its thread's idle callbacks. It
ends once the dataflow is asked to stop (`streams.stop`), as the tailing sources do; a
bounded flow needs none (its sinks commit what is left when they close).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bytewax.inputs import DynamicSource, StatelessSourcePartition

from streams import idle, stop

__all__ = ["Heartbeat"]


class _Beat(StatelessSourcePartition[None]):
    def __init__(self, interval: timedelta) -> None:
        self._interval = interval
        self._awake: datetime | None = None

    def next_batch(self) -> list[None]:
        if stop.requested():
            raise StopIteration
        idle.run()
        self._awake = datetime.now(UTC) + self._interval
        return []

    def next_awake(self) -> datetime | None:
        return self._awake


class Heartbeat(DynamicSource[None]):
    """One partition per worker, running that worker thread's idle callbacks."""

    def __init__(self, interval: timedelta = timedelta(seconds=1)) -> None:
        self._interval = interval

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Beat:
        return _Beat(self._interval)
