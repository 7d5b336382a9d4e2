"""The three fraud patterns, each with the signature windowed features can learn.

- **card testing**: a bot checks a stolen card with a burst of small amounts (0.5-5, some
  ~20) across many distinct online merchants within minutes (gaps ~15 s), from one new
  device. 20% of bursts are short (2-4 transactions) and hard to tell from legit.
- **account takeover**: 1-6 large purchases (x3.3-15 the card's typical amount; 25% of
  takeovers only x1.2-2.5) over up to 45 minutes, 70% in a foreign country, mostly at
  electronics/jewelry/money-transfer/gift-card merchants, from a new device (90%).
- **compromised merchant**: a merchant is compromised for 1-6 hours (about 4
  campaigns a day); during it, many distinct cards (70% issued in the merchant's country)
  are charged there at ~x1.3-3.3 their typical amount. Campaigns are scheduled per day,
  so they span hour windows.

Shares of fraud events: 40% card testing, 30% takeover, 30% compromised merchant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streams.generator.batch import Batch, Pattern
from streams.generator.catalog import COUNTRIES
from streams.generator.clock import DAY_MS, WINDOW_MS
from streams.generator.legit import MCC_LOG_AMOUNT, carries_device, channels_for
from streams.generator.population import Population
from streams.generator.seeding import Stream, device_id, rng_for

__all__ = [
    "ATO_MEAN_EVENTS",
    "CAMPAIGN_HOURS_PER_DAY",
    "SHARES",
    "TESTING_MEAN_EVENTS",
    "Campaign",
    "account_takeovers",
    "campaigns_on",
    "card_testing",
    "compromised_merchant",
]

SHARES = {
    Pattern.CARD_TESTING: 0.4,
    Pattern.ACCOUNT_TAKEOVER: 0.3,
    Pattern.COMPROMISED_MERCHANT: 0.3,
}
_SHORT_BURST = 0.2
TESTING_MEAN_EVENTS = _SHORT_BURST * 3.0 + (1 - _SHORT_BURST) * 16.0
_TESTING_GAP_MS = 15_000
_TESTING_OFF_POOL = 0.15
ATO_MEAN_EVENTS = 1.0 + 1.5
_ATO_FOREIGN = 0.7
_ATO_QUIET = 0.25
_ATO_NEW_DEVICE = 0.9
_CAMPAIGNS_PER_DAY = 4.0
_CAMPAIGN_HOURS = (1.0, 6.0)
_CAMPAIGN_LOCAL_CARDS = 0.7
CAMPAIGN_HOURS_PER_DAY = _CAMPAIGNS_PER_DAY * sum(_CAMPAIGN_HOURS) / 2
_FOREIGN_WEIGHT = np.array(
    [c.merchant_share * (4.0 if c.card_share == 0 else 1.0) for c in COUNTRIES]
)

Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Campaign:
    """A merchant compromised during [start_ms, end_ms)."""

    merchant: int
    start_ms: int
    end_ms: int


def _batch(pattern: Pattern, rows: list[tuple[int, int, int, float, int, str | None]]) -> Batch:
    rows.sort(key=lambda r: r[0])
    return Batch(
        time=np.array([r[0] for r in rows], dtype=np.int64),
        card=np.array([r[1] for r in rows], dtype=np.int64),
        merchant=np.array([r[2] for r in rows], dtype=np.int64),
        amount=np.array([r[3] for r in rows], dtype=np.float64),
        channel=np.array([r[4] for r in rows], dtype=np.int64),
        device=[r[5] for r in rows],
        pattern=np.full(len(rows), int(pattern), dtype=np.int64),
    )


def _channel(population: Population, merchant: int) -> int:
    merchants = np.array([merchant], dtype=np.int64)
    return int(channels_for(population, merchants, np.array([False]))[0])


def card_testing(
    *,
    seed: int,
    window: int,
    rng: np.random.Generator,
    population: Population,
    start: int,
    episodes: int,
) -> Batch:
    """`episodes` card-testing bursts starting in the window beginning at `start`."""
    rows: list[tuple[int, int, int, float, int, str | None]] = []
    for episode in range(episodes):
        short = rng.random() < _SHORT_BURST
        size = int(rng.integers(2, 5)) if short else 6 + int(rng.poisson(10.0))
        card = int(rng.integers(0, population.cards))
        gaps = rng.exponential(_TESTING_GAP_MS, size=size).astype(np.int64) + 200
        gaps[0] = 0
        offsets = np.cumsum(gaps)
        t0 = start + int(rng.integers(0, max(WINDOW_MS - int(offsets[-1]), 1)))
        pool = population.testing_pool
        picks = rng.choice(pool, size=size, replace=size > pool.size)
        device = device_id(seed, 3, window, episode)
        for k in range(size):
            merchant = int(picks[k])
            if rng.random() < _TESTING_OFF_POOL:
                country = rng.choice(len(COUNTRIES), p=_FOREIGN_WEIGHT / _FOREIGN_WEIGHT.sum())
                merchant = int(population.popular_merchants(np.array([country]), rng.random(1))[0])
            small = rng.random() < 0.85
            amount = rng.uniform(0.5, 5.0) if small else float(np.exp(rng.normal(np.log(20), 0.5)))
            channel = _channel(population, merchant)
            used = device if carries_device(channel) else None
            rows.append((t0 + int(offsets[k]), card, merchant, round(amount, 2), channel, used))
    return _batch(Pattern.CARD_TESTING, rows)


def account_takeovers(
    *,
    seed: int,
    window: int,
    rng: np.random.Generator,
    population: Population,
    start: int,
    episodes: int,
) -> Batch:
    """`episodes` account takeovers starting in the window beginning at `start`."""
    rows: list[tuple[int, int, int, float, int, str | None]] = []
    for episode in range(episodes):
        card = int(population.active_cards(rng.random(1))[0])
        home = int(population.card_country[card])
        size = min(1 + int(rng.poisson(1.5)), 6)
        t0 = start + int(rng.integers(0, WINDOW_MS - 45 * 60_000))
        times = np.sort(t0 + rng.integers(0, 45 * 60_000, size=size))
        if rng.random() < _ATO_FOREIGN:
            weights = _FOREIGN_WEIGHT.copy()
            weights[home] = 0.0
            country = int(rng.choice(len(COUNTRIES), p=weights / weights.sum()))
        else:
            country = home
        quiet = rng.random() < _ATO_QUIET
        own = population.card_devices[card]
        new_device = rng.random() < _ATO_NEW_DEVICE
        device = device_id(seed, 4, window, episode) if new_device else own[0]
        pool = population.ato_pool[country]
        for k in range(size):
            if pool.size and rng.random() < 0.8:
                merchant = int(pool[rng.integers(0, pool.size)])
            else:
                merchant = int(population.popular_merchants(np.array([country]), rng.random(1))[0])
            lift = rng.uniform(0.2, 0.9) if quiet else rng.uniform(1.2, 2.7)
            mcc_shift = MCC_LOG_AMOUNT[population.merchant_mcc[merchant]] / 2
            amount = float(np.exp(population.card_mu[card] + mcc_shift + lift))
            channel = _channel(population, merchant)
            used = device if carries_device(channel) else None
            rows.append((int(times[k]), card, merchant, round(amount, 2), channel, used))
    return _batch(Pattern.ACCOUNT_TAKEOVER, rows)


def campaigns_on(*, seed: int, population: Population, day: int, day_start: int) -> list[Campaign]:
    """The compromised-merchant campaigns that start on `day` (beginning at `day_start`)."""
    rng = rng_for(seed, Stream.COMPROMISE, day)
    campaigns = []
    for _ in range(int(rng.poisson(_CAMPAIGNS_PER_DAY))):
        merchant = int(rng.integers(0, population.merchants))
        begin = day_start + int(rng.integers(0, DAY_MS))
        hours = rng.uniform(*_CAMPAIGN_HOURS)
        campaigns.append(Campaign(merchant, begin, begin + int(hours * WINDOW_MS)))
    return campaigns


def compromised_merchant(
    *,
    seed: int,
    window: int,
    rng: np.random.Generator,
    population: Population,
    start: int,
    campaigns: list[Campaign],
    events_per_hour: float,
) -> Batch:
    """Fraud at the merchants of `campaigns` during the window beginning at `start`."""
    rows: list[tuple[int, int, int, float, int, str | None]] = []
    end = start + WINDOW_MS
    for c_idx, campaign in enumerate(campaigns):
        lo, hi = max(start, campaign.start_ms), min(end, campaign.end_ms)
        if hi <= lo:
            continue
        n = int(rng.poisson(events_per_hour * (hi - lo) / WINDOW_MS))
        times = rng.integers(lo, hi, size=n)
        cards = rng.integers(0, population.cards, size=n)
        local = population.country_cards[int(population.merchant_country[campaign.merchant])]
        if local.size:
            at_home = rng.random(n) < _CAMPAIGN_LOCAL_CARDS
            cards = np.where(at_home, local[rng.integers(0, local.size, size=n)], cards)
        lift = rng.uniform(0.3, 1.2, size=n)
        mcc_shift = MCC_LOG_AMOUNT[population.merchant_mcc[campaign.merchant]]
        amounts = np.exp(population.card_mu[cards] + mcc_shift + lift)
        channel = _channel(population, campaign.merchant)
        for k in range(n):
            device = device_id(seed, 5, window, c_idx, k) if carries_device(channel) else None
            row = (int(times[k]), int(cards[k]), campaign.merchant, round(float(amounts[k]), 2))
            rows.append((*row, channel, device))
    return _batch(Pattern.COMPROMISED_MERCHANT, rows)
