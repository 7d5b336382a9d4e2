"""What world to generate: seed, size, traffic, fraud rate and late delivery."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from streams.generator.clock import START_MS
from streams.generator.errors import GeneratorError

__all__ = ["MAX_FRAUD_RATE", "WorldConfig"]

MAX_FRAUD_RATE = 0.5


def _check(name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        msg = f"{name} must be within [{lo}, {hi}], got {value!r}"
        raise GeneratorError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorldConfig:
    """The world's parameters; two runs with equal configs generate identical streams.

    `fraud_rate` is the expected share of fraud transactions; `out_of_order` the share of
    transactions delivered late by up to `max_delay_ms` of event time; `events_per_day`
    the mean transactions per simulated day; `start_ms` the first event time.
    """

    seed: int = 7
    fraud_rate: float = 0.008
    out_of_order: float = 0.02
    max_delay_ms: int = 120_000
    events_per_day: int = 60_000
    cards: int = 20_000
    merchants: int = 4_000
    start_ms: int = START_MS

    def __post_init__(self) -> None:
        _check("seed", self.seed, 0, 2**63 - 1)
        _check("fraud rate", self.fraud_rate, 0.0, MAX_FRAUD_RATE)
        _check("out-of-order fraction", self.out_of_order, 0.0, 1.0)
        _check("max delivery delay (ms)", self.max_delay_ms, 1_000, 300_000)
        _check("events per day", self.events_per_day, 24, 10**9)
        _check("cards", self.cards, 1, 10**8)

    def to_json(self) -> dict[str, Any]:
        """The config as a JSON-ready dict (for the continuation state)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorldConfig:
        """The config from `to_json()` output; unknown keys are a `GeneratorError`."""
        try:
            return cls(**data)
        except TypeError as exc:
            msg = f"unknown or missing world config fields in {sorted(data)!r}"
            raise GeneratorError(msg) from exc
