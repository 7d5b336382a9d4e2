"""Window kernels: per-entity state and the computation of a view's features for one event.

Pure Python, no I/O, importable without Bytewax. The state of one entity is its known
events sorted by event time (parallel lists, so window slices are C-level `sum`/`min`/
`max`/`set` calls). An event is *late* when its time is more than the view's allowed
lateness behind the newest event time the entity has seen: a late event gets its vector
(computed from the retained state plus itself) but does not enter the state.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, assert_never

from schemas.features.definition import Aggregation, FeatureView
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


_Kernel = Callable[[WindowState, int, int, int, int], float]


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
        self._plan: tuple[tuple[int, _Kernel], ...] = tuple(
            (self.windows.index(a.window_ms), self._compile(a)) for a in view.aggregations
        )

    def new_state(self) -> WindowState:
        """An empty state with one column per source field."""
        return WindowState(
            columns=[[] for _ in self.sources],
            squares=[[] for _ in self.squared],
        )

    def extract(self, event: Transaction) -> tuple[Any, ...]:
        """The source values this view needs from `event`, in `sources` order."""
        return tuple(getattr(event, s) for s in self.sources)

    def apply(
        self, state: WindowState, event_time: int, values: tuple[Any, ...]
    ) -> tuple[tuple[float, ...], bool]:
        """Features of the event at `event_time` (window ends at it, inclusive) and lateness.

        On time, the event enters the state; late, it is computed then removed again.
        """
        late = state.max_time is not None and event_time < state.max_time - self.lateness_ms
        times = state.times
        i = bisect_right(times, event_time)
        times.insert(i, event_time)
        for column, value in zip(state.columns, values, strict=True):
            column.insert(i, value)
        for slot, source_index in enumerate(self.squared):
            v = float(values[source_index])
            state.squares[slot].insert(i, v * v)

        watermark = event_time if state.max_time is None else max(state.max_time, event_time)
        horizon = bisect_right(times, watermark - self.retention_ms)
        # The event itself is always in its window, even when late beyond retention.
        los = [min(max(bisect_right(times, event_time - w), horizon), i) for w in self.windows]
        result = tuple(kernel(state, los[w], i, horizon, event_time) for w, kernel in self._plan)

        if late:
            del times[i]
            for column in state.columns:
                del column[i]
            for squares in state.squares:
                del squares[i]
        else:
            state.max_time = watermark
            if horizon >= _EVICT_BATCH or (horizon and horizon * 4 >= len(times)):
                del times[:horizon]
                for column in state.columns:
                    del column[:horizon]
                for squares in state.squares:
                    del squares[:horizon]
        return result, late

    def _compile(self, agg: Aggregation) -> _Kernel:
        col = self.sources.index(agg.source) if agg.source is not None else -1
        sq = self.squared.index(col) if col in self.squared else -1
        cap_s = agg.window_ms / 1000.0
        fn = agg.function
        if fn == "count":
            return lambda s, lo, i, h, t: float(i + 1 - lo)
        if fn == "sum":
            return lambda s, lo, i, h, t: float(sum(s.columns[col][lo : i + 1]))
        if fn == "mean":
            return lambda s, lo, i, h, t: float(sum(s.columns[col][lo : i + 1])) / (i + 1 - lo)
        if fn == "min":
            return lambda s, lo, i, h, t: float(min(s.columns[col][lo : i + 1]))
        if fn == "max":
            return lambda s, lo, i, h, t: float(max(s.columns[col][lo : i + 1]))
        if fn == "count_distinct":
            return lambda s, lo, i, h, t: float(len(set(s.columns[col][lo : i + 1])))
        if fn == "std":

            def std(s: WindowState, lo: int, i: int, h: int, t: int) -> float:
                return _std(s.columns[col], s.squares[sq], lo, i + 1)

            return std
        if fn == "zscore":

            def zscore(s: WindowState, lo: int, i: int, h: int, t: int) -> float:
                n = i - lo
                if n < 2:
                    return 0.0
                mean = float(sum(s.columns[col][lo:i])) / n
                sd = _std(s.columns[col], s.squares[sq], lo, i)
                if sd <= 1e-9 * max(1.0, abs(mean)):
                    return 0.0
                return (float(s.columns[col][i]) - mean) / sd

            return zscore
        if fn == "last":
            return lambda s, lo, i, h, t: float(s.columns[col][i - 1]) if i > lo else 0.0
        if fn == "seconds_since_previous":

            def since(s: WindowState, lo: int, i: int, h: int, t: int) -> float:
                if i <= h:
                    return cap_s
                return min((t - s.times[i - 1]) / 1000.0, cap_s)

            return since
        assert_never(fn)


def _std(values: list[Any], squares: list[float], lo: int, hi: int) -> float:
    """Population std of values[lo:hi] from running squares; two-pass when they cancel."""
    n = hi - lo
    mean = float(sum(values[lo:hi])) / n
    var = sum(squares[lo:hi]) / n - mean * mean
    if var < 1e-4 * mean * mean:  # sum-of-squares lost its digits: recompute exactly
        var = sum((float(x) - mean) ** 2 for x in values[lo:hi]) / n
    return math.sqrt(var) if var > 0.0 else 0.0
