"""One window's generated transactions as columns, before they become records."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

__all__ = ["Batch", "Pattern", "concat"]


class Pattern(IntEnum):
    """Why a transaction happened; the fraud patterns name their chargeback reason."""

    LEGIT = 0
    CARD_TESTING = 1
    ACCOUNT_TAKEOVER = 2
    COMPROMISED_MERCHANT = 3

    @property
    def reason(self) -> str:
        """The chargeback reason for this pattern (legit chargebacks are friendly fraud)."""
        return "friendly_fraud" if self is Pattern.LEGIT else self.name.lower()


@dataclass(frozen=True, slots=True, eq=False)
class Batch:
    """Parallel columns: event time, card, merchant, amount, channel code, device, pattern."""

    time: npt.NDArray[np.int64]
    card: npt.NDArray[np.int64]
    merchant: npt.NDArray[np.int64]
    amount: npt.NDArray[np.float64]
    channel: npt.NDArray[np.int64]  # index into streams.generator.legit.CHANNELS
    device: list[str | None]
    pattern: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.time.size)


def concat(parts: list[Batch]) -> Batch:
    """The rows of `parts`, in order."""
    devices: list[str | None] = []
    for part in parts:
        devices.extend(part.device)
    return Batch(
        time=np.concatenate([p.time for p in parts]).astype(np.int64),
        card=np.concatenate([p.card for p in parts]).astype(np.int64),
        merchant=np.concatenate([p.merchant for p in parts]).astype(np.int64),
        amount=np.concatenate([p.amount for p in parts]).astype(np.float64),
        channel=np.concatenate([p.channel for p in parts]).astype(np.int64),
        device=devices,
        pattern=np.concatenate([p.pattern for p in parts]).astype(np.int64),
    )
