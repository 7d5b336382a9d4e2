"""The cards and merchants of the world, drawn once per seed as numpy columns.

Cards have a home country, a spending profile (lognormal log-amount mean and spread), an
activity weight (heavy-tailed: a few cards shop a lot), a few preferred merchants and one
to three devices. Merchants have a country, a category (MCC), an online flag and a
popularity weight. Merchant rows are sorted by country so "a popular merchant in country
c" is one `searchsorted` on a cumulative weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streams.generator.catalog import COUNTRIES, MCCS
from streams.generator.errors import GeneratorError
from streams.generator.seeding import Stream, device_id, rng_for

__all__ = ["PREFERRED_MERCHANTS", "Population", "build_population"]

PREFERRED_MERCHANTS = 8
_MIN_MERCHANTS_PER_COUNTRY = 3

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True, eq=False)
class Population:
    """Cards and merchants as parallel arrays; indexes are card and merchant numbers."""

    card_ids: list[str]
    card_country: Ints
    card_mu: Floats
    card_sigma: Floats
    card_contactless: Floats
    card_activity_cdf: Floats
    card_preferred: Ints  # shape (cards, PREFERRED_MERCHANTS)
    card_devices: list[tuple[str, ...]]
    country_cards: list[Ints]  # per country: the cards issued there
    merchant_ids: list[str]
    merchant_country: Ints
    merchant_mcc: Ints
    merchant_online: Bools
    merchant_cdf: Floats  # cumulative popularity over merchants (sorted by country)
    country_cdf_lo: Floats
    country_cdf_hi: Floats
    country_first: Ints  # first merchant row of each country
    country_end: Ints  # one past the last merchant row of each country
    testing_pool: Ints  # online merchants in card-testing categories
    ato_pool: list[Ints]  # per country: merchants in account-takeover categories
    drift_pool: list[Ints]  # per country: merchants the merchant-mix drift moves to

    @property
    def cards(self) -> int:
        return len(self.card_ids)

    @property
    def merchants(self) -> int:
        return len(self.merchant_ids)

    def popular_merchants(self, country: Ints, uniform: Floats) -> Ints:
        """A merchant in each `country`, by popularity, from uniforms in [0, 1)."""
        lo = self.country_cdf_lo[country]
        u = lo + uniform * (self.country_cdf_hi[country] - lo)
        idx = np.searchsorted(self.merchant_cdf, u, side="right").astype(np.int64)
        return np.clip(idx, self.country_first[country], self.country_end[country] - 1)

    def active_cards(self, uniform: Floats) -> Ints:
        """Cards drawn by activity weight from uniforms in [0, 1)."""
        idx = np.searchsorted(self.card_activity_cdf, uniform, side="right")
        return np.minimum(idx, self.cards - 1).astype(np.int64)


def _shares(values: list[float]) -> Floats:
    array = np.asarray(values, dtype=np.float64)
    shares: Floats = array / array.sum()
    return shares


def _merchant_countries(rng: np.random.Generator, merchants: int) -> Ints:
    n_countries = len(COUNTRIES)
    base = np.repeat(np.arange(n_countries), _MIN_MERCHANTS_PER_COUNTRY)
    shares = _shares([c.merchant_share for c in COUNTRIES])
    rest = rng.choice(n_countries, size=merchants - base.size, p=shares)
    return np.sort(np.concatenate([base, rest])).astype(np.int64)


def _pools(countries: Ints, mask: Bools) -> list[Ints]:
    return [np.flatnonzero(mask & (countries == c)).astype(np.int64) for c in range(len(COUNTRIES))]


def build_population(*, seed: int, cards: int, merchants: int) -> Population:
    """Draw `cards` cards and `merchants` merchants for `seed` (same inputs, same world)."""
    floor = len(COUNTRIES) * _MIN_MERCHANTS_PER_COUNTRY
    if cards < 1 or merchants < floor:
        msg = f"expected cards >= 1 and merchants >= {floor}, got {cards=}, {merchants=}"
        raise GeneratorError(msg)
    rng = rng_for(seed, Stream.POPULATION)
    n_countries = len(COUNTRIES)

    m_country = _merchant_countries(rng, merchants)
    mcc_pop = _shares([m.popularity for m in MCCS])
    m_mcc = rng.choice(len(MCCS), size=merchants, p=mcc_pop).astype(np.int64)
    online_share = np.array([m.online for m in MCCS])
    m_online = rng.random(merchants) < online_share[m_mcc]
    popularity = rng.pareto(1.5, size=merchants) + 1.0
    cdf = np.cumsum(popularity)
    cdf /= cdf[-1]
    first = np.searchsorted(m_country, np.arange(n_countries), side="left").astype(np.int64)
    end = np.searchsorted(m_country, np.arange(n_countries), side="right").astype(np.int64)
    cdf_lo = np.where(first > 0, cdf[np.maximum(first - 1, 0)], 0.0)
    cdf_hi = cdf[end - 1]

    home_shares = _shares([c.card_share for c in COUNTRIES])
    c_country = rng.choice(n_countries, size=cards, p=home_shares).astype(np.int64)
    c_mu = rng.normal(np.log(32.0), 0.45, size=cards)
    c_sigma = rng.uniform(0.45, 0.85, size=cards)
    c_contactless = rng.beta(3.0, 2.0, size=cards)
    activity = rng.gamma(1.3, 1.0, size=cards)
    activity_cdf = np.cumsum(activity)
    activity_cdf /= activity_cdf[-1]
    home = np.repeat(c_country, PREFERRED_MERCHANTS)
    u = rng.random(home.size)
    lo = cdf_lo[home]
    preferred_flat = np.searchsorted(cdf, lo + u * (cdf_hi[home] - lo), side="right")
    preferred = np.clip(preferred_flat, first[home], end[home] - 1).astype(np.int64)
    n_devices = rng.integers(1, 4, size=cards)

    testing = np.array([m.testing_target for m in MCCS])[m_mcc]
    ato = np.array([m.ato_target for m in MCCS])[m_mcc]
    drift = np.array([m.drift_target for m in MCCS])[m_mcc]
    testing_pool = np.flatnonzero(testing & m_online).astype(np.int64)
    if testing_pool.size == 0:
        testing_pool = np.flatnonzero(m_online).astype(np.int64)
    if testing_pool.size == 0:
        testing_pool = np.arange(merchants, dtype=np.int64)
    return Population(
        card_ids=[f"c{i:07d}" for i in range(cards)],
        card_country=c_country,
        card_mu=c_mu,
        card_sigma=c_sigma,
        card_contactless=c_contactless,
        card_activity_cdf=activity_cdf,
        card_preferred=preferred.reshape(cards, PREFERRED_MERCHANTS),
        country_cards=[np.flatnonzero(c_country == c).astype(np.int64) for c in range(n_countries)],
        card_devices=[
            tuple(device_id(seed, 1, i, k) for k in range(n))
            for i, n in enumerate(n_devices.tolist())
        ],
        merchant_ids=[f"m{i:06d}" for i in range(merchants)],
        merchant_country=m_country,
        merchant_mcc=m_mcc,
        merchant_online=m_online,
        merchant_cdf=cdf,
        country_cdf_lo=cdf_lo,
        country_cdf_hi=cdf_hi,
        country_first=first,
        country_end=end,
        testing_pool=testing_pool,
        ato_pool=_pools(m_country, ato),
        drift_pool=_pools(m_country, drift),
    )
