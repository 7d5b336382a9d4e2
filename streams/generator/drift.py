"""Injected drift: from a given event index on, amounts grow or the merchant mix shifts.

Drift is applied as events are emitted, as a pure function of (seed, event index, event),
so it does not disturb the random streams and continuation stays exact.

- `amount`: every amount is multiplied by `amount_factor` (default 1.8).
- `merchant-mix`: `moved_share` (default 50%) of legit transactions move to a merchant in
  the same country in a trending category (fast food, rideshare, digital goods, games).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import msgspec

from schemas.records import Channel, Transaction
from streams.generator.catalog import MCCS
from streams.generator.errors import GeneratorError
from streams.generator.population import Population
from streams.generator.seeding import Stream, mix64

__all__ = ["Drift", "DriftKind", "apply_drift"]

DriftKind = Literal["amount", "merchant-mix"]
_TWO_64 = float(1 << 64)


@dataclass(frozen=True, slots=True, kw_only=True)
class Drift:
    """Drift of `kind` for every event whose global index is at least `at_index`."""

    at_index: int
    kind: DriftKind = "amount"
    amount_factor: float = 1.8
    moved_share: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in get_args(DriftKind):
            msg = f"drift kind must be one of {get_args(DriftKind)}, got {self.kind!r}"
            raise GeneratorError(msg)
        if self.at_index < 0:
            msg = f"drift must start at an event index >= 0, got {self.at_index}"
            raise GeneratorError(msg)


def _move_merchant(
    txn: Transaction, index: int, *, share: float, seed: int, population: Population
) -> Transaction:
    draw = mix64(seed, int(Stream.DRIFT), index)
    merchant = int(txn.merchant_id[1:])
    pool = population.drift_pool[int(population.merchant_country[merchant])]
    if draw / _TWO_64 >= share or pool.size == 0:
        return txn
    moved = int(pool[mix64(draw, 1) % pool.size])
    online = bool(population.merchant_online[moved])
    channel = Channel.ONLINE if online else Channel.CONTACTLESS
    device = txn.device_id
    if device is None:
        device = population.card_devices[int(txn.card_id[1:])][0]
    return msgspec.structs.replace(
        txn,
        merchant_id=population.merchant_ids[moved],
        mcc=MCCS[int(population.merchant_mcc[moved])].mcc,
        channel=channel,
        device_id=device,
    )


def apply_drift(
    drift: Drift, txn: Transaction, index: int, *, legit: bool, seed: int, population: Population
) -> Transaction:
    """`txn` (global event `index`) as it looks under `drift`; unchanged before the point."""
    if index < drift.at_index:
        return txn
    if drift.kind == "amount":
        return msgspec.structs.replace(txn, amount=round(txn.amount * drift.amount_factor, 2))
    if legit:
        return _move_merchant(txn, index, share=drift.moved_share, seed=seed, population=population)
    return txn
