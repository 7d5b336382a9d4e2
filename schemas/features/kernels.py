"""Window kernels: per-entity state and the computation of a view's features for one event.

Pure Python, no I/O, importable without Bytewax. The state of one entity is its known
events sorted by event time (parallel lists, so window slices are C-level `sum`/`min`/
`max`/`set` calls). An event is *late* when its time is more than the view's allowed
lateness behind the newest event time the entity has seen: a late event gets its vector
(computed from the retained state plus itself) but does not enter the state.

Feature values are compared bit for bit across Redis, Delta and backfills, so the
arithmetic is part of the contract. Over the window slice `s` (oldest first, the event
last): `float(len(s))`, `float(sum(s))`, `float(min(s))`, `float(max(s))`,
`float(sum(s)) / len(s)`, `float(len(set(s)))` and the std of `_std`; `zscore` and `last`
read the earlier events `s[:-1]`. A faster kernel must keep these expressions over the same slices:
float `sum` depends on order and on the Python version (3.12 compensates), so running sums
would not reproduce it.

For speed, `ViewKernel` compiles its view to a `_Plan` once. Per event, each window's
start is found once (longest window first, each start bounding the next), each (source,
window) slice is cut once and shared (sum and max, mean and std), and the aggregations run
from per-function tables of output positions rather than one Python call each.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, assert_never

from schemas.features.definition import AggFunction, FeatureView
from schemas.records import Transaction

__all__ = ["ViewKernel", "WindowState"]

_EVICT_BATCH = 256


@dataclass(slots=True)
class WindowState:
    """Known events of one entity, sorted by event time, and the entity's watermark."""

    times: list[int] = field(default_factory=list)
    columns: list[list[Any]] = field(default_factory=list)
    squares: list[list[float]] = field(default_factory=list)
    max_time: int | None = None


_Reduce = Callable[[list[Any]], Any]


@dataclass(frozen=True, slots=True)
class _Plan:
    """A view's aggregations as tables, one per function; `at` is the output position.

    `w` indexes the view's windows longest first, `col` its sources, `sq` its squared
    sources, and `k` the (source, window) slices cut once per event from `slices`.
    """

    width: int
    slices: tuple[tuple[int, int], ...]  # (col, w): columns[col][lo_w : i + 1]
    counts: tuple[tuple[int, int], ...]  # (at, w)
    reduces: tuple[tuple[int, int, _Reduce], ...]  # (at, k, sum | min | max)
    distincts: tuple[tuple[int, int, int], ...]  # (at, col, w)
    moments: tuple[tuple[int, int, int, int, int], ...]  # (mean at | -1, std at | -1, k, sq, w)
    zscores: tuple[tuple[int, int, int, int], ...]  # (at, col, sq, w)
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
        squared = {a.source for a in view.aggregations if a.function in {"std", "zscore"}}
        self.squared: tuple[int, ...] = tuple(i for i, s in enumerate(self.sources) if s in squared)
        self.windows: tuple[int, ...] = tuple(sorted({a.window_ms for a in view.aggregations}))
        self._spans = self.windows[::-1]
        self._squares_of: tuple[tuple[int, int], ...] = tuple(enumerate(self.squared))
        self._plan = self._compile()
        self._extract = _getter(self.sources)

    def new_state(self) -> WindowState:
        """An empty state with one column per source field."""
        return WindowState(
            columns=[[] for _ in self.sources],
            squares=[[] for _ in self.squared],
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
        squares = state.squares
        max_time = state.max_time
        if max_time is None:
            late = False
            watermark = event_time
        else:
            late = event_time < max_time - self.lateness_ms
            watermark = max_time if max_time >= event_time else event_time

        if not times or event_time >= times[-1]:  # in order: the event goes last
            i = len(times)
            times.append(event_time)
            for column, value in zip(columns, values, strict=True):
                column.append(value)
            for slot, source in self._squares_of:
                v = float(values[source])
                squares[slot].append(v * v)
        else:  # after the known events of the same time, as `bisect_right` places it
            i = bisect_right(times, event_time)
            times.insert(i, event_time)
            for column, value in zip(columns, values, strict=True):
                column.insert(i, value)
            for slot, source in self._squares_of:
                v = float(values[source])
                squares[slot].insert(i, v * v)

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
        result = self._evaluate(times, columns, squares, los, i, horizon, event_time)

        if late:
            del times[i]
            for column in columns:
                del column[i]
            for squared in squares:
                del squared[i]
        else:
            state.max_time = watermark
            if horizon >= _EVICT_BATCH or (horizon and horizon * 4 >= len(times)):
                del times[:horizon]
                for column in columns:
                    del column[:horizon]
                for squared in squares:
                    del squared[:horizon]
        return result, late

    def _evaluate(
        self,
        times: list[int],
        columns: list[list[Any]],
        squares: list[list[float]],
        los: list[int],
        i: int,
        horizon: int,
        t: int,
    ) -> tuple[float, ...]:
        """Every aggregation of the event at index `i`, in the view's order."""
        plan = self._plan
        end = i + 1
        out = [0.0] * plan.width
        for at, w in plan.counts:
            out[at] = float(end - los[w])
        if plan.slices:
            windowed = []
            for col, w in plan.slices:
                windowed.append(columns[col][los[w] : end])
            for at, k, reduce in plan.reduces:
                out[at] = float(reduce(windowed[k]))
            for mean_at, std_at, k, sq, w in plan.moments:
                lo = los[w]
                n = end - lo
                mean = float(sum(windowed[k])) / n
                if mean_at >= 0:
                    out[mean_at] = mean
                if std_at >= 0:
                    out[std_at] = _std(windowed[k], squares[sq][lo:end], n, mean)
        for at, col, w in plan.distincts:
            lo = los[w]
            out[at] = float(len(set(columns[col][lo:end]))) if lo < i else 1.0
        for at, col, sq, w in plan.zscores:
            lo = los[w]
            n = i - lo
            if n < 2:
                continue
            prior = columns[col][lo:i]
            mean = float(sum(prior)) / n
            sd = _std(prior, squares[sq][lo:i], n, mean)
            scale = abs(mean)
            if sd <= 1e-9 * (scale if scale > 1.0 else 1.0):  # max(1.0, |mean|)
                continue
            out[at] = (float(columns[col][i]) - mean) / sd
        for at, col, w in plan.lasts:
            if i > los[w]:
                out[at] = float(columns[col][i - 1])
        for at, cap_s in plan.gaps:
            if i > horizon:
                gap = (t - times[i - 1]) / 1000.0
                out[at] = gap if gap < cap_s else cap_s
            else:
                out[at] = cap_s
        return tuple(out)

    def _compile(self) -> _Plan:
        """The view's aggregations as function tables (see `_Plan`)."""
        slices: list[tuple[int, int]] = []
        counts: list[tuple[int, int]] = []
        reduces: list[tuple[int, int, _Reduce]] = []
        distincts: list[tuple[int, int, int]] = []
        moments: dict[int, list[int]] = {}  # k -> [mean at, std at, k, sq, w]
        zscores: list[tuple[int, int, int, int]] = []
        lasts: list[tuple[int, int, int]] = []
        gaps: list[tuple[int, float]] = []

        def slice_of(col: int, w: int) -> int:
            if (col, w) not in slices:
                slices.append((col, w))
            return slices.index((col, w))

        for at, agg in enumerate(self.view.aggregations):
            w = self._spans.index(agg.window_ms)
            col = self.sources.index(agg.source) if agg.source is not None else -1
            sq = self.squared.index(col) if col in self.squared else -1
            fn: AggFunction = agg.function
            match fn:
                case "count":
                    counts.append((at, w))
                case "sum" | "min" | "max":
                    reduces.append((at, slice_of(col, w), _REDUCERS[fn]))
                case "count_distinct":
                    distincts.append((at, col, w))
                case "mean" | "std":
                    k = slice_of(col, w)
                    moment = moments.setdefault(k, [-1, -1, k, sq, w])
                    moment[0 if fn == "mean" else 1] = at
                case "zscore":
                    zscores.append((at, col, sq, w))
                case "last":
                    lasts.append((at, col, w))
                case "seconds_since_previous":
                    gaps.append((at, agg.window_ms / 1000.0))
                case _:
                    assert_never(fn)
        return _Plan(
            width=len(self.view.aggregations),
            slices=tuple(slices),
            counts=tuple(counts),
            reduces=tuple(reduces),
            distincts=tuple(distincts),
            moments=tuple((m[0], m[1], m[2], m[3], m[4]) for m in moments.values()),
            zscores=tuple(zscores),
            lasts=tuple(lasts),
            gaps=tuple(gaps),
        )


_REDUCERS: dict[str, _Reduce] = {"sum": sum, "min": min, "max": max}


def _getter(sources: tuple[str, ...]) -> Callable[[Transaction], tuple[Any, ...]]:
    """A C-level `tuple(getattr(event, s) for s in sources)`."""
    if len(sources) > 1:
        getter: Callable[[Transaction], tuple[Any, ...]] = attrgetter(*sources)
        return getter
    if sources:
        one = attrgetter(sources[0])
        return lambda event: (one(event),)
    return lambda event: ()


def _std(values: list[Any], squares: list[float], n: int, mean: float) -> float:
    """Population std of `values` (n of them, mean `mean`) from their squares.

    Two-pass when the sum of squares has cancelled.
    """
    if n == 1:  # what the formula below gives for any single value
        return 0.0
    var = sum(squares) / n - mean * mean
    if var < 1e-4 * mean * mean:  # sum-of-squares lost its digits: recompute exactly
        var = sum((float(x) - mean) ** 2 for x in values) / n
    return math.sqrt(var) if var > 0.0 else 0.0
