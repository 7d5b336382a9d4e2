"""Legitimate traffic: cards shopping at their usual places, travelling, sometimes splurging.

Per window the count is Poisson with the daily rhythm; cards are drawn by activity. A card
shops at one of its preferred merchants (78%) or a popular merchant at home; a card on a
trip (1-5 days, started with probability `_TRIP_START` per card-day) makes 70% of its
purchases abroad. Amounts are lognormal around the card's profile shifted by category, and
0.4% are big purchases (x4-12): legit traffic that looks odd on purpose.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from schemas.records import Channel
from streams.generator.batch import Batch, Pattern
from streams.generator.catalog import COUNTRIES, MCCS
from streams.generator.population import PREFERRED_MERCHANTS, Population
from streams.generator.seeding import Stream, device_id, rng_for

__all__ = [
    "CHANNELS",
    "MCC_LOG_AMOUNT",
    "carries_device",
    "channels_for",
    "legit_batch",
    "trip_countries",
]

CHANNELS: tuple[Channel, ...] = (Channel.POS, Channel.ONLINE, Channel.ATM, Channel.CONTACTLESS)
_POS, _ONLINE, _ATM, _CONTACTLESS = range(4)
_ATM_MCC = next(i for i, m in enumerate(MCCS) if m.mcc == "6011")
MCC_LOG_AMOUNT = np.array([m.log_amount for m in MCCS])
_PREFERRED = 0.78
_TRIP_START = 0.003
_TRIP_MAX_DAYS = 5
_ABROAD_ON_TRIP = 0.7
_BIG_PURCHASE = 0.004
_NEW_DEVICE = 0.01
_HOME_COUNTRIES = np.array([i for i, c in enumerate(COUNTRIES) if c.card_share > 0])


def carries_device(channel: int) -> bool:
    """Whether a transaction on channel code `channel` reports a device (online, wallet)."""
    return channel in (_ONLINE, _CONTACTLESS)


def trip_countries(*, seed: int, population: Population, day: int) -> npt.NDArray[np.int64]:
    """Per card, the country it is visiting on `day`, or -1 at home."""
    abroad = np.full(population.cards, -1, dtype=np.int64)
    for started in range(max(day - _TRIP_MAX_DAYS + 1, 0), day + 1):
        rng = rng_for(seed, Stream.TRAVEL, started)
        n = rng.binomial(population.cards, _TRIP_START)
        cards = rng.choice(population.cards, size=n, replace=False)
        days = rng.integers(1, _TRIP_MAX_DAYS + 1, size=n)
        dest = _HOME_COUNTRIES[rng.integers(0, _HOME_COUNTRIES.size, size=n)]
        on_trip = (started + days > day) & (dest != population.card_country[cards])
        abroad[cards[on_trip]] = dest[on_trip]
    return abroad


def channels_for(
    population: Population, merchants: npt.NDArray[np.int64], contactless: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int64]:
    """Channel codes: online merchants ONLINE, ATMs ATM, else CONTACTLESS or POS."""
    physical = np.where(contactless, _CONTACTLESS, _POS)
    by_mcc = np.where(population.merchant_mcc[merchants] == _ATM_MCC, _ATM, physical)
    return np.where(population.merchant_online[merchants], _ONLINE, by_mcc).astype(np.int64)


def _devices(
    seed: int,
    window: int,
    population: Population,
    cards: npt.NDArray[np.int64],
    channels: npt.NDArray[np.int64],
    uniform: npt.NDArray[np.float64],
) -> list[str | None]:
    devices: list[str | None] = []
    card_devices = population.card_devices
    for j, (card, channel, u) in enumerate(
        zip(cards.tolist(), channels.tolist(), uniform.tolist(), strict=True)
    ):
        if not carries_device(channel):
            devices.append(None)
        elif u < _NEW_DEVICE:
            devices.append(device_id(seed, 2, window, j))
        else:
            own = card_devices[card]
            devices.append(own[int(u * len(own)) % len(own)])
    return devices


def legit_batch(
    *,
    seed: int,
    window: int,
    rng: np.random.Generator,
    population: Population,
    times: npt.NDArray[np.int64],
    abroad: npt.NDArray[np.int64],
) -> Batch:
    """Legitimate transactions at the given sorted event `times`."""
    n = times.size
    cards = population.active_cards(rng.random(n))
    home = population.card_country[cards]
    slot = rng.integers(0, PREFERRED_MERCHANTS, size=n)
    preferred = population.card_preferred[cards, slot]
    trip = abroad[cards]
    away = (trip >= 0) & (rng.random(n) < _ABROAD_ON_TRIP)
    country = np.where(away, trip, home)
    popular = population.popular_merchants(country, rng.random(n))
    use_preferred = ~away & (rng.random(n) < _PREFERRED)
    merchants = np.where(use_preferred, preferred, popular)
    log_amount = population.card_mu[cards] + MCC_LOG_AMOUNT[population.merchant_mcc[merchants]]
    amount = np.exp(rng.normal(log_amount, population.card_sigma[cards]))
    big = rng.random(n) < _BIG_PURCHASE
    amount = np.where(big, amount * rng.uniform(4.0, 12.0, size=n), amount)
    contactless = rng.random(n) < population.card_contactless[cards]
    channels = channels_for(population, merchants, contactless)
    return Batch(
        time=times,
        card=cards,
        merchant=merchants.astype(np.int64),
        amount=np.round(np.maximum(amount, 0.5), 2).astype(np.float64),
        channel=channels,
        device=_devices(seed, window, population, cards, channels, rng.random(n)),
        pattern=np.full(n, int(Pattern.LEGIT), dtype=np.int64),
    )
