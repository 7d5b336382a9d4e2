"""An independent brute-force reference for the feature definition: plain loops, no kernels.

For each event in processing order it scans every earlier *accepted* event of the entity,
so it shares nothing with `schemas.features.kernels` but the documented semantics.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schemas.features import FeatureSet
from schemas.features.definition import Aggregation, FeatureView
from schemas.features.request import RequestKernel
from schemas.records import Transaction


@dataclass
class _Seen:
    events: list[tuple[int, Transaction]] = field(default_factory=list)  # (arrival, event)
    watermark: int | None = None


def _view_values(
    view: FeatureView, seen: _Seen, event: Transaction, arrival: int
) -> tuple[list[float], bool]:
    t = event.event_time
    lateness = int(view.allowed_lateness.total_seconds() * 1000)
    late = seen.watermark is not None and t < seen.watermark - lateness
    watermark = t if seen.watermark is None else max(seen.watermark, t)
    horizon = watermark - view.retention_ms
    # Earlier known events the state still holds, with time <= t, in (time, arrival) order.
    earlier = sorted(
        ((e.event_time, a, e) for a, e in seen.events if horizon < e.event_time <= t),
        key=lambda x: (x[0], x[1]),
    )
    out = [_aggregate(agg, [x[2] for x in earlier], event) for agg in view.aggregations]
    if not late:
        seen.events.append((arrival, event))
        seen.watermark = watermark
    return out, late


def _aggregate(agg: Aggregation, earlier: list[Transaction], event: Transaction) -> float:
    t = event.event_time
    w = agg.window_ms
    in_window_earlier = [e for e in earlier if e.event_time > t - w]
    window = [*in_window_earlier, event]
    values: list[Any] = [getattr(e, agg.source) for e in window] if agg.source else []
    fn = agg.function
    if fn == "count":
        return float(len(window))
    if fn == "sum":
        return float(np.sum(values))
    if fn == "mean":
        return float(np.mean(values))
    if fn == "min":
        return float(min(values))
    if fn == "max":
        return float(max(values))
    if fn == "std":
        return float(np.std(values))
    if fn == "count_distinct":
        return float(len(set(values)))
    if fn == "last":
        return float(values[-2]) if len(values) >= 2 else 0.0
    if fn == "zscore":
        prior = np.array(values[:-1], dtype=float)
        if len(prior) < 2 or float(np.std(prior)) <= 1e-9 * max(1.0, abs(float(prior.mean()))):
            return 0.0
        return float((values[-1] - prior.mean()) / np.std(prior))
    if fn == "seconds_since_previous":
        cap = w / 1000.0
        if not earlier:
            return cap
        return min((t - earlier[-1].event_time) / 1000.0, cap)
    raise AssertionError(fn)


def reference_vectors(
    feature_set: FeatureSet, events: list[Transaction]
) -> list[tuple[tuple[float, ...], bool]]:
    """Feature values and late flag of each event, processed in list order."""
    request = RequestKernel(feature_set.request_features)
    seen: list[dict[str, _Seen]] = [defaultdict(_Seen) for _ in feature_set.views]
    out = []
    for arrival, event in enumerate(events):
        values = list(request.compute(event))
        late = False
        for view, states in zip(feature_set.views, seen, strict=True):
            key = getattr(event, view.entity.key_field)
            view_values, view_late = _view_values(view, states[key], event, arrival)
            values.extend(view_values)
            late = late or view_late
        out.append((tuple(values), late))
    return out


def close(a: float, b: float) -> bool:
    """Equal up to float summation order (relative 1e-9, absolute 1e-6 for spreads)."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
