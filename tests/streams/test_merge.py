"""The event-time merge of partitions: order, waiting for a partition, and its escape hatch."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.merge import EventTimeMerge, merged

Record = tuple[int, int, int]  # (partition, offset, event time)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _merge(
    partitions: int, *, tolerance_ms: int = 0, clock: _Clock | None = None
) -> EventTimeMerge[Record]:
    return EventTimeMerge[Record](
        dict.fromkeys(range(partitions), 0), tolerance_ms=tolerance_ms, clock=clock or _Clock()
    )


def _add(merge: EventTimeMerge[Record], partition: int, offset: int, event_time: int) -> None:
    merge.add(partition, event_time, offset, (partition, offset, event_time))


partitions_st = st.lists(
    st.lists(st.integers(0, 50), max_size=30).map(sorted), min_size=1, max_size=4
)


@given(partitions_st, st.randoms(use_true_random=False), st.integers(1, 7))
def test_in_order_partitions_come_out_merged_however_the_reads_interleave(
    times: list[list[int]], rng: random.Random, limit: int
) -> None:
    parts: list[list[Record]] = [
        [(p, o, t) for o, t in enumerate(ts)] for p, ts in enumerate(times)
    ]
    merge = _merge(len(parts))
    read = [0] * len(parts)
    out: list[Record] = []
    while not merge.finished:
        p = rng.randrange(len(parts))  # reads arrive in any order and any amount
        if read[p] < len(parts[p]):
            for record in parts[p][read[p] : read[p] + rng.randint(1, 5)]:
                _add(merge, p, record[1], record[2])
                read[p] += 1
        elif read[p] == len(parts[p]):
            merge.reached_end(p, final=True)
        out += merge.take(limit)
    assert out == merged(parts, lambda r: r[2])
    assert merge.next_offsets() == {p: len(part) for p, part in enumerate(parts)}


@given(st.lists(st.lists(st.integers(0, 50), max_size=20), min_size=1, max_size=4))
def test_each_partition_keeps_its_offset_order_even_out_of_event_time_order(
    times: list[list[int]],
) -> None:
    merge = _merge(len(times))
    for p, ts in enumerate(times):
        for o, t in enumerate(ts):
            _add(merge, p, o, t)
        merge.reached_end(p, final=True)
    out = merge.take(10_000)
    assert len(out) == sum(map(len, times))
    for p in range(len(times)):
        assert [r[1] for r in out if r[0] == p] == list(range(len(times[p])))
    assert merge.finished


def test_a_partition_with_nothing_buffered_holds_back_later_records() -> None:
    merge = _merge(2)
    _add(merge, 0, 0, 100)
    _add(merge, 0, 1, 200)
    assert merge.take(10) == []  # partition 1 has given nothing yet: its first may be older
    _add(merge, 1, 0, 150)
    assert merge.take(10) == [(0, 0, 100), (1, 0, 150)]  # 1 may go on from 150
    _add(merge, 1, 1, 250)
    assert merge.take(10) == [(0, 1, 200)]  # partition 0 now has nothing: 250 waits
    merge.reached_end(0, final=False)  # at the end of its log (for now)
    assert merge.take(10) == [(1, 1, 250)]
    _add(merge, 0, 2, 240)  # it grows again, a little behind: handed out all the same
    assert merge.take(10) == [(0, 2, 240)]


def test_ties_go_to_the_lower_partition() -> None:
    merge = _merge(2)
    _add(merge, 1, 0, 100)
    _add(merge, 0, 0, 100)
    _add(merge, 0, 1, 100)
    merge.reached_end(0, final=True)
    merge.reached_end(1, final=True)
    assert merge.take(10) == [(0, 0, 100), (0, 1, 100), (1, 0, 100)]


def test_tolerance_lets_the_others_run_that_far_past_a_waiting_partition() -> None:
    merge = _merge(2, tolerance_ms=50)
    _add(merge, 1, 0, 100)
    merge.take(10)  # partition 0 gave nothing, so it holds everything back
    _add(merge, 0, 0, 90)
    for offset, event_time in enumerate((120, 139, 140, 141), start=1):
        _add(merge, 1, offset, event_time)
    # partition 0 is now empty after 90: the others may go up to (90 + 50, partition 0)
    assert merge.take(10) == [(0, 0, 90), (1, 0, 100), (1, 1, 120), (1, 2, 139)]


def test_a_stalled_partition_stops_holding_the_others_back() -> None:
    clock = _Clock()
    merge = EventTimeMerge[Record]({0: 0, 1: 0}, tolerance_ms=0, stall_s=5.0, clock=clock)
    _add(merge, 1, 0, 100)
    assert merge.take(10) == []
    clock.now = 4.9
    assert merge.take(10) == []
    clock.now = 5.0
    assert merge.take(10) == [(1, 0, 100)]
    _add(merge, 0, 0, 50)  # it comes back: it holds the others again once it runs out
    _add(merge, 1, 1, 200)
    assert merge.take(10) == [(0, 0, 50)]


def test_a_record_without_event_time_goes_at_its_partitions_last_time() -> None:
    merge = _merge(2)
    _add(merge, 0, 0, 100)
    merge.add(0, None, 1, (0, 1, -1))  # a record that failed to decode
    _add(merge, 1, 0, 100)
    _add(merge, 1, 1, 300)
    merge.reached_end(0, final=True)
    merge.reached_end(1, final=True)
    assert merge.take(10) == [(0, 0, 100), (0, 1, -1), (1, 0, 100), (1, 1, 300)]


def test_resume_offsets_are_those_after_the_last_record_handed_out() -> None:
    merge = EventTimeMerge[Record]({0: 7, 1: -2}, tolerance_ms=0)
    _add(merge, 0, 7, 10)
    _add(merge, 0, 8, 20)
    merge.reached_end(1, final=False)
    assert merge.take(1) == [(0, 7, 10)]
    assert merge.next_offsets() == {0: 8, 1: -2}  # 1 handed out nothing: where it started


def test_a_negative_tolerance_is_refused() -> None:
    with pytest.raises(ValueError, match="tolerance_ms: expected >= 0, got -1"):
        EventTimeMerge[Record]({0: 0}, tolerance_ms=-1)
