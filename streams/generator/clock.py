"""Simulated event time: hour windows, the daily rhythm, and late (out-of-order) delivery.

Event time starts at `START_MS` (2026-01-01T00:00Z) for every seed and advances one hour
window at a time, as fast as the generator runs; it never reads the wall clock. Traffic
follows a daily rhythm in UTC (busy afternoons, quiet nights).

Out-of-order delivery: a `fraction` of events is produced later than its event-time order,
by a delay drawn uniformly from [1 s, `max_delay_ms`] of event time (default bound 2
minutes, well inside the feature pipeline's 5-minute allowed lateness). So an event is
never produced more than `max_delay_ms` after an event with a later event time.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "DAY_MS",
    "HOUR_WEIGHTS",
    "START_MS",
    "WINDOW_MS",
    "day_of",
    "delivery_delays",
    "event_times",
    "hour_weight",
    "window_start",
]

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
WINDOW_MS = 3_600_000
DAY_MS = 86_400_000
_MIN_DELAY_MS = 1_000

_RAW = (0.25, 0.15, 0.1, 0.1, 0.12, 0.2, 0.45, 0.8, 1.1, 1.25, 1.35, 1.45)
_RAW_PM = (1.55, 1.5, 1.4, 1.4, 1.45, 1.5, 1.5, 1.4, 1.25, 1.0, 0.75, 0.45)
HOUR_WEIGHTS: tuple[float, ...] = tuple(
    24 * w / (sum(_RAW) + sum(_RAW_PM)) for w in (*_RAW, *_RAW_PM)
)  # mean 1.0


def window_start(start_ms: int, window: int) -> int:
    """Event time (epoch ms) at which hour window `window` begins."""
    return start_ms + window * WINDOW_MS


def day_of(start_ms: int, time_ms: int) -> int:
    """Day number of `time_ms`, counted from `start_ms`."""
    return (time_ms - start_ms) // DAY_MS


def hour_weight(time_ms: int) -> float:
    """Relative traffic at UTC hour of `time_ms` (the weights average 1.0 over a day)."""
    return HOUR_WEIGHTS[(time_ms // 3_600_000) % 24]


def event_times(rng: np.random.Generator, n: int, start: int, end: int) -> npt.NDArray[np.int64]:
    """`n` sorted event times uniform in [`start`, `end`): a Poisson process given its count."""
    return np.sort(rng.integers(start, end, size=n, dtype=np.int64))


def delivery_delays(
    rng: np.random.Generator, n: int, *, fraction: float, max_delay_ms: int
) -> npt.NDArray[np.int64]:
    """Per-event delivery delay in ms: 0, or for `fraction` of events U[1 s, `max_delay_ms`]."""
    late = rng.random(n) < fraction
    delays = rng.integers(_MIN_DELAY_MS, max(max_delay_ms, _MIN_DELAY_MS) + 1, size=n)
    return np.where(late, delays, 0).astype(np.int64)
