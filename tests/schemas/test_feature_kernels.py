"""The feature kernels against an independent brute-force reference, for every feature."""

from __future__ import annotations

import math
import random
from datetime import timedelta

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
)
from schemas.features.fraud import FRAUD_FEATURES
from schemas.records import Channel, Transaction
from tests.factories import T0, transactions
from tests.schemas.feature_reference import close, reference_vectors

_T0 = T0


def _stream(n: int, *, seed: int, cards: int = 12, merchants: int = 8) -> list[Transaction]:
    return transactions(n, seed=seed, cards=cards, merchants=merchants)


def _assert_matches(feature_set: FeatureSet, events: list[Transaction]) -> None:
    engine = LocalEngine(CompiledFeatureSet(feature_set))
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
