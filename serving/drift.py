"""Population stability (PSI) of features and score over tumbling event-time windows.

Pure numpy, no I/O. A model's drift reference (`offline.reference`, format
``skewless-reference/1``) holds, per feature and for the score, bin `edges` and the
training `proportions`. Live values are binned exactly as the reference was built: bin
``i`` holds ``edges[i] < v <= edges[i+1]``, i.e. ``np.searchsorted(edges, v, "left") - 1``
(clipped to the bins; NaN falls in the last bin).

PSI of one window is ``Σ (a - e) · ln(a / e)`` over bins, where ``a`` are the window's
proportions and ``e`` the reference's, both floored at `eps` so an empty bin is finite.

`WindowedDrift` accumulates bin counts of one model version in tumbling windows
``[k·W, (k+1)·W)`` of event time. Events come from source partitions that progress
independently (a Kafka topic's partitions are read at their own pace), so the watermark
is the *smallest* over the source partitions of the largest event time seen in each,
minus `lateness_ms`; with `partitions` given, none exists until each of them has been
seen (an idle partition holds windows open). A window closes once the watermark reaches
its end, and then yields one
`DriftMetric` per feature plus one for the score (``feature == "__score__"``) — unless it
holds fewer than `min_count` events (a tiny window would alarm on noise). An event whose
window has already closed is counted in `late_events` and not binned. Windows close only
by event time: the last, still-open window of a stream is not reported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from serving.errors import ServingError

__all__ = [
    "SCORE_SERIES",
    "DriftConfig",
    "DriftLevel",
    "DriftMetric",
    "DriftReference",
    "WindowedDrift",
    "bin_counts",
    "drift_level",
    "psi",
]

SCORE_SERIES = "__score__"
DriftLevel = Literal["ok", "warn", "alert"]

_Float64 = npt.NDArray[np.float64]


def psi(expected_props: npt.ArrayLike, actual_counts: npt.ArrayLike, eps: float = 1e-4) -> float:
    """The population stability index of `actual_counts` against `expected_props`.

    Both have one entry per bin; proportions are floored at `eps` before the log.
    """
    expected = np.asarray(expected_props, dtype=np.float64)
    counts = np.asarray(actual_counts, dtype=np.float64)
    if expected.shape != counts.shape or expected.ndim != 1:
        msg = (
            f"psi: expected proportions and counts of the same 1-d shape, got "
            f"{list(expected.shape)} and {list(counts.shape)}"
        )
        raise ServingError(msg)
    total = counts.sum()
    if total <= 0:
        msg = f"psi: needs at least one observation, got counts {counts.tolist()!r}"
        raise ServingError(msg)
    actual = np.maximum(counts / total, eps)
    expected = np.maximum(expected, eps)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def drift_level(value: float, *, warn: float = 0.1, alert: float = 0.25) -> DriftLevel:
    """`alert` at or above `alert`, `warn` at or above `warn`, else `ok`."""
    if value >= alert:
        return "alert"
    if value >= warn:
        return "warn"
    return "ok"


def bin_counts(values: npt.ArrayLike, edges: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Counts per reference bin of `values` (bin i: `edges[i] < v <= edges[i+1]`)."""
    edge_array = np.asarray(edges, dtype=np.float64)
    nbins = len(edge_array) - 1
    idx = np.clip(np.searchsorted(edge_array, np.asarray(values), side="left") - 1, 0, nbins - 1)
    return np.bincount(idx, minlength=nbins).astype(np.int64)


@dataclass(frozen=True, slots=True)
class DriftConfig:
    """Window length and lateness (event-time ms), level thresholds, minimum count, eps."""

    window_ms: int = 3_600_000
    lateness_ms: int = 0
    warn: float = 0.1
    alert: float = 0.25
    min_count: int = 100
    eps: float = 1e-4

    def __post_init__(self) -> None:
        problems = []
        if self.window_ms <= 0:
            problems.append(f"window_ms: expected > 0, got {self.window_ms!r}")
        if self.lateness_ms < 0:
            problems.append(f"lateness_ms: expected >= 0, got {self.lateness_ms!r}")
        if not (math.isfinite(self.warn) and 0 < self.warn <= self.alert):
            problems.append(
                f"thresholds: expected 0 < warn <= alert, got {self.warn!r}, {self.alert!r}"
            )
        if self.min_count < 1:
            problems.append(f"min_count: expected >= 1, got {self.min_count!r}")
        if not 0 < self.eps < 1:
            problems.append(f"eps: expected in (0, 1), got {self.eps!r}")
        if problems:
            msg = "drift config: " + "; ".join(problems)
            raise ServingError(msg)


@dataclass(frozen=True, slots=True)
class DriftMetric:
    """PSI of one feature (or the score) of one model version over one window.

    Fields mirror `DriftMetric.avsc`; `window_start` is inclusive, `window_end` exclusive.
    """

    model_name: str
    model_version: str
    feature: str
    window_start: int  # epoch ms
    window_end: int  # epoch ms
    psi: float
    level: DriftLevel
    count: int

    def to_avro(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "feature": self.feature,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "psi": self.psi,
            "level": self.level,
            "count": self.count,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any]) -> DriftMetric:
        return cls(
            model_name=str(data["model_name"]),
            model_version=str(data["model_version"]),
            feature=str(data["feature"]),
            window_start=int(data["window_start"]),
            window_end=int(data["window_end"]),
            psi=float(data["psi"]),
            level=data["level"],
            count=int(data["count"]),
        )


@dataclass(frozen=True, slots=True, eq=False)
class DriftReference:
    """A model's reference bins, ready for binning: `series` are features then the score.

    `columns[i]` is the input column of feature series i (the score series has none).
    """

    model_name: str
    model_version: str
    series: tuple[str, ...]
    columns: tuple[int, ...]
    edges: tuple[_Float64, ...]
    proportions: tuple[_Float64, ...]

    @property
    def max_bins(self) -> int:
        return max(len(p) for p in self.proportions)

    @classmethod
    def from_json(
        cls,
        reference: Mapping[str, Any],
        feature_names: Sequence[str],
        *,
        model_name: str,
        model_version: str,
    ) -> DriftReference | None:
        """The reference of a model whose input columns are `feature_names`; None if empty.

        Features the reference lacks are not monitored; a malformed entry is a
        `ServingError` naming the model, version and feature.
        """
        features = reference.get("features") or {}
        where = f"model {model_name!r} version {model_version!r}: drift reference"
        series: list[str] = []
        columns: list[int] = []
        edges: list[_Float64] = []
        props: list[_Float64] = []
        wanted = [(name, j) for j, name in enumerate(feature_names) if name in features]
        wanted += [(SCORE_SERIES, -1)] if reference.get("score") else []
        for name, column in wanted:
            entry = reference["score"] if column < 0 else features[name]
            e, p = _parse_bins(entry, f"{where} {name!r}")
            series.append(name)
            columns.append(column)
            edges.append(e)
            props.append(p)
        if not series:
            return None
        return cls(
            model_name, model_version, tuple(series), tuple(columns), tuple(edges), tuple(props)
        )

    def bin_indices(self, x: npt.ArrayLike, scores: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Bin index [n, series] of each event: features from `x` [n, d], then the score."""
        matrix = np.asarray(x, dtype=np.float64)
        score = np.asarray(scores, dtype=np.float64).reshape(-1)
        out = np.empty((score.shape[0], len(self.series)), dtype=np.int64)
        for s, (column, edges) in enumerate(zip(self.columns, self.edges, strict=True)):
            values = score if column < 0 else matrix[:, column]
            idx = np.searchsorted(edges, values, side="left") - 1
            out[:, s] = np.clip(idx, 0, len(edges) - 2)
        return out


def _parse_bins(entry: Any, where: str) -> tuple[_Float64, _Float64]:
    try:
        edges = np.asarray(entry["edges"], dtype=np.float64)
        props = np.asarray(entry["proportions"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"{where}: expected {{'edges': [...], 'proportions': [...]}}, got {entry!r:.200}"
        raise ServingError(msg) from exc
    if edges.ndim != 1 or props.ndim != 1 or len(edges) != len(props) + 1 or len(props) < 1:
        msg = (
            f"{where}: expected len(edges) == len(proportions) + 1, "
            f"got {len(edges)} and {len(props)}"
        )
        raise ServingError(msg)
    if np.any(np.diff(edges) < 0):
        msg = f"{where}: edges are not sorted: {edges.tolist()!r:.200}"
        raise ServingError(msg)
    return edges, props


class WindowedDrift:
    """Bin counts of one model version in tumbling event-time windows (module docstring).

    `partitions` are the source partitions the watermark waits for (empty: those seen).
    `state()` is a plain dict (ints and lists) for checkpoints; pass it back as `state`.
    """

    def __init__(
        self,
        reference: DriftReference,
        config: DriftConfig,
        *,
        partitions: Sequence[int] = (),
        state: Mapping[str, Any] | None = None,
    ) -> None:
        self.reference = reference
        self.config = config
        self._shape = (len(reference.series), reference.max_bins)
        self._offsets = np.arange(self._shape[0], dtype=np.int64) * self._shape[1]
        self._windows: dict[int, npt.NDArray[np.int64]] = {}
        self._counts: dict[int, int] = {}
        self._expected = frozenset(partitions)
        self._progress: dict[int, int] = {}  # source partition -> largest event time seen
        self.late_events = 0
        self.small_windows = 0
        if state:
            self._progress = {int(p): int(t) for p, t in state["progress"]}
            self.late_events = int(state["late_events"])
            self.small_windows = int(state["small_windows"])
            for start, count, bins in state["windows"]:
                self._windows[int(start)] = np.asarray(bins, dtype=np.int64).reshape(self._shape)
                self._counts[int(start)] = int(count)

    def state(self) -> dict[str, Any]:
        """The open windows, watermark and counters, as plain Python values."""
        return {
            "progress": sorted(self._progress.items()),
            "late_events": self.late_events,
            "small_windows": self.small_windows,
            "windows": [
                (start, self._counts[start], self._windows[start].ravel().tolist())
                for start in sorted(self._windows)
            ],
        }

    @property
    def watermark(self) -> int | None:
        """Event time up to which every window is complete (None until one exists)."""
        if not self._progress or not self._expected <= self._progress.keys():
            return None
        return min(self._progress.values()) - self.config.lateness_ms

    @property
    def open_windows(self) -> list[int]:
        """Start times of the windows still accumulating."""
        return sorted(self._windows)

    def add(
        self,
        event_times: npt.ArrayLike,
        x: npt.ArrayLike,
        scores: npt.ArrayLike,
        partitions: npt.ArrayLike | None = None,
    ) -> list[DriftMetric]:
        """Count a batch; return the metrics of the windows it closes.

        `event_times` [n], `x` [n, d] (the model's input columns), `scores` [n] and the
        events' source `partitions` [n] (None: all from partition 0). Lateness is judged
        against the watermark as it stood before the batch.
        """
        times = np.asarray(event_times, dtype=np.int64).reshape(-1)
        if times.size:
            size = self.config.window_ms
            starts = (times // size) * size
            watermark = self.watermark
            keep = np.ones(times.shape[0], dtype=np.bool_)
            if watermark is not None:
                keep = starts + size > watermark
                self.late_events += int((~keep).sum())
            if keep.any():
                idx = self.reference.bin_indices(np.asarray(x)[keep], np.asarray(scores)[keep])
                self._count(starts[keep], idx + self._offsets)
            self._advance(times, partitions)
        return self._close()

    def _advance(self, times: npt.NDArray[np.int64], partitions: npt.ArrayLike | None) -> None:
        if partitions is None:
            self._progress[0] = max(self._progress.get(0, int(times[0])), int(times.max()))
            return
        parts = np.asarray(partitions, dtype=np.int64).reshape(-1)
        for part in np.unique(parts).tolist():
            top = int(times[parts == part].max())
            self._progress[part] = max(self._progress.get(part, top), top)

    def _count(self, starts: npt.NDArray[np.int64], flat: npt.NDArray[np.int64]) -> None:
        cells = self._shape[0] * self._shape[1]
        for start in np.unique(starts).tolist():
            rows = flat[starts == start]
            counts = np.bincount(rows.ravel(), minlength=cells).reshape(self._shape)
            if start in self._windows:
                self._windows[start] += counts
                self._counts[start] += rows.shape[0]
            else:
                self._windows[start] = counts
                self._counts[start] = rows.shape[0]

    def _close(self) -> list[DriftMetric]:
        out: list[DriftMetric] = []
        watermark = self.watermark
        if watermark is None:
            return out
        size = self.config.window_ms
        for start in sorted(s for s in self._windows if s + size <= watermark):
            bins, count = self._windows.pop(start), self._counts.pop(start)
            if count < self.config.min_count:
                self.small_windows += 1
                continue
            out.extend(self._metrics(start, bins, count))
        return out

    def _metrics(self, start: int, bins: npt.NDArray[np.int64], count: int) -> list[DriftMetric]:
        ref, cfg = self.reference, self.config
        out = []
        for s, name in enumerate(ref.series):
            expected = ref.proportions[s]
            value = psi(expected, bins[s, : len(expected)], cfg.eps)
            out.append(
                DriftMetric(
                    model_name=ref.model_name,
                    model_version=ref.model_version,
                    feature=name,
                    window_start=start,
                    window_end=start + cfg.window_ms,
                    psi=value,
                    level=drift_level(value, warn=cfg.warn, alert=cfg.alert),
                    count=count,
                )
            )
        return out
