"""Small synthetic training sets with a learnable fraud signal, for fast offline tests."""

from __future__ import annotations

import numpy as np

from offline.delta_reader import DataVersion
from offline.training_set import TrainingSet
from schemas.features.fraud import FRAUD_FEATURES

__all__ = ["synthetic_training_set"]

_START_MS = 1_700_000_000_000


def synthetic_training_set(
    rows: int = 3_000, *, seed: int = 0, fraud_rate: float = 0.04, shift: float = 0.0
) -> TrainingSet:
    """`rows` examples of the fraud feature vector, time-ordered, split 70/15/15.

    Fraud rows have larger amounts and z-scores, burstier velocity and more foreign use;
    `shift` multiplies every amount-like column by `1 + shift` (a drifted world).
    """
    rng = np.random.default_rng(seed)
    names = FRAUD_FEATURES.feature_names
    col = {name: i for i, name in enumerate(names)}
    y = (rng.random(rows) < fraud_rate).astype(np.float32)
    fraud = y == 1
    x = np.zeros((rows, len(names)), dtype=np.float64)
    amount = np.exp(rng.normal(3.5, 0.8, rows)) * np.where(fraud, rng.uniform(1, 6, rows), 1.0)
    amount *= 1.0 + shift
    x[:, col["amount"]] = amount
    x[:, col["log_amount"]] = np.log1p(amount)
    channel = rng.integers(0, 4, rows)
    for k, name in enumerate(
        ("channel_pos", "channel_online", "channel_atm", "channel_contactless")
    ):
        x[:, col[name]] = channel == k
    x[:, col["hour_of_day"]] = rng.integers(0, 24, rows)
    x[:, col["is_foreign"]] = rng.random(rows) < np.where(fraud, 0.4, 0.05)
    x[:, col["no_device"]] = rng.random(rows) < 0.3
    x[:, col["high_risk_mcc"]] = rng.random(rows) < np.where(fraud, 0.3, 0.1)
    x[:, col["card_txn_count_10m"]] = 1 + rng.poisson(np.where(fraud, 2.5, 0.2))
    x[:, col["card_txn_count_1h"]] = x[:, col["card_txn_count_10m"]] + rng.poisson(1.0, rows)
    x[:, col["card_txn_count_24h"]] = x[:, col["card_txn_count_1h"]] + rng.poisson(4.0, rows)
    x[:, col["card_amount_sum_24h"]] = amount * x[:, col["card_txn_count_24h"]] * 0.8
    x[:, col["card_amount_max_24h"]] = amount * rng.uniform(1.0, 2.0, rows)
    x[:, col["card_amount_mean_7d"]] = np.exp(rng.normal(3.5, 0.5, rows)) * (1.0 + shift)
    x[:, col["card_amount_std_7d"]] = x[:, col["card_amount_mean_7d"]] * 0.6
    x[:, col["card_amount_zscore_7d"]] = rng.normal(np.where(fraud, 3.0, 0.0), 1.0)
    x[:, col["card_merchants_24h"]] = 1 + rng.poisson(2.0, rows)
    x[:, col["card_countries_24h"]] = 1 + rng.poisson(np.where(fraud, 0.8, 0.05))
    x[:, col["card_mcc_distinct_1h"]] = 1 + rng.poisson(0.3, rows)
    x[:, col["card_seconds_since_prev"]] = rng.exponential(np.where(fraud, 300, 40_000))
    x[:, col["merchant_txn_count_1h"]] = 1 + rng.poisson(5.0, rows)
    x[:, col["merchant_txn_count_24h"]] = rng.poisson(80.0, rows)
    x[:, col["merchant_cards_1h"]] = 1 + rng.poisson(4.0, rows)
    x[:, col["merchant_amount_mean_7d"]] = np.exp(rng.normal(3.6, 0.3, rows)) * (1.0 + shift)
    x[:, col["merchant_amount_max_1h"]] = x[:, col["merchant_amount_mean_7d"]] * 3.0
    times = _START_MS + np.sort(rng.integers(0, 30 * 86_400_000, rows)).astype(np.int64)
    split = np.full(rows, 2, dtype=np.int8)
    split[: int(rows * 0.85)] = 1
    split[: int(rows * 0.70)] = 0
    return TrainingSet(
        feature_names=names,
        x=x.astype(np.float32),
        y=y,
        event_time=times,
        event_id=np.array([f"evt-{seed}-{i}" for i in range(rows)], dtype=object),
        split=split,
        data_version=DataVersion.of({"features": 3 + seed, "labels": 1}),
        definition_version=FRAUD_FEATURES.version,
        cutoff_ms=int(times[-1]) + 8 * 86_400_000,
        maturity_ms=7 * 86_400_000,
    )
