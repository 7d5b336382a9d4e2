"""View steps' state: sharded, logged in pieces and per snapshot, resumed as if never stopped."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.features import CompiledFeatureSet
from schemas.features.fraud import FRAUD_FEATURES
from schemas.records import Transaction
from streams import state_log
from streams.errors import StreamsError
from streams.features import steps
from streams.features.decode import Decoded
from streams.features.steps import InFlight, ViewLogic, shard_of
from tests.factories import transactions

VIEWS = CompiledFeatureSet(FRAUD_FEATURES).views
Output = tuple[tuple[float, ...], bool]


class _Shards:
    """One view step as Bytewax runs it: a `ViewLogic` per shard key, built on first use."""

    def __init__(self, view: int, resume: dict[str, Any] | None = None) -> None:
        self.kernel = VIEWS[view]
        self.step = f"test_{self.kernel.view.name}_state"
        self.field = self.kernel.view.entity.key_field
        self.logics = {
            shard: ViewLogic(self.kernel, self.step, token)
            for shard, token in (resume or {}).items()
        }

    def feed(self, batch: list[InFlight]) -> dict[str, Output]:
        by_shard: dict[str, list[InFlight]] = {}
        for item in batch:
            by_shard.setdefault(shard_of(getattr(item.event.record, self.field)), []).append(item)
        out = {}
        for shard, items in by_shard.items():
            logic = self.logics.get(shard)
            if logic is None:
                logic = self.logics[shard] = ViewLogic(self.kernel, self.step, None)
            emitted, _ = logic.on_batch(items)
            out.update({i.event.record.event_id: (i.values, i.late) for i in emitted})
        return out

    def snapshot(self) -> dict[str, Any]:
        return {shard: logic.snapshot() for shard, logic in self.logics.items()}


def _inflight(events: list[Transaction]) -> list[InFlight]:
    return [InFlight(Decoded(e, 0, i, e.event_time), (), False, i) for i, e in enumerate(events)]


def _batches(items: list[InFlight], rng: random.Random) -> list[list[InFlight]]:
    out, at = [], 0
    while at < len(items):
        size = rng.randint(1, 8)
        out.append(items[at : at + size])
        at += size
    return out


def _events(seed: int, n: int) -> list[Transaction]:
    """A stream shuffled within (and sometimes beyond) the views' lateness."""
    events = transactions(n, seed=seed, cards=5, merchants=3)
    rng = random.Random(seed)
    delays = [0, 0, 0, 60_000, 400_000, 7_200_000]  # the last is beyond lateness
    keyed = [(e.event_time - rng.choice(delays), e) for e in events]
    return [e for _, e in sorted(keyed, key=lambda k: k[0])]


def _resumed_at(
    batches: list[list[InFlight]], view: int, k: int, uncommitted: int, recovery_dir: Path
) -> dict[str, Output]:
    """Outputs of a run whose worker dies after batch `k` and resumes from its snapshot."""
    rng = random.Random(k)
    got: dict[str, Output] = {}
    with state_log.opened(recovery_dir) as log:
        assert log is not None
        before = _Shards(view)
        committed: dict[str, Any] = {}
        for i, batch in enumerate(batches[:k]):
            got.update(before.feed(batch))
            if rng.random() < 0.5 or i == k - 1:  # an epoch ends; the sink's snapshot flushes
                committed.update(before.snapshot())
                log.flush()
        # Later epochs whose snapshots Bytewax never committed: the crash comes first, with
        # their generations written or not (their pieces are).
        for batch in batches[k : k + uncommitted]:
            before.feed(batch)
            before.snapshot()
            if rng.random() < 0.5:
                log.flush()
    with state_log.opened(recovery_dir):  # the restarted worker
        after = _Shards(view, resume=committed)
        for batch in batches[k:]:
            got.update(after.feed(batch))
    return got


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    view=st.sampled_from([0, 1]),
    compact_every=st.sampled_from([1, 2, 1_000]),
    uncommitted=st.sampled_from([0, 2]),
    piece_events=st.sampled_from([1, 3, 64]),
)
def test_a_resumed_view_step_computes_what_an_uninterrupted_one_does(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    view: int,
    compact_every: int,
    uncommitted: int,
    piece_events: int,
) -> None:
    monkeypatch.setattr(steps, "_COMPACT_EVERY", compact_every)
    # Shards log their events in pieces of this many while an epoch runs.
    monkeypatch.setattr(steps, "_PIECE_EVENTS", piece_events)
    # Compaction must stay behind the snapshots Bytewax has not committed; right behind
    # them, a merge that dropped an event still in a window would show below.
    monkeypatch.setattr(steps, "_COMPACT_LAG", uncommitted + 1)
    batches = _batches(_inflight(_events(seed, 600)), random.Random(seed))
    expected: dict[str, Output] = {}
    uninterrupted = _Shards(view)
    for batch in batches:
        expected.update(uninterrupted.feed(batch))
    for cut in (0.3, 0.6, 0.9):
        recovery_dir = tmp_path_factory.mktemp("recovery")
        got = _resumed_at(batches, view, int(len(batches) * cut), uncommitted, recovery_dir)
        assert got == expected, f"resumed after {cut:.0%} of the batches"


def test_a_per_entity_snapshot_of_an_earlier_release_is_refused_with_the_fix() -> None:
    kernel = VIEWS[0]
    with pytest.raises(StreamsError, match=r"earlier release.*backfill"):
        ViewLogic(kernel, "fraud_card_state", kernel.new_state())


def test_recovery_state_without_an_open_state_log_is_an_error() -> None:
    with pytest.raises(StreamsError, match="no state log is open"):
        ViewLogic(VIEWS[0], "fraud_card_state", ("03", 7))


def test_without_recovery_a_snapshot_is_nothing() -> None:
    shards = _Shards(0)
    shards.feed(_inflight(transactions(20, seed=1)))
    assert set(shards.snapshot().values()) == {None}
