"""The world's event stream: transactions in delivery order, chargebacks when due.

`World.stream(n)` yields exactly `n` transactions, lazily, in the order a payment network
would deliver them (event time, except the late ones), with each chargeback label
interleaved at the point the simulated clock passes its label time. `World.state()` after
any item says how to resume right after it: running n then m events through a saved state
yields the same items as running n + m at once.

    >>> world = World.fresh(WorldConfig(seed=1, cards=500, merchants=200))
    >>> first = [item.record for item in world.stream(3)]
    >>> len(first)
    3
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from schemas.records import Label, Transaction
from streams.generator.batch import Pattern
from streams.generator.clock import WINDOW_MS, window_start
from streams.generator.config import WorldConfig
from streams.generator.drift import Drift, apply_drift
from streams.generator.population import Population
from streams.generator.state import GeneratorState, HeldEvent, PendingLabel
from streams.generator.window import Item, WindowMaker

__all__ = ["PATTERNS", "Emitted", "World"]

PATTERNS: tuple[str, ...] = tuple(p.name.lower() for p in Pattern)
_LEGIT = int(Pattern.LEGIT)


@dataclass(frozen=True, slots=True)
class Emitted:
    """One produced record with its ground truth.

    `key` is the Kafka key (the card id, for labels too, so a card's label lands in its
    partition); `pattern` is "legit" or the fraud pattern for transactions and the reason
    for labels; `produced_at` is the simulated clock when it is produced (for a late
    transaction, its event time plus the delivery delay); `index` is the transaction's
    global event index (for a label, that of the labelled transaction).
    """

    record: Transaction | Label
    key: str
    pattern: str
    produced_at: int
    index: int

    @property
    def is_fraud(self) -> bool:
        """Ground truth for a transaction (labels: whether it is a fraud chargeback)."""
        return self.pattern != "legit"


class World:
    """A resumable stream over the world a `WorldConfig` describes."""

    def __init__(self, state: GeneratorState) -> None:
        self._maker = WindowMaker(state.config)
        self._window = state.window
        self._offset = state.offset
        self._next_index = state.next_index
        self._clock = state.clock_ms
        self._held: list[Item] = [
            (h.produced_at, h.window, h.ordinal, h.transaction, h.pattern, h.label_delay)
            for h in state.held
        ]
        self._labels: list[tuple[int, int, PendingLabel]] = [
            (p.label.label_time, p.index, p) for p in state.pending_labels
        ]
        heapq.heapify(self._labels)
        self._cached: tuple[int, list[Item], list[Item]] | None = None

    @classmethod
    def fresh(cls, config: WorldConfig) -> World:
        """A world at the beginning of its history."""
        return cls(GeneratorState(config=config))

    @property
    def config(self) -> WorldConfig:
        return self._maker.config

    @property
    def population(self) -> Population:
        return self._maker.population

    @property
    def next_index(self) -> int:
        """Global index of the next transaction (transactions produced so far, all runs)."""
        return self._next_index

    def state(self) -> GeneratorState:
        """Where to resume: right after the last item this world yielded."""
        return GeneratorState(
            config=self.config,
            window=self._window,
            offset=self._offset,
            next_index=self._next_index,
            clock_ms=self._clock,
            held=tuple(HeldEvent(*item) for item in self._held),
            pending_labels=tuple(sorted((p for _, _, p in self._labels), key=_label_order)),
        )

    def _release(self) -> tuple[list[Item], list[Item]]:
        """(produced in the current window, held past its end), from held + its items."""
        if self._cached is None or self._cached[0] != self._window:
            merged = list(heapq.merge(self._held, self._maker.items(self._window)))
            end = window_start(self.config.start_ms, self._window) + WINDOW_MS
            split = bisect.bisect_left(merged, end, key=lambda item: item[0])
            self._cached = (self._window, merged[:split], merged[split:])
        return self._cached[1], self._cached[2]

    def stream(self, events: int, *, drift: Drift | None = None) -> Iterator[Emitted]:
        """Yield the next `events` transactions and every label that falls due meanwhile."""
        seed, population, labels = self.config.seed, self.population, self._labels
        produced = 0
        while produced < events:
            release, held_after = self._release()
            while self._offset < len(release) and produced < events:
                at, _, _, txn, pattern, label_delay = release[self._offset]
                while labels and labels[0][0] <= at:
                    label_time, index, pending = heapq.heappop(labels)
                    yield Emitted(
                        pending.label, pending.key, pending.label.reason, label_time, index
                    )
                index = self._next_index
                if drift is not None:
                    txn = apply_drift(
                        drift, txn, index, legit=pattern == _LEGIT, seed=seed, population=population
                    )
                if label_delay >= 0:
                    label = Label(
                        event_id=txn.event_id,
                        is_fraud=True,
                        label_time=txn.event_time + label_delay,
                        reason=Pattern(pattern).reason,
                    )
                    heapq.heappush(
                        labels, (label.label_time, index, PendingLabel(label, txn.card_id, index))
                    )
                self._next_index += 1
                self._offset += 1
                self._clock = at
                produced += 1
                yield Emitted(txn, txn.card_id, PATTERNS[pattern], at, index)
            if self._offset >= len(release):
                self._window += 1
                self._offset = 0
                self._held = held_after


def _label_order(pending: PendingLabel) -> tuple[int, int]:
    return (pending.label.label_time, pending.index)
