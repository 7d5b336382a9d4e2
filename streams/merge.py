"""The records of several partitions, merged in event-time order: what the feature flow reads.

Entities whose events span partitions (a merchant's come from every card's partition) see
them in the order the source hands them out. Read a batch per partition at a time, a
backlog's partitions drift apart in event time by as much as their sizes differ (8% over
a month of history is two days): a merchant then sees one partition's events days after
another's, marks them late and leaves them out of its windows. Merged, every entity sees
its events in event-time order whatever the partitions' sizes, so a replay computes what a
live run computed.

The rule (Kafka Streams' task merge, plus its wait for a partition with nothing buffered):
hand out the buffered record with the smallest (event time, partition), a partition's
records always in offset order; but while a partition has nothing buffered and has not
reached its end, hand out only records before (its last event time + `tolerance_ms`, it),
since its next record may come first. With `tolerance_ms=0` and partitions each in event
time order, that is the order of `merged`, however the reads interleave. A partition that
has waited `stall_s` without data or an end stops holding the others back (a stuck
partition must not stop the flow), until it gives a record again. A record without an
event time (one that failed to decode) counts as its partition's last time.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

__all__ = ["EventTimeMerge", "merged"]

T = TypeVar("T")


class _Partition(Generic[T]):
    __slots__ = ("buffer", "ended", "idle", "last_time", "next_offset", "starved_at")

    def __init__(self, next_offset: int) -> None:
        self.buffer: deque[tuple[int, int, T]] = deque()  # (event time, offset, item)
        self.last_time: int | None = None  # event time of the last record added
        self.next_offset = next_offset  # offset after the last record handed out
        self.idle = False  # at the end of its log for now (it may grow)
        self.ended = False  # at the end of its log for good (a bounded read)
        self.starved_at: float | None = None  # when it last ran out (monotonic seconds)


class EventTimeMerge(Generic[T]):
    """Buffers per partition, handed out in event-time order (see the module docstring).

    `offsets` gives each partition's first offset; `next_offsets()` is the resume point.
    """

    def __init__(
        self,
        offsets: dict[int, int],
        *,
        tolerance_ms: int,
        stall_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if tolerance_ms < 0:
            msg = f"tolerance_ms: expected >= 0, got {tolerance_ms!r}"
            raise ValueError(msg)
        self._parts = {p: _Partition[T](offset) for p, offset in sorted(offsets.items())}
        self._tolerance = tolerance_ms
        self._stall_s = stall_s
        self._clock = clock
        now = clock()
        for part in self._parts.values():
            part.starved_at = now
        self._heap: list[tuple[int, int]] = []  # (head event time, partition) of non-empty

    def add(self, partition: int, event_time: int | None, offset: int, item: T) -> None:
        """A record read from `partition` (in offset order)."""
        part = self._parts[partition]
        if event_time is None:
            event_time = part.last_time if part.last_time is not None else _NO_TIME
        part.last_time = event_time
        part.idle = False
        part.starved_at = None
        if not part.buffer:
            heapq.heappush(self._heap, (event_time, partition))
        part.buffer.append((event_time, offset, item))

    def reached_end(self, partition: int, *, final: bool) -> None:
        """`partition` has nothing more for now (`final`: nothing more ever)."""
        part = self._parts[partition]
        part.idle = True
        part.ended = part.ended or final

    def wanted(self, low_water: int) -> list[int]:
        """The partitions worth reading from: fewer than `low_water` buffered, not ended."""
        return [
            p for p, part in self._parts.items() if not part.ended and len(part.buffer) < low_water
        ]

    @property
    def finished(self) -> bool:
        """Every partition ended and handed out."""
        return all(part.ended and not part.buffer for part in self._parts.values())

    def next_offsets(self) -> dict[int, int]:
        """Per partition, the offset after the last record handed out."""
        return {p: part.next_offset for p, part in self._parts.items()}

    def take(self, limit: int) -> list[T]:
        """Up to `limit` records in merged order, as far as the rule allows now."""
        out: list[T] = []
        heap, parts = self._heap, self._parts
        horizon = self._horizon()
        while heap and len(out) < limit:
            if horizon is not None and heap[0] >= horizon:
                break
            partition = heap[0][1]
            part = parts[partition]
            _, offset, item = part.buffer.popleft()
            out.append(item)
            part.next_offset = offset + 1
            if part.buffer:
                heapq.heapreplace(heap, (part.buffer[0][0], partition))
                continue
            heapq.heappop(heap)
            if not part.idle:  # it may have more, from its last time on: wait for it
                part.starved_at = self._clock()
                bound = self._bound(partition)
                horizon = bound if horizon is None else min(horizon, bound)
        return out

    def _horizon(self) -> tuple[int, int] | None:
        """The first (event time, partition) that may not be handed out now (None: none)."""
        horizon: tuple[int, int] | None = None
        now = self._clock()
        for partition, part in self._parts.items():
            if part.buffer or part.idle:
                continue
            if part.starved_at is None:
                part.starved_at = now
            if now - part.starved_at >= self._stall_s:
                continue  # stalled: it stops holding the others back
            bound = self._bound(partition)
            horizon = bound if horizon is None else min(horizon, bound)
        return horizon

    def _bound(self, partition: int) -> tuple[int, int]:
        last_time = self._parts[partition].last_time
        return ((_NO_TIME if last_time is None else last_time) + self._tolerance, partition)


_NO_TIME = -(2**62)  # before any event time: a partition that gave nothing holds every record


def merged(parts: Iterable[Iterable[T]], event_time: Callable[[T], int]) -> list[T]:
    """Complete partitions merged by the same rule (a replay has every record at hand)."""
    return list(heapq.merge(*parts, key=event_time))
