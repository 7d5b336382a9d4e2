"""Drift: PSI against an independent numpy computation, windows, levels, generator drift."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offline.reference import reference_bins
from schemas.features import CompiledFeatureSet, LocalEngine
from schemas.features.fraud import FRAUD_FEATURES
from schemas.records import Transaction
from serving.drift import (
    SCORE_SERIES,
    DriftConfig,
    DriftMetric,
    DriftReference,
    WindowedDrift,
    bin_counts,
    drift_level,
    psi,
)
from serving.errors import ServingError
from streams.generator import Drift, World, WorldConfig

HOUR = 3_600_000
DAY = 24 * HOUR
NAMES = ["a", "b", "flag"]


def _independent_psi(
    edges: Sequence[float], props: Sequence[float], values: npt.NDArray[Any], eps: float
) -> float:
    """PSI by explicit masks `edges[i] < v <= edges[i+1]` (no searchsorted), floored at eps."""
    counts = np.array(
        [np.sum((values > lo) & (values <= hi)) for lo, hi in itertools.pairwise(edges)],
        dtype=np.float64,
    )
    actual = np.maximum(counts / counts.sum(), eps)
    expected = np.maximum(np.asarray(props, dtype=np.float64), eps)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _data(
    n: int, seed: int, shift: float = 0.0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.normal(shift, 1.0, n),
            rng.lognormal(0.0, 1.0 + shift, n),
            (rng.random(n) < 0.2 + shift / 4).astype(np.float64),
        ]
    )
    scores = (1 / (1 + np.exp(-x[:, 0]))).astype(np.float32)
    return x, scores


def _reference(seed: int = 1) -> DriftReference:
    x, scores = _data(5_000, seed)
    ref = DriftReference.from_json(
        reference_bins(x, scores, NAMES), NAMES, model_name="m", model_version="3"
    )
    assert ref is not None
    return ref


def test_psi_equals_an_independent_numpy_computation_on_the_same_windows() -> None:
    ref_json = reference_bins(*_data(5_000, 1), NAMES)
    ref = DriftReference.from_json(ref_json, NAMES, model_name="m", model_version="3")
    assert ref is not None
    x, scores = _data(6_000, 2, shift=0.3)
    rng = np.random.default_rng(3)
    times = np.sort(rng.integers(0, 5 * HOUR, 6_000)) + 10 * DAY
    config = DriftConfig(window_ms=HOUR, min_count=10, eps=1e-4)
    drift = WindowedDrift(ref, config)
    out: list[DriftMetric] = []
    for lo in range(0, 6_000, 700):  # arbitrary batches
        out += drift.add(times[lo : lo + 700], x[lo : lo + 700], scores[lo : lo + 700])

    starts = sorted({m.window_start for m in out})
    assert starts == [10 * DAY + k * HOUR for k in range(4)]  # the fifth is still open
    assert drift.open_windows == [10 * DAY + 4 * HOUR]
    assert len(out) == 4 * (len(NAMES) + 1)
    for metric in out:
        in_window = (times >= metric.window_start) & (times < metric.window_end)
        if metric.feature == SCORE_SERIES:
            values, entry = scores[in_window].astype(np.float64), ref_json["score"]
        else:
            values = x[in_window, NAMES.index(metric.feature)]
            entry = ref_json["features"][metric.feature]
        expected = _independent_psi(entry["edges"], entry["proportions"], values, 1e-4)
        assert metric.psi == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert metric.count == int(in_window.sum())
        assert metric.window_end - metric.window_start == HOUR
        assert (metric.model_name, metric.model_version) == ("m", "3")


def test_psi_is_zero_for_the_reference_itself_and_floors_empty_bins() -> None:
    props = np.array([0.25, 0.25, 0.5])
    assert psi(props, np.array([25, 25, 50])) == pytest.approx(0.0, abs=1e-15)
    with_empty = psi(props, np.array([0, 50, 50]), eps=1e-4)
    assert np.isfinite(with_empty)
    assert with_empty == pytest.approx(
        (1e-4 - 0.25) * np.log(1e-4 / 0.25) + 0.25 * np.log(2) + 0.0, rel=1e-12
    )
    with pytest.raises(ServingError, match="same 1-d shape"):
        psi(props, np.array([1, 2]))
    with pytest.raises(ServingError, match="at least one observation"):
        psi(props, np.zeros(3))


def test_bins_follow_the_reference_rule_left_open_right_closed() -> None:
    edges = [-np.inf, 0.0, 1.0, np.inf]
    assert bin_counts([-1.0, 0.0, 0.5, 1.0, 1.5], edges).tolist() == [2, 2, 1]


def test_levels_use_the_configured_thresholds() -> None:
    assert [drift_level(v) for v in (0.05, 0.1, 0.2, 0.25, 3.0)] == [
        "ok", "warn", "warn", "alert", "alert",
    ]  # fmt: skip
    assert drift_level(0.2, warn=0.05, alert=0.15) == "alert"
    with pytest.raises(ServingError, match="warn <= alert"):
        DriftConfig(warn=0.3, alert=0.2)


def test_small_windows_are_not_reported_and_late_events_are_counted_not_binned() -> None:
    ref = _reference()
    x, scores = _data(300, 4)
    drift = WindowedDrift(ref, DriftConfig(window_ms=HOUR, min_count=50))
    # Window 0 gets 20 events (too few), window 1 gets 200.
    assert drift.add(np.full(20, 5), x[:20], scores[:20]) == []
    closed = drift.add(np.full(200, HOUR + 5), x[20:220], scores[20:220])
    assert closed == []
    assert drift.small_windows == 1
    # Late: window 0 is closed, these are counted and dropped.
    assert drift.add(np.full(30, 10), x[220:250], scores[220:250]) == []
    assert drift.late_events == 30
    out = drift.add(np.array([2 * HOUR]), x[250:251], scores[250:251])
    assert {m.count for m in out} == {200}
    assert {m.window_start for m in out} == {HOUR}


def test_allowed_lateness_keeps_windows_open() -> None:
    ref = _reference()
    x, scores = _data(40, 5)
    drift = WindowedDrift(ref, DriftConfig(window_ms=HOUR, lateness_ms=10 * 60_000, min_count=1))
    assert drift.add(np.full(10, HOUR + 60_000), x[:10], scores[:10]) == []  # watermark < HOUR
    assert drift.add(np.full(10, 30 * 60_000), x[10:20], scores[10:20]) == []  # still accepted
    out = drift.add(np.full(10, HOUR + 11 * 60_000), x[20:30], scores[20:30])
    assert {m.count for m in out} == {10}
    assert drift.late_events == 0


def test_state_round_trips_through_plain_values() -> None:
    ref = _reference()
    x, scores = _data(2_000, 6, shift=0.5)
    times = np.arange(2_000, dtype=np.int64) * (3 * HOUR // 2_000)
    config = DriftConfig(window_ms=HOUR, min_count=1)
    whole = WindowedDrift(ref, config).add(times, x, scores)
    first = WindowedDrift(ref, config)
    out = first.add(times[:777], x[:777], scores[:777])
    resumed = WindowedDrift(ref, config, state=first.state())
    out += resumed.add(times[777:], x[777:], scores[777:])
    assert out == whole
    assert resumed.state() == WindowedDrift(ref, config, state=resumed.state()).state()


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(1, 499), max_size=8, unique=True))
def test_in_order_streams_give_the_same_metrics_however_they_are_batched(
    cuts: list[int],
) -> None:
    ref = _reference()
    x, scores = _data(500, 7, shift=0.2)
    times = np.arange(500, dtype=np.int64) * (4 * HOUR // 500)
    config = DriftConfig(window_ms=HOUR, min_count=1)
    whole = WindowedDrift(ref, config).add(times, x, scores)
    drift = WindowedDrift(ref, config)
    bounds = [0, *sorted(cuts), 500]
    pieces: list[DriftMetric] = []
    for lo, hi in itertools.pairwise(bounds):
        pieces += drift.add(times[lo:hi], x[lo:hi], scores[lo:hi])
    assert pieces == whole


def test_a_malformed_reference_names_the_feature() -> None:
    with pytest.raises(ServingError, match=r"version '9'.*'a'.*len\(edges\)"):
        DriftReference.from_json(
            {"features": {"a": {"edges": [0, 1], "proportions": [0.5, 0.5]}}},
            ["a"],
            model_name="m",
            model_version="9",
        )
    assert DriftReference.from_json({}, ["a"], model_name="m", model_version="1") is None


# --- the generator's injected drift ------------------------------------------------------

_WORLD = WorldConfig(seed=5, cards=1_500, merchants=150, events_per_day=8_000, out_of_order=0.0)
_EVENTS = 56_000  # 7 simulated days
_DRIFT_AT = 36_000  # inside day 4


def _features(drift: Drift | None) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    stream = World.fresh(_WORLD).stream(_EVENTS, drift=drift)
    events = [e.record for e in stream if isinstance(e.record, Transaction)]
    engine = LocalEngine(CompiledFeatureSet(FRAUD_FEATURES))
    x = np.array([engine.compute(e)[0] for e in events], dtype=np.float64)
    return x, np.array([e.event_time for e in events], dtype=np.int64)


def _score(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """A fixed stand-in model: logistic in log amount, hourly count and foreignness."""
    names = list(FRAUD_FEATURES.feature_names)
    z = (
        0.8 * (x[:, names.index("log_amount")] - 4.0)
        + 0.05 * x[:, names.index("card_txn_count_1h")]
        - 0.3 * x[:, names.index("is_foreign")]
    )
    return (1 / (1 + np.exp(-z))).astype(np.float32)


@pytest.fixture(scope="module")
def generator_runs() -> dict[str, Any]:
    """Features of the same world without and with amount drift, plus a day-1..2 reference."""
    clean_x, times = _features(None)
    drifted_x, drifted_times = _features(Drift(at_index=_DRIFT_AT, kind="amount"))
    start = int(times.min()) // DAY * DAY
    train = (times >= start + DAY) & (times < start + 3 * DAY)
    reference = DriftReference.from_json(
        reference_bins(clean_x[train], _score(clean_x[train]), FRAUD_FEATURES.feature_names),
        FRAUD_FEATURES.feature_names,
        model_name="fraud",
        model_version="1",
    )
    return {
        "reference": reference,
        "start": start,
        "clean": (clean_x, times),
        "drifted": (drifted_x, drifted_times),
        "drift_time": int(drifted_times[_DRIFT_AT]),
    }


def _monitor(runs: dict[str, Any], which: str) -> list[DriftMetric]:
    x, times = runs[which]
    live = times >= runs["start"] + 3 * DAY  # after the reference period
    drift = WindowedDrift(runs["reference"], DriftConfig(window_ms=DAY, min_count=500))
    out: list[DriftMetric] = []
    for lo in range(0, int(live.sum()), 500):
        sl = slice(lo, lo + 500)
        out += drift.add(times[live][sl], x[live][sl], _score(x[live])[sl])
    return out


def test_a_run_without_drift_raises_no_alert(generator_runs: dict[str, Any]) -> None:
    out = _monitor(generator_runs, "clean")
    assert len({m.window_start for m in out}) >= 3
    assert [m for m in out if m.level == "alert"] == []


def test_injected_amount_drift_raises_an_alert_within_two_windows(
    generator_runs: dict[str, Any],
) -> None:
    out = _monitor(generator_runs, "drifted")
    onset = generator_runs["drift_time"] // DAY * DAY  # the window the drift starts in
    before = [m for m in out if m.window_end <= onset]
    assert before
    assert all(m.level != "alert" for m in before)
    alerts = sorted({m.window_start for m in out if m.level == "alert"})
    assert alerts, "no alert after the injected drift"
    assert alerts[0] <= onset + DAY  # the onset window or the next one
    assert any(
        m.feature in {"amount", "log_amount", SCORE_SERIES} for m in out if m.level == "alert"
    )


def test_the_watermark_waits_for_the_slowest_source_partition() -> None:
    ref = _reference()
    x, scores = _data(40, 8)
    drift = WindowedDrift(ref, DriftConfig(window_ms=HOUR, min_count=1), partitions=[0, 1])
    ahead = np.full(10, 3 * HOUR)
    assert drift.add(ahead, x[:10], scores[:10], np.zeros(10)) == []  # partition 1 unseen
    assert drift.watermark is None
    assert drift.add(np.full(10, 5), x[10:20], scores[10:20], np.ones(10)) == []
    assert drift.watermark == 5
    # Partition 1 is still in window 0: its events there are on time, not late.
    assert drift.add(np.full(10, 60_000), x[20:30], scores[20:30], np.ones(10)) == []
    out = drift.add(np.full(10, 2 * HOUR), x[30:40], scores[30:40], np.ones(10))
    assert drift.late_events == 0
    assert sorted({(m.window_start, m.count) for m in out}) == [(0, 20)]
