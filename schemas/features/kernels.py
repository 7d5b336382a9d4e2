"""Window kernels: per-entity state and the computation of a view's features for one event.

Pure Python, no I/O, importable without Bytewax. The state of one entity is its known
events sorted by event time (parallel lists, so window slices are C-level `min`/`max`/
`set` calls), plus exact prefix sums of the sources that are summed. An event is *late*
when its time is more than the view's allowed lateness behind the newest event time the
entity has seen: a late event gets its vector (computed from the retained state plus
itself) but does not enter the state.

Feature values are compared bit for bit across Redis, Delta and backfills, so the
arithmetic is part of the contract. Over the window `s` (oldest first, the event last):
`float(len(s))`, `float(min(s))`, `float(max(s))` and `float(len(set(s)))`; `sum` is the
float nearest the exact sum of `s` (what `math.fsum` gives), `mean` the float nearest the
exact mean, `std` the `math.sqrt` of the float nearest the exact population variance.
`zscore` is `(float(x) - m) / d` over the earlier events `s[:-1]` (two or more, with their
mean `m` and std `d` as above; 0.0 when `d <= 1e-9 * max(1, |m|)`), and `last` reads
`s[-2]`. Exact sums do not depend on the order of `s`, on the order the events arrived in,
or on the Python version (3.12 changed `sum` over floats), so a backfill reproduces a
stream however its partitions interleaved. Summed, min and max sources hold ints or
finite floats (the transaction decoder and the online API refuse non-finite numbers).

Exact sums cost O(1) per event whatever the window's length: each value `v` of a summed
source is held as the integer `v * 2**e` (exact: a float is an integer times a power of
two; `e` grows, and the prefixes are shifted, when a value needs finer bits), the state
keeps prefix sums of those integers and of their squares, and a window's sum is one
subtraction and one correctly rounded int division. (A 7-day mean over a busy merchant's
events used to sum its whole slice on every event.)

Count-distinct, min and max read the window's slice while it is small. From `COUNTED_FROM`
events on, the newest event's window is kept as value counts (`CountedWindow`) or as a
heap (`RankedWindow`), updated as events enter and leave it; an out-of-order event's own
window differs from it by the events it is out of order by, which are few. Both give the
slice's result, bit for bit (a zero min or max is taken from the slice: 0.0 and -0.0 are
equal, and the slice's order decides which is returned). Small windows keep no structure:
a card's hold a few events, and millions of cards must not each hold dicts and heaps.

For speed, `ViewKernel` compiles its view to a `_Plan` once. Per event, each window's
start is found once (longest window first, each start bounding the next), and the
aggregations run from per-function tables of output positions rather than one Python call
each.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from heapq import heapify, heappop, heappush
from operator import attrgetter, truediv
from typing import Any, TypeVar, assert_never

from schemas.features.definition import AggFunction, FeatureView
from schemas.records import Transaction

__all__ = ["COUNTED_FROM", "CountedWindow", "RankedWindow", "ViewKernel", "WindowState"]

_EVICT_BATCH = 256
# A count-distinct, min or max window holding this many events or more is kept counted or
# ranked (see `CountedWindow`, `RankedWindow`); one that falls under a quarter of it goes
# back to slices.
COUNTED_FROM = 256
_SUMMED = frozenset({"sum", "mean", "std", "zscore"})
_SQUARED = frozenset({"std", "zscore"})


@dataclass(slots=True)
class WindowState:
    """Known events of one entity, sorted by event time, and the entity's watermark.

    For each summed source, `sums` holds the prefix sums of its values scaled by
    `2**scales[slot]` (`sums[slot][k]` = a base + the scaled values of events `0..k-1`, so
    one entry more than events), and `squares` those of the squared scaled values of each
    squared source (scale `2**(2 * scales[slot])`). All exact integers.
    """

    times: list[int] = field(default_factory=list)
    columns: list[list[Any]] = field(default_factory=list)
    sums: list[list[int]] = field(default_factory=list)
    squares: list[list[int]] = field(default_factory=list)
    scales: list[int] = field(default_factory=list)
    counted: dict[int, CountedWindow] = field(default_factory=dict)
    ranked: dict[int, RankedWindow] = field(default_factory=dict)
    max_time: int | None = None


@dataclass(slots=True)
class CountedWindow:
    """A busy count-distinct window, counted: how many of each value events `lo..` hold.

    Events `lo..` are those in the window of the entity's newest event (of the view's
    distinct pair this is kept for). The newest event's distinct count is `len(counts)`;
    an earlier one's is found by adjusting the counts for the few events newer than it and
    the few its own window starts earlier with: O(disorder), not O(window).
    """

    lo: int
    counts: dict[Any, int]

    @classmethod
    def of(cls, lo: int, values: list[Any], sign: int) -> CountedWindow:
        """The window of `values` (the events from `lo` on); `sign` is for `RankedWindow`."""
        window = cls(lo, {})
        for value in values:
            window.add(value)
        return window

    def add(self, value: Any) -> None:
        """An event with `value` enters the window."""
        self.counts[value] = self.counts.get(value, 0) + 1

    def drop(self, value: Any) -> None:
        """An event with `value` leaves the window."""
        _uncount(self.counts, value)

    def tidy(self, column: list[Any]) -> None:
        """Nothing to tidy: counts hold only what is in the window."""


@dataclass(slots=True)
class RankedWindow:
    """A busy min or max window, as a heap of the values of events `lo..` (see `CountedWindow`).

    Keys are the values for a min, their negations for a max. An event leaving the window
    stays in the heap, counted in `gone`, until it reaches the top; the heap is rebuilt
    when it holds twice what the window does. An earlier event's min or max sets aside
    the few keys of the events newer than it and looks at the few its window starts
    earlier with.
    """

    lo: int
    sign: int  # 1 for a min, -1 for a max
    heap: list[Any]
    gone: dict[Any, int]

    @classmethod
    def of(cls, lo: int, values: list[Any], sign: int) -> RankedWindow:
        """The window of `values` (the events from `lo` on), ranked by `sign`."""
        heap = [sign * value for value in values]
        heapify(heap)
        return cls(lo, sign, heap, {})

    def add(self, value: Any) -> None:
        """An event with `value` enters the window."""
        heappush(self.heap, self.sign * value)

    def drop(self, value: Any) -> None:
        """An event with `value` leaves the window (its key stays in the heap, as gone)."""
        key = self.sign * value
        self.gone[key] = self.gone.get(key, 0) + 1

    def tidy(self, column: list[Any]) -> None:
        """Rebuild the heap from the window's events once it is mostly gone keys."""
        if len(self.heap) > 2 * (len(column) - self.lo) + 64:
            self.heap = [self.sign * value for value in column[self.lo :]]
            heapify(self.heap)
            self.gone = {}


_Reduce = Callable[[list[Any]], Any]


@dataclass(frozen=True, slots=True)
class _Plan:
    """A view's aggregations as tables, one per function; `at` is the output position.

    `w` indexes the view's windows longest first, `col` its sources, `sm` its summed
    sources (`sums`, `scales`) and `sq` its squared ones (`squares`); `d` and `r` index
    `ViewKernel.distinct_pairs` and `ranked_pairs`.
    """

    width: int
    counts: tuple[tuple[int, int], ...]  # (at, w)
    reduces: tuple[tuple[int, int, int, int, _Reduce], ...]  # (at, col, w, r, min | max)
    sums: tuple[tuple[int, int, int], ...]  # (at, sm, w)
    moments: tuple[tuple[int, int, int, int, int], ...]  # (mean at | -1, std at | -1, sm, sq, w)
    distincts: tuple[tuple[int, int, int, int], ...]  # (at, col, w, d): distinct_pairs[d]
    zscores: tuple[tuple[int, int, int, int, int], ...]  # (at, col, sm, sq, w)
    lasts: tuple[tuple[int, int, int], ...]  # (at, col, w)
    gaps: tuple[tuple[int, float], ...]  # (at, cap in seconds)


class ViewKernel:
    """The compiled form of a `FeatureView`: `apply(state, event)` → (features, late)."""

    def __init__(self, view: FeatureView) -> None:
        self.view = view
        self.lateness_ms = int(view.allowed_lateness.total_seconds() * 1000)
        self.retention_ms = view.retention_ms
        self.sources: tuple[str, ...] = tuple(
            sorted({a.source for a in view.aggregations if a.source is not None})
        )
        summed = {a.source for a in view.aggregations if a.function in _SUMMED}
        squared = {a.source for a in view.aggregations if a.function in _SQUARED}
        self.summed: tuple[int, ...] = tuple(i for i, s in enumerate(self.sources) if s in summed)
        self.squared: tuple[int, ...] = tuple(i for i, s in enumerate(self.sources) if s in squared)
        self.windows: tuple[int, ...] = tuple(sorted({a.window_ms for a in view.aggregations}))
        self._spans = self.windows[::-1]
        # (source column, window index, window ms) of each count-distinct window
        self.distinct_pairs: tuple[tuple[int, int, int], ...] = tuple(
            dict.fromkeys(
                (self.sources.index(a.source), self._spans.index(a.window_ms), a.window_ms)
                for a in view.aggregations
                if a.function == "count_distinct" and a.source is not None
            )
        )
        # (source column, window index, window ms, 1 for min | -1 for max) of each min/max
        self.ranked_pairs: tuple[tuple[int, int, int, int], ...] = tuple(
            dict.fromkeys(
                (
                    self.sources.index(a.source),
                    self._spans.index(a.window_ms),
                    a.window_ms,
                    1 if a.function == "min" else -1,
                )
                for a in view.aggregations
                if a.function in {"min", "max"} and a.source is not None
            )
        )
        self.counted_from = COUNTED_FROM
        # the window index of the longest such window: the first to get busy
        self._widest = min((p[1] for p in (*self.distinct_pairs, *self.ranked_pairs)), default=-1)
        # (sums slot, source column, squares slot or -1) of each summed source
        self._summed_of: tuple[tuple[int, int, int], ...] = tuple(
            (sm, col, self.squared.index(col) if col in self.squared else -1)
            for sm, col in enumerate(self.summed)
        )
        self._plan = self._compile()
        self._extract = _getter(self.sources)

    def new_state(self) -> WindowState:
        """An empty state with one column per source field."""
        return WindowState(
            columns=[[] for _ in self.sources],
            sums=[[0] for _ in self.summed],
            squares=[[0] for _ in self.squared],
            scales=[0 for _ in self.summed],
        )

    def extract(self, event: Transaction) -> tuple[Any, ...]:
        """The source values this view needs from `event`, in `sources` order."""
        return self._extract(event)

    def apply(
        self, state: WindowState, event_time: int, values: tuple[Any, ...]
    ) -> tuple[tuple[float, ...], bool]:
        """Features of the event at `event_time` (window ends at it, inclusive) and lateness.

        On time, the event enters the state; late, it is computed then removed again.
        """
        times = state.times
        columns = state.columns
        max_time = state.max_time
        if max_time is None:
            late = False
            watermark = event_time
        else:
            late = event_time < max_time - self.lateness_ms
            watermark = max_time if max_time >= event_time else event_time

        # Each summed source's value as an exact integer at its scale (raised first, with
        # its prefixes shifted, when the value has finer bits), for its prefix lists.
        scaled = []
        for sm, col, sq in self._summed_of:
            numerator, denominator = values[col].as_integer_ratio()
            bits = denominator.bit_length() - 1  # the denominator is a power of two
            scale = state.scales[sm]
            if bits > scale:
                _rescale(state, sm, sq, bits - scale)
                scale = bits
            x = numerator << (scale - bits)
            scaled.append((state.sums[sm], x))
            if sq >= 0:
                scaled.append((state.squares[sq], x * x))
        if not times or event_time >= times[-1]:  # in order: the event goes last
            i = len(times)
            times.append(event_time)
            for column, value in zip(columns, values, strict=True):
                column.append(value)
            for prefix, x in scaled:
                prefix.append(prefix[-1] + x)
        else:  # after the known events of the same time, as `bisect_right` places it
            i = bisect_right(times, event_time)
            times.insert(i, event_time)
            for column, value in zip(columns, values, strict=True):
                column.insert(i, value)
            for prefix, x in scaled:
                prefix.insert(i + 1, prefix[i] + x)
                prefix[i + 2 :] = [p + x for p in prefix[i + 2 :]]
        if state.counted or state.ranked:
            self._count_in(state, i, event_time, values)

        cutoff = watermark - self.retention_ms
        horizon = bisect_right(times, cutoff) if times[0] <= cutoff else 0
        # A window starts at its first event newer than event_time - w, never before the
        # horizon, and never after the event itself, which is in its window even when
        # late beyond retention.
        if horizon < i:
            los = []
            lo = horizon
            newest_earlier = times[i - 1]
            for w in self._spans:  # longest first: each window starts at or after the last
                start = event_time - w
                if newest_earlier <= start:  # the event alone
                    lo = i
                elif times[lo] <= start:
                    lo = bisect_right(times, start, lo + 1, i - 1)
                los.append(lo)
        else:
            los = [i] * len(self._spans)
        result = self._evaluate(state, los, i, horizon, event_time)

        if late:
            del times[i]
            for column in columns:
                del column[i]
            for prefix, x in scaled:
                del prefix[i + 1]
                prefix[i + 1 :] = [p - x for p in prefix[i + 1 :]]
            if state.counted or state.ranked:
                self._count_out(state, event_time, values)
        else:
            state.max_time = watermark
            widest = self._widest  # the newest event may count or rank a busy window
            if (
                widest >= 0
                and i == len(times) - 1
                and (state.counted or state.ranked or i - los[widest] >= self.counted_from - 1)
            ):
                self._recount(state, los)
            if horizon >= _EVICT_BATCH or (horizon and horizon * 4 >= len(times)):
                del times[:horizon]
                for column in columns:
                    del column[:horizon]
                for window, _, _ in self._busy(state):
                    window.lo -= horizon
                for prefixes in (state.sums, state.squares):
                    for prefix in prefixes:
                        base = prefix[horizon]  # rebased to 0: the integers stay small
                        prefix[:] = [p - base for p in prefix[horizon:]]
        return result, late

    def _busy(self, state: WindowState) -> Iterator[tuple[CountedWindow | RankedWindow, int, int]]:
        """Each busy window with its source column and length in ms."""
        for d, window in state.counted.items():
            col, _, span_ms = self.distinct_pairs[d]
            yield window, col, span_ms
        for r, ranked in state.ranked.items():
            col, _, span_ms, _ = self.ranked_pairs[r]
            yield ranked, col, span_ms

    def _count_in(
        self, state: WindowState, i: int, event_time: int, values: tuple[Any, ...]
    ) -> None:
        """Enter the event just inserted at index `i` into the busy windows."""
        times, columns = state.times, state.columns
        newest = i == len(times) - 1
        for window, col, span_ms in self._busy(state):
            if newest:  # the window moves to end at it: older events leave
                window.add(values[col])
                start = event_time - span_ms
                column, lo = columns[col], window.lo
                while times[lo] <= start:
                    window.drop(column[lo])
                    lo += 1
                window.lo = lo
                window.tidy(column)
            elif event_time > times[-1] - span_ms:  # inside the newest event's window
                window.add(values[col])
            else:  # before it: the window's events moved one place on
                window.lo += 1

    def _count_out(self, state: WindowState, event_time: int, values: tuple[Any, ...]) -> None:
        """Take a late event (just removed again) back out of the busy windows."""
        for window, col, span_ms in self._busy(state):
            if event_time > state.times[-1] - span_ms:
                window.drop(values[col])
            else:
                window.lo -= 1

    def _recount(self, state: WindowState, los: list[int]) -> None:
        """After a newest event: count or rank windows grown busy, drop calmed ones."""
        least, columns = self.counted_from, state.columns
        for d, (col, w, _) in enumerate(self.distinct_pairs):
            _keep_busy(state.counted, d, CountedWindow, columns[col], los[w], 1, least)
        for r, (col, w, _, sign) in enumerate(self.ranked_pairs):
            _keep_busy(state.ranked, r, RankedWindow, columns[col], los[w], sign, least)

    def _evaluate(
        self, state: WindowState, los: list[int], i: int, horizon: int, t: int
    ) -> tuple[float, ...]:
        """Every aggregation of the event at index `i`, in the view's order."""
        plan = self._plan
        columns = state.columns
        end = i + 1
        out = [0.0] * plan.width
        for at, w in plan.counts:
            out[at] = float(end - los[w])
        ranked = state.ranked
        for at, col, w, r, reduce in plan.reduces:
            lo = los[w]
            held = ranked.get(r) if ranked else None
            value = None
            if held is not None and i >= held.lo:
                value = _ranked(held, columns[col], lo, end)
            if value is None:  # a calm window, or a zero (whose sign the slice's order decides)
                value = reduce(columns[col][lo:end])
            out[at] = float(value)
        sums, squares, scales = state.sums, state.squares, state.scales
        for at, sm, w in plan.sums:
            prefix = sums[sm]
            out[at] = _ratio(prefix[end] - prefix[los[w]], 1 << scales[sm])
        for mean_at, std_at, sm, sq, w in plan.moments:
            lo = los[w]
            n = end - lo
            s1 = sums[sm][end] - sums[sm][lo]
            if mean_at >= 0:
                out[mean_at] = _ratio(s1, n << scales[sm])
            if std_at >= 0:
                out[std_at] = _std(s1, squares[sq][end] - squares[sq][lo], n, scales[sm])
        counted = state.counted
        for at, col, w, d in plan.distincts:
            lo = los[w]
            window = counted.get(d) if counted else None
            if window is None or i < window.lo:
                out[at] = float(len(set(columns[col][lo:end]))) if lo < i else 1.0
            elif end == len(state.times):  # the newest event: its window is the counted one
                out[at] = float(len(window.counts))
            else:
                out[at] = float(_adjusted(window, columns[col], lo, end))
        for at, col, sm, sq, w in plan.zscores:
            lo = los[w]
            n = i - lo
            if n < 2:
                continue
            s1 = sums[sm][i] - sums[sm][lo]
            mean = _ratio(s1, n << scales[sm])
            sd = _std(s1, squares[sq][i] - squares[sq][lo], n, scales[sm])
            scale = abs(mean)
            if sd <= 1e-9 * (scale if scale > 1.0 else 1.0):  # max(1.0, |mean|)
                continue
            out[at] = (float(columns[col][i]) - mean) / sd
        for at, col, w in plan.lasts:
            if i > los[w]:
                out[at] = float(columns[col][i - 1])
        for at, cap_s in plan.gaps:
            if i > horizon:
                gap = (t - state.times[i - 1]) / 1000.0
                out[at] = gap if gap < cap_s else cap_s
            else:
                out[at] = cap_s
        return tuple(out)

    def _compile(self) -> _Plan:
        """The view's aggregations as function tables (see `_Plan`)."""
        counts: list[tuple[int, int]] = []
        reduces: list[tuple[int, int, int, int, _Reduce]] = []
        sums: list[tuple[int, int, int]] = []
        moments: dict[tuple[int, int], list[int]] = {}  # (sm, w) -> [mean at, std at, sm, sq, w]
        distincts: list[tuple[int, int, int, int]] = []
        zscores: list[tuple[int, int, int, int, int]] = []
        lasts: list[tuple[int, int, int]] = []
        gaps: list[tuple[int, float]] = []

        for at, agg in enumerate(self.view.aggregations):
            w = self._spans.index(agg.window_ms)
            col = self.sources.index(agg.source) if agg.source is not None else -1
            sm = self.summed.index(col) if col in self.summed else -1
            sq = self.squared.index(col) if col in self.squared else -1
            fn: AggFunction = agg.function
            match fn:
                case "count":
                    counts.append((at, w))
                case "min" | "max":
                    sign = 1 if fn == "min" else -1
                    r = self.ranked_pairs.index((col, w, agg.window_ms, sign))
                    reduces.append((at, col, w, r, _REDUCERS[fn]))
                case "sum":
                    sums.append((at, sm, w))
                case "mean" | "std":
                    moment = moments.setdefault((sm, w), [-1, -1, sm, sq, w])
                    moment[0 if fn == "mean" else 1] = at
                case "count_distinct":
                    d = self.distinct_pairs.index((col, w, agg.window_ms))
                    distincts.append((at, col, w, d))
                case "zscore":
                    zscores.append((at, col, sm, sq, w))
                case "last":
                    lasts.append((at, col, w))
                case "seconds_since_previous":
                    gaps.append((at, agg.window_ms / 1000.0))
                case _:
                    assert_never(fn)
        return _Plan(
            width=len(self.view.aggregations),
            counts=tuple(counts),
            reduces=tuple(reduces),
            sums=tuple(sums),
            moments=tuple((m[0], m[1], m[2], m[3], m[4]) for m in moments.values()),
            distincts=tuple(distincts),
            zscores=tuple(zscores),
            lasts=tuple(lasts),
            gaps=tuple(gaps),
        )


_REDUCERS: dict[str, _Reduce] = {"min": min, "max": max}


def _getter(sources: tuple[str, ...]) -> Callable[[Transaction], tuple[Any, ...]]:
    """A C-level `tuple(getattr(event, s) for s in sources)`."""
    if len(sources) > 1:
        getter: Callable[[Transaction], tuple[Any, ...]] = attrgetter(*sources)
        return getter
    if sources:
        one = attrgetter(sources[0])
        return lambda event: (one(event),)
    return lambda event: ()


def _rescale(state: WindowState, sm: int, sq: int, by: int) -> None:
    """Raise summed source `sm`'s scale by `2**by`: its prefixes (and squares') shifted."""
    state.scales[sm] += by
    state.sums[sm][:] = [p << by for p in state.sums[sm]]
    if sq >= 0:
        state.squares[sq][:] = [p << 2 * by for p in state.squares[sq]]


def _ratio(numerator: int, denominator: int) -> float:
    """The float nearest `numerator / denominator` (ints: one correctly rounded division).

    `truediv`, not `/`: compiled (mypyc, see setup.py), `/` on two ints converts each to a
    float first, which rounds twice once they pass 2**53.
    """
    try:
        ratio: float = truediv(numerator, denominator)
        return ratio
    except OverflowError:  # beyond the float range, as a float sum would end
        return math.inf if numerator > 0 else -math.inf


def _std(s1: int, s2: int, n: int, scale: int) -> float:
    """Population std of n values whose scaled sum is `s1` and scaled squares sum `s2`.

    `n * s2 - s1**2` is `n**2 * 2**(2 * scale)` times the exact variance: never negative,
    never cancelled.
    """
    spread = n * s2 - s1 * s1
    if spread <= 0:
        return 0.0
    return math.sqrt(_ratio(spread, (n * n) << 2 * scale))


_Busy = TypeVar("_Busy", CountedWindow, RankedWindow)


def _keep_busy(
    windows: dict[int, _Busy],
    k: int,
    kind: type[_Busy],
    column: list[Any],
    lo: int,
    sign: int,
    least: int,
) -> None:
    """Keep window `k` (its events `column[lo:]`) while it holds `least` events or a quarter."""
    held = windows.get(k)
    if held is None:
        if len(column) - lo >= least:
            windows[k] = kind.of(lo, column[lo:], sign)
    elif len(column) - held.lo < least // 4:
        del windows[k]


def _uncount(counts: dict[Any, int], value: Any) -> None:
    left = counts[value] - 1
    if left:
        counts[value] = left
    else:
        del counts[value]


def _adjusted(window: CountedWindow, column: list[Any], lo: int, end: int) -> int:
    """Distinct values of `column[lo:end]`, from the counts of `column[window.lo:]`.

    `lo <= window.lo < end`: the counts less the events after `end`, plus those from `lo`
    to `window.lo` (both few: as many as the event is out of order).
    """
    change: dict[Any, int] = {}
    for value in column[end:]:
        change[value] = change.get(value, 0) - 1
    for value in column[lo : window.lo]:
        change[value] = change.get(value, 0) + 1
    counts = window.counts
    distinct = len(counts)
    for value, delta in change.items():
        had = counts.get(value, 0)
        distinct += (had + delta > 0) - (had > 0)
    return distinct


def _ranked(held: RankedWindow, column: list[Any], lo: int, end: int) -> Any:
    """min or max of `column[lo:end]` (as `held.sign` says) from the heap of `column[held.lo:]`.

    `lo <= held.lo < end`. None for a zero: `min`/`max` of a slice return the first of
    equal values, and 0.0 and -0.0 are equal, so the slice decides which one.
    """
    heap, gone, sign = held.heap, held.gone, held.sign
    newer: dict[Any, int] = {}  # keys of the events after `end`, set aside
    for value in column[end:]:
        key = sign * value
        newer[key] = newer.get(key, 0) + 1
    aside = []
    while heap:
        key = heap[0]
        if gone.get(key):
            heappop(heap)
            _uncount(gone, key)
        elif newer.get(key):
            aside.append(heappop(heap))
            _uncount(newer, key)
        else:
            break
    best = sign * heap[0]
    for key in aside:
        heappush(heap, key)
    earlier = column[lo : held.lo]
    if earlier:
        first = min(earlier) if sign > 0 else max(earlier)
        if (first <= best) if sign > 0 else (first >= best):
            best = first
    return None if best == 0 else best
