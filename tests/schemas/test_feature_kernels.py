"""The feature kernels against an independent brute-force reference, and bit for bit against
the plain expressions of their arithmetic contract (`schemas.features.kernels`)."""

from __future__ import annotations

import math
import pickle
import random
import struct
from bisect import bisect_right
from datetime import timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.features import (
    Aggregation,
    CompiledFeatureSet,
    Entity,
    FeatureSet,
    FeatureView,
    LocalEngine,
    ViewKernel,
)
from schemas.features.fraud import FRAUD_FEATURES
from schemas.features.kernels import COUNTED_FROM
from schemas.records import Channel, Transaction
from tests.factories import T0, transactions
from tests.schemas.feature_reference import close, reference_vectors

_T0 = T0


def _stream(n: int, *, seed: int, cards: int = 12, merchants: int = 8) -> list[Transaction]:
    return transactions(n, seed=seed, cards=cards, merchants=merchants)


def _assert_matches(
    feature_set: FeatureSet, events: list[Transaction], *, counted_from: int = COUNTED_FROM
) -> None:
    compiled = CompiledFeatureSet(feature_set)
    for kernel in compiled.views:
        kernel.counted_from = counted_from
    engine = LocalEngine(compiled)
    expected = reference_vectors(feature_set, events)
    for event, (got, got_late), (want, want_late) in zip(
        events, engine.run(events), expected, strict=True
    ):
        assert got_late == want_late, event
        for name, g, w in zip(feature_set.feature_names, got, want, strict=True):
            assert close(g, w), f"{name} of {event.event_id}: kernel {g!r} != reference {w!r}"


def _shuffle_within(events: list[Transaction], max_delay_ms: int, seed: int) -> list[Transaction]:
    """Arrival order = event time + a random delay below `max_delay_ms` (bounded disorder)."""
    rng = random.Random(seed)
    keyed = [(e.event_time + rng.randrange(max_delay_ms), i, e) for i, e in enumerate(events)]
    return [e for _, _, e in sorted(keyed, key=lambda x: (x[0], x[1]))]


def test_every_feature_matches_reference_in_order() -> None:
    _assert_matches(FRAUD_FEATURES, _stream(3_000, seed=1))


def test_every_feature_matches_reference_shuffled_within_lateness() -> None:
    events = _shuffle_within(_stream(3_000, seed=2), max_delay_ms=4 * 60_000, seed=3)
    assert events != sorted(events, key=lambda e: e.event_time)
    engine = LocalEngine(CompiledFeatureSet(FRAUD_FEATURES))
    assert not any(late for _, late in engine.run(events)), "disorder within lateness is on time"
    _assert_matches(FRAUD_FEATURES, events)


@pytest.mark.parametrize("delay_min", [4, 90])  # within the merchant's lateness; beyond it
def test_a_busy_merchant_counted_matches_reference(delay_min: int) -> None:
    """One merchant with hundreds of events an hour: its count-distinct windows get counted."""
    events = [  # 720 an hour, a few at the same millisecond
        Transaction(**{**e.to_avro(), "channel": e.channel, "event_time": _T0 + i // 3 * 15_000})
        for i, e in enumerate(_stream(4_000, seed=11, cards=400, merchants=1))
    ]
    shuffled = _shuffle_within(events, max_delay_ms=delay_min * 60_000, seed=12)
    engine = LocalEngine(CompiledFeatureSet(FRAUD_FEATURES))
    list(engine.run(shuffled))
    assert engine.states[1]["m0"].counted, "the merchant's 1 h window is kept counted"
    _assert_matches(FRAUD_FEATURES, shuffled)
    _assert_matches(FRAUD_FEATURES, shuffled, counted_from=4)


def test_beyond_lateness_events_are_flagged_and_still_match() -> None:
    events = _shuffle_within(_stream(3_000, seed=4), max_delay_ms=8 * 3_600_000, seed=5)
    engine = LocalEngine(CompiledFeatureSet(FRAUD_FEATURES))
    late = [flag for _, flag in engine.run(events)]
    assert 0 < sum(late) < len(late)
    _assert_matches(FRAUD_FEATURES, events)


def test_late_event_does_not_change_state() -> None:
    events = _stream(200, seed=6, cards=1)
    compiled = CompiledFeatureSet(FRAUD_FEATURES)
    with_late = LocalEngine(compiled)
    without = LocalEngine(compiled)
    list(with_late.run(events))
    list(without.run(events))
    straggler = events[10]
    _, flagged = with_late.compute(straggler)
    assert flagged
    follow_up = events[-1]
    assert with_late.compute(follow_up) == without.compute(follow_up)


def test_window_is_inclusive_of_the_event_and_exclusive_at_its_start() -> None:
    view = FeatureView(
        name="card",
        entity=Entity("card", "card_id"),
        aggregations=(Aggregation("n_1m", "count", timedelta(minutes=1)),),
    )
    fs = FeatureSet(name="t", request_features=(), views=(view,))
    base = _stream(1, seed=7)[0]
    times = [_T0, _T0 + 60_000, _T0 + 60_001]
    events = [
        Transaction(**{**base.to_avro(), "channel": base.channel, "event_time": t}) for t in times
    ]
    got = [values[0] for values, _ in LocalEngine(CompiledFeatureSet(fs)).run(events)]
    # At _T0+60s the event at _T0 is exactly one window old: (t - w, t] excludes it.
    assert got == [1.0, 1.0, 2.0]


def test_state_is_bounded_by_retention() -> None:
    compiled = CompiledFeatureSet(FRAUD_FEATURES)
    engine = LocalEngine(compiled)
    events = _stream(5_000, seed=8, cards=1)
    list(engine.run(events))
    state = engine.states[0]["c0"]
    span = events[-1].event_time - state.times[0]
    assert span <= compiled.views[0].retention_ms * 1.5
    assert len(state.times) == len(state.columns[0])


_times = st.lists(st.integers(min_value=0, max_value=3 * 86_400_000), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(
    offsets=_times,
    amounts=st.lists(st.floats(0.01, 10_000, allow_nan=False), min_size=60, max_size=60),
    merchants=st.lists(st.sampled_from(["a", "b", "c"]), min_size=60, max_size=60),
    lateness_min=st.sampled_from([0, 5, 90]),
)
def test_window_kernels_property(
    offsets: list[int], amounts: list[float], merchants: list[str], lateness_min: int
) -> None:
    """Any arrival order of one entity's events: every function equals the reference."""
    windows = [timedelta(minutes=10), timedelta(hours=1), timedelta(days=1)]
    functions = ["count", "sum", "mean", "min", "max", "std", "last", "zscore"]
    aggs = [
        Aggregation(f"{fn}_{int(w.total_seconds())}", fn, w, source="amount")  # type: ignore[arg-type]
        for fn in functions
        for w in windows
    ]
    aggs += [
        Aggregation("distinct_1h", "count_distinct", timedelta(hours=1), source="merchant_id"),
        Aggregation("since_1d", "seconds_since_previous", timedelta(days=1)),
    ]
    view = FeatureView(
        name="card",
        entity=Entity("card", "card_id"),
        aggregations=tuple(aggs),
        allowed_lateness=timedelta(minutes=lateness_min),
    )
    fs = FeatureSet(name="p", request_features=(), views=(view,))
    base = _stream(1, seed=9)[0]
    events = [
        Transaction(
            **{
                **base.to_avro(),
                "channel": base.channel,
                "event_id": f"e{i}",
                "event_time": _T0 + off,
                "amount": amounts[i],
                "merchant_id": merchants[i],
            }
        )
        for i, off in enumerate(offsets)
    ]
    _assert_matches(fs, events)


def _exact_mean(s: list[Any]) -> Fraction:
    return sum(map(Fraction, s), Fraction(0)) / len(s)


def _plain_std(s: list[Any]) -> float:
    """The square root of the float nearest the exact population variance."""
    mean = _exact_mean(s)
    return math.sqrt(float(sum(((Fraction(x) - mean) ** 2 for x in s), Fraction(0)) / len(s)))


def _plain_feature(
    agg: Aggregation, times: list[int], column: list[Any], lo: int, i: int, horizon: int
) -> float:
    """The documented expression of one feature, over plain slices of the window."""
    window, prior = column[lo : i + 1], column[lo:i]
    match agg.function:
        case "count":
            return float(i + 1 - lo)
        case "sum":
            return math.fsum(window)  # correctly rounded, by Shewchuk's algorithm
        case "min":
            return float(min(window))
        case "max":
            return float(max(window))
        case "mean":
            return float(_exact_mean(window))
        case "std":
            return _plain_std(window)
        case "count_distinct":
            return float(len(set(window)))
        case "last":
            return float(prior[-1]) if prior else 0.0
        case "zscore":
            if len(prior) < 2:
                return 0.0
            mean = float(_exact_mean(prior))
            sd = _plain_std(prior)
            if sd <= 1e-9 * max(1.0, abs(mean)):
                return 0.0
            return (float(column[i]) - mean) / sd
        case "seconds_since_previous":
            cap = agg.window_ms / 1000.0
            return cap if i <= horizon else min((times[i] - times[i - 1]) / 1000.0, cap)
    raise AssertionError(agg.function)


def _bits(values: tuple[float, ...] | list[float]) -> bytes:
    return b"".join(struct.pack("<d", v) for v in values)


_EXACT_AMOUNTS = st.one_of(
    st.sampled_from([0.0, -0.0, 0.1, 7.5, 1e9]), st.floats(-1e6, 1e6, allow_nan=False)
)
# Shared with test_native: event times over 8 h from `_T0`, MCCs, view settings.
OFFSETS = st.one_of(
    st.integers(0, 480).map(lambda minute: minute * 60_000),  # many ties
    st.integers(0, 8 * 3_600_000),
)
MCCS = st.sampled_from(["5411", "5816", "5732"])
LATENESS_MIN = st.sampled_from([0, 5, 90])
COUNTED_FROMS = st.sampled_from([2, 8, COUNTED_FROM])  # small: kept counted early


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(st.tuples(OFFSETS, _EXACT_AMOUNTS, MCCS), min_size=20, max_size=120),
    lateness_min=LATENESS_MIN,
    in_order=st.booleans(),
    counted_from=COUNTED_FROMS,
)
def test_kernel_is_bit_identical_to_the_plain_expressions(
    events: list[tuple[int, float, str]], lateness_min: int, in_order: bool, counted_from: int
) -> None:
    """Same floats to the bit, late flags and retained events as the plain definition.

    The plain model keeps every accepted event (eviction only drops events behind every
    later horizon) and computes each feature from scratch over slices of them, with exact
    rationals (`fsum`, `Fraction`) for the sums and moments, so a kernel that rounds
    anywhere on the way or starts a window elsewhere fails here even when it is `close`
    to the reference.
    """
    windows = [timedelta(minutes=m) for m in (10, 60, 240)]
    aggs = [Aggregation(f"count_{i}", "count", w) for i, w in enumerate(windows)]
    aggs += [
        Aggregation(f"{fn}_{source}_{i}", fn, windows[i], source=source)  # type: ignore[arg-type]
        for fn in ("sum", "min", "max", "mean", "std", "zscore", "last")
        for source, slots in (("amount", (0, 1, 2)), ("event_time", (1,)))
        for i in slots
    ]
    aggs += [
        Aggregation(f"distinct_{i}", "count_distinct", w, source="mcc")
        for i, w in enumerate(windows)
    ]
    aggs += [Aggregation(f"since_{i}", "seconds_since_previous", windows[i]) for i in (1, 2)]
    view = FeatureView(
        name="card",
        entity=Entity("card", "card_id"),
        aggregations=tuple(aggs),
        allowed_lateness=timedelta(minutes=lateness_min),
    )
    if in_order:
        events = sorted(events, key=lambda e: e[0])
    kernel = ViewKernel(view)
    kernel.counted_from = counted_from  # small: count-distinct windows kept counted early
    state = kernel.new_state()
    lateness = lateness_min * 60_000
    times: list[int] = []
    rows: list[dict[str, Any]] = []
    watermark: int | None = None
    for offset, amount, mcc in events:
        t = _T0 + offset
        row = {"amount": amount, "mcc": mcc, "event_time": t}
        got, got_late = kernel.apply(state, t, tuple(row[s] for s in kernel.sources))

        late = watermark is not None and t < watermark - lateness
        mark = t if watermark is None else max(watermark, t)
        i = bisect_right(times, t)
        with_t, with_row = [*times[:i], t, *times[i:]], [*rows[:i], row, *rows[i:]]
        horizon = bisect_right(with_t, mark - view.retention_ms)
        want = []
        for agg in view.aggregations:
            lo = min(max(bisect_right(with_t, t - agg.window_ms), horizon), i)
            column = [r[agg.source] for r in with_row] if agg.source else []
            want.append(_plain_feature(agg, with_t, column, lo, i, horizon))
        assert (_bits(got), got_late) == (_bits(want), late), (t, got, want)
        if not late:
            times, rows, watermark = with_t, with_row, mark

    kept = len(state.times)
    assert state.times == times[len(times) - kept :]
    for source, column in zip(kernel.sources, state.columns, strict=True):
        assert column == [r[source] for r in rows[len(rows) - kept :]]
    assert state.max_time == watermark
    assert pickle.loads(pickle.dumps(state)) == state


@pytest.mark.parametrize("amount", [0.0, 1.0, 99.99, 12_345.5])
def test_request_features(amount: float) -> None:
    event = Transaction(
        event_id="e",
        card_id="c",
        merchant_id="m",
        amount=amount,
        currency="EUR",
        mcc="5816",
        country="US",
        channel=Channel.ONLINE,
        event_time=_T0 + 13 * 3_600_000 + 30 * 60_000,
        card_country="DE",
        device_id=None,
    )
    values, _ = LocalEngine(CompiledFeatureSet(FRAUD_FEATURES)).compute(event)
    named = dict(zip(FRAUD_FEATURES.feature_names, values, strict=True))
    assert named["amount"] == amount
    assert named["log_amount"] == math.log1p(amount)
    assert named["channel_online"] == 1.0
    assert named["channel_pos"] == 0.0
    assert named["hour_of_day"] == 13.5
    assert named["is_foreign"] == 1.0
    assert named["no_device"] == 1.0
    assert named["high_risk_mcc"] == 1.0


def _sum_view() -> FeatureView:
    return FeatureView(
        name="card",
        entity=Entity("card", "card_id"),
        aggregations=tuple(
            Aggregation(f"{fn}_1h", fn, timedelta(hours=1), source="amount")  # type: ignore[arg-type]
            for fn in ("sum", "mean", "std", "zscore", "max")
        ),
    )


def test_sums_beyond_the_float_range_are_infinite_not_an_error() -> None:
    kernel = ViewKernel(_sum_view())
    state = kernel.new_state()
    kernel.apply(state, _T0, (1.5e308,))
    values, _ = kernel.apply(state, _T0 + 1, (1.5e308,))
    assert values[0] == math.inf  # sum
    assert values[1] == 1.5e308  # the exact mean is in range
    assert values[4] == 1.5e308
