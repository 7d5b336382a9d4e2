"""Which transactions are charged back, and how many days of event time later.

Fraud is charged back with probability 0.92 (the rest never is); legit transactions are
charged back as friendly fraud with probability 0.0007. The delay is 1 day plus a gamma
(shape 1.6, scale 4 days) skew, capped at 30 days: most labels arrive within two weeks.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from streams.generator.batch import Pattern
from streams.generator.clock import DAY_MS

__all__ = ["FRAUD_CHARGEBACK", "FRIENDLY_FRAUD", "MAX_DELAY_MS", "MIN_DELAY_MS", "label_delays"]

FRAUD_CHARGEBACK = 0.92
FRIENDLY_FRAUD = 0.0007
MIN_DELAY_MS = DAY_MS
MAX_DELAY_MS = 30 * DAY_MS


def label_delays(rng: np.random.Generator, pattern: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Per transaction: ms from event time to its chargeback label, or -1 for none."""
    n = pattern.size
    fraud = pattern != int(Pattern.LEGIT)
    charged = rng.random(n) < np.where(fraud, FRAUD_CHARGEBACK, FRIENDLY_FRAUD)
    skew = rng.gamma(1.6, 4.0 * DAY_MS, size=n)
    delays = np.minimum(MIN_DELAY_MS + skew, MAX_DELAY_MS).astype(np.int64)
    return np.where(charged, delays, -1).astype(np.int64)
