"""The synthetic fraud world: determinism, patterns, late delivery, labels, continuation."""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pytest

from schemas.contracts import codec_for
from schemas.records import Channel, Label, Transaction
from streams.generator import (
    Drift,
    Emitted,
    GeneratorError,
    TokenBucket,
    World,
    WorldConfig,
    load_state,
    save_state,
)
from streams.generator.catalog import MCCS
from streams.generator.chargebacks import MIN_DELAY_MS
from streams.generator.pacing import MIN_SLEEP_S

SMALL = WorldConfig(seed=11, cards=3_000, merchants=400, events_per_day=40_000)
BIG_EVENTS = 150_000


def _txns(items: Iterable[Emitted]) -> list[Emitted]:
    return [item for item in items if isinstance(item.record, Transaction)]


def _txn(item: Emitted) -> Transaction:
    assert isinstance(item.record, Transaction)
    return item.record


def _digest(items: Iterable[Emitted]) -> str:
    """sha256 over the encoded bytes of every record, in order, with its key."""
    txn_codec, label_codec = codec_for("Transaction"), codec_for("Label")
    digest = hashlib.sha256()
    for item in items:
        codec = txn_codec if isinstance(item.record, Transaction) else label_codec
        digest.update(item.key.encode())
        digest.update(codec.encode(item.record.to_avro()))
    return digest.hexdigest()


@pytest.fixture(scope="module")
def stream() -> list[Emitted]:
    """~2.5 simulated days at a 1% fraud rate."""
    config = WorldConfig(seed=5, cards=5_000, merchants=800, fraud_rate=0.01)
    return list(World.fresh(config).stream(BIG_EVENTS))


@pytest.fixture(scope="module")
def by_pattern(stream: list[Emitted]) -> dict[str, list[Transaction]]:
    groups: dict[str, list[Transaction]] = defaultdict(list)
    for item in _txns(stream):
        groups[item.pattern].append(_txn(item))
    return groups


def test_same_seed_and_options_give_byte_identical_streams() -> None:
    first = list(World.fresh(SMALL).stream(20_000))
    second = list(World.fresh(SMALL).stream(20_000))
    assert _digest(first) == _digest(second)
    assert len(_txns(first)) == 20_000


def test_stream_does_not_depend_on_the_hash_seed() -> None:
    script = (
        "import hashlib; from streams.generator import World, WorldConfig; "
        "c = WorldConfig(seed=11, cards=3_000, merchants=400, events_per_day=40_000); "
        "print(hashlib.sha256(repr([i.record for i in World.fresh(c).stream(3_000)]).encode())"
        ".hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for hash_seed in ("1", "2")
    }
    here = hashlib.sha256(repr([i.record for i in World.fresh(SMALL).stream(3_000)]).encode())
    assert digests == {here.hexdigest()}


def test_different_seed_gives_a_different_stream() -> None:
    other = WorldConfig(seed=12, cards=3_000, merchants=400, events_per_day=40_000)
    assert _digest(World.fresh(SMALL).stream(2_000)) != _digest(World.fresh(other).stream(2_000))


def test_event_ids_are_unique(stream: list[Emitted]) -> None:
    ids = [_txn(item).event_id for item in _txns(stream)]
    assert len(set(ids)) == len(ids) == BIG_EVENTS


def test_fraud_rate_is_near_the_target(stream: list[Emitted]) -> None:
    txns = _txns(stream)
    rate = sum(item.is_fraud for item in txns) / len(txns)
    assert 0.006 < rate < 0.014


def test_fraud_rate_zero_gives_no_fraud() -> None:
    config = WorldConfig(seed=1, cards=500, merchants=200, fraud_rate=0.0)
    assert not any(item.is_fraud for item in _txns(World.fresh(config).stream(5_000)))


def test_event_times_start_at_2026_and_advance_with_the_simulated_clock(
    stream: list[Emitted],
) -> None:
    times = [_txn(item).event_time for item in _txns(stream)]
    assert min(times) >= 1_767_225_600_000  # 2026-01-01T00:00Z
    assert max(times) - min(times) > 2 * 86_400_000


def test_card_testing_is_bursts_of_small_amounts_at_many_merchants(
    by_pattern: dict[str, list[Transaction]],
) -> None:
    testing = by_pattern["card_testing"]
    assert statistics.median(t.amount for t in testing) < 5.0
    assert sum(t.channel is Channel.ONLINE for t in testing) / len(testing) > 0.7
    per_card: dict[str, list[Transaction]] = defaultdict(list)
    for t in testing:
        per_card[t.card_id].append(t)
    in_bursts = 0
    for txns in per_card.values():
        txns.sort(key=lambda t: t.event_time)
        for i, t in enumerate(txns):
            burst = [u for u in txns[i:] if u.event_time - t.event_time <= 10 * 60_000]
            if len(burst) >= 5 and len({u.merchant_id for u in burst}) >= 5:
                in_bursts += len(burst)
                break
    assert in_bursts / len(testing) > 0.6


def test_account_takeover_is_large_foreign_and_from_a_new_device(
    by_pattern: dict[str, list[Transaction]], stream: list[Emitted]
) -> None:
    legit, ato = by_pattern["legit"], by_pattern["account_takeover"]

    def foreign(txns: list[Transaction]) -> float:
        return sum(t.country != t.card_country for t in txns) / len(txns)

    assert foreign(ato) > 0.5 > 0.1 > foreign(legit)
    assert statistics.median(t.amount for t in ato) > 3 * statistics.median(t.amount for t in legit)
    known: dict[str, set[str | None]] = defaultdict(set)
    for t in legit:
        known[t.card_id].add(t.device_id)
    with_device = [t for t in ato if t.device_id is not None]
    new = sum(t.device_id not in known[t.card_id] for t in with_device) / len(with_device)
    assert new > 0.8


def test_compromised_merchant_is_many_distinct_cards_at_one_merchant(
    by_pattern: dict[str, list[Transaction]],
) -> None:
    cm = by_pattern["compromised_merchant"]
    cards_at: dict[str, set[str]] = defaultdict(set)
    for t in cm:
        cards_at[t.merchant_id].add(t.card_id)
    biggest = max(len(cards) for cards in cards_at.values())
    assert biggest >= 20
    assert len(cm) / len(cards_at) >= 10


def test_some_legit_traffic_looks_odd(by_pattern: dict[str, list[Transaction]]) -> None:
    legit = by_pattern["legit"]
    typical = statistics.median(t.amount for t in legit)
    assert sum(t.country != t.card_country for t in legit) > 100  # travel
    assert sum(t.amount > 10 * typical for t in legit) > 50  # big purchases


def test_out_of_order_fraction_and_bound(stream: list[Emitted]) -> None:
    late, high, worst = 0, 0, 0
    txns = _txns(stream)
    for item in txns:
        txn = _txn(item)
        assert 0 <= item.produced_at - txn.event_time <= SMALL.max_delay_ms
        if txn.event_time < high:
            late += 1
            worst = max(worst, high - txn.event_time)
        high = max(high, txn.event_time)
    assert 0.01 < late / len(txns) < 0.025
    assert 0 < worst <= 120_000


def test_no_out_of_order_when_disabled() -> None:
    config = WorldConfig(seed=2, cards=500, merchants=200, out_of_order=0.0)
    times = [_txn(item).event_time for item in _txns(World.fresh(config).stream(10_000))]
    assert times == sorted(times)


def test_labels_come_days_later_in_label_time_order_when_the_clock_passes(
    stream: list[Emitted],
) -> None:
    txn_at: dict[str, Emitted] = {}
    last_clock = 0
    label_times: list[int] = []
    reasons: set[str] = set()
    for item in stream:
        if isinstance(item.record, Label):
            label = item.record
            produced = txn_at[label.event_id]  # labelled transaction came before
            assert label.label_time >= _txn(produced).event_time + MIN_DELAY_MS
            assert label.label_time > last_clock  # not due earlier
            assert item.key == _txn(produced).card_id
            assert label.is_fraud
            assert label.reason == (produced.pattern if produced.is_fraud else "friendly_fraud")
            label_times.append(label.label_time)
            reasons.add(label.reason)
        else:
            for_txn = item
            txn_at[_txn(for_txn).event_id] = for_txn
            if label_times:
                assert label_times[-1] <= item.produced_at  # the clock passed it
            last_clock = item.produced_at
    assert label_times == sorted(label_times)
    assert {"card_testing", "account_takeover", "compromised_merchant"} <= reasons


def test_most_fraud_is_eventually_charged_back() -> None:
    config = WorldConfig(seed=4, cards=1_000, merchants=200, events_per_day=2_000)
    items = list(World.fresh(config).stream(80_000))  # 40 days: every label is due
    fraud_ids = {_txn(i).event_id for i in _txns(items[:40_000]) if i.is_fraud}
    labelled = {i.record.event_id for i in items if isinstance(i.record, Label)}
    share = len(fraud_ids & labelled) / len(fraud_ids)
    assert 0.85 < share < 0.98


@pytest.mark.parametrize(("first", "total"), [(1, 3_000), (2_345, 20_000), (9_999, 10_000)])
def test_continuation_through_a_saved_state_equals_one_run(
    tmp_path: Path, first: int, total: int
) -> None:
    whole = list(World.fresh(SMALL).stream(total))
    world = World.fresh(SMALL)
    parts = list(world.stream(first))
    path = tmp_path / "generator.json"
    save_state(path, world.state())
    loaded = load_state(path)
    assert loaded == world.state()
    assert loaded is not None
    resumed = World(loaded)
    parts += resumed.stream(total - first)
    assert _digest(parts) == _digest(whole)
    assert resumed.next_index == total


def test_continuation_over_three_runs_in_label_heavy_history(tmp_path: Path) -> None:
    config = WorldConfig(seed=9, cards=800, merchants=200, events_per_day=3_000)
    whole = list(World.fresh(config).stream(30_000))
    world = World.fresh(config)
    parts = list(world.stream(10_000))
    path = tmp_path / "state.json"
    for size in (7_000, 13_000):
        save_state(path, world.state())
        loaded = load_state(path)
        assert loaded is not None
        world = World(loaded)
        parts += world.stream(size)
    assert _digest(parts) == _digest(whole)
    assert any(isinstance(item.record, Label) for item in whole)


def test_missing_state_is_none_and_a_broken_one_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "generator.json"
    assert load_state(path) is None
    path.write_text("{not json")
    with pytest.raises(GeneratorError, match=r"unreadable.*--reset"):
        load_state(path)


def test_amount_drift_scales_amounts_after_the_point_and_not_before() -> None:
    plain = _txns(World.fresh(SMALL).stream(20_000))
    drifted = _txns(World.fresh(SMALL).stream(20_000, drift=Drift(at_index=10_000)))
    assert [_txn(i) for i in drifted[:10_000]] == [_txn(i) for i in plain[:10_000]]
    ratio = statistics.median(_txn(i).amount for i in drifted[10_000:]) / statistics.median(
        _txn(i).amount for i in plain[10_000:]
    )
    assert ratio == pytest.approx(1.8, rel=0.01)
    before = statistics.median(_txn(i).amount for i in drifted[:10_000])
    after = statistics.median(_txn(i).amount for i in drifted[10_000:])
    assert after > 1.5 * before


def test_merchant_mix_drift_moves_legit_traffic_to_trending_categories() -> None:
    trending = {m.mcc for m in MCCS if m.drift_target}
    drift = Drift(at_index=10_000, kind="merchant-mix")
    drifted = _txns(World.fresh(SMALL).stream(20_000, drift=drift))

    def share(items: list[Emitted]) -> float:
        return sum(_txn(i).mcc in trending for i in items) / len(items)

    assert share(drifted[10_000:]) > share(drifted[:10_000]) + 0.2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fraud_rate": 2.0}, r"fraud rate must be within \[0.0, 0.5\], got 2.0"),
        ({"out_of_order": -0.1}, r"out-of-order fraction must be within \[0.0, 1.0\]"),
        ({"merchants": 3}, r"merchants >= 42"),
    ],
)
def test_bad_options_are_clear_errors(options: dict[str, float], message: str) -> None:
    with pytest.raises(GeneratorError, match=message):
        World.fresh(WorldConfig(**options))  # type: ignore[arg-type]


def test_bad_drift_is_a_clear_error() -> None:
    with pytest.raises(GeneratorError, match="drift kind must be one of"):
        Drift(at_index=0, kind="colour")  # type: ignore[arg-type]


def test_token_bucket_paces_at_the_rate() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    bucket = TokenBucket(100.0, burst=1.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(501):
        bucket.take()
    assert now[0] == pytest.approx(5.0, rel=1e-6)


def test_token_bucket_sleeps_in_millisecond_steps_at_fast_rates() -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(5_000.0, clock=lambda: now[0], sleep=sleep)  # burst 50
    for _ in range(10_050):
        bucket.take()
    assert now[0] == pytest.approx(2.0, abs=MIN_SLEEP_S)  # the rate, after the first burst
    assert len(sleeps) < 10_000 / 4  # ~5 takes per 1 ms sleep, not one sleep per take
