"""One hour window of the world: legit traffic plus fraud, as records in delivery order.

Everything in window `w` is a pure function of (config, `w`): its random stream is seeded
from (seed, w), and the day-level schedules it reads (trips, compromised merchants) from
(seed, day). That is what makes runs resumable at any event.
"""

from __future__ import annotations

import numpy as np

from schemas.records import Transaction
from streams.generator.batch import Batch, Pattern, concat
from streams.generator.catalog import COUNTRIES, MCCS
from streams.generator.chargebacks import label_delays
from streams.generator.clock import (
    DAY_MS,
    WINDOW_MS,
    day_of,
    delivery_delays,
    event_times,
    hour_weight,
    window_start,
)
from streams.generator.config import WorldConfig
from streams.generator.fraud import (
    ATO_MEAN_EVENTS,
    CAMPAIGN_HOURS_PER_DAY,
    SHARES,
    TESTING_MEAN_EVENTS,
    Campaign,
    account_takeovers,
    campaigns_on,
    card_testing,
    compromised_merchant,
)
from streams.generator.legit import CHANNELS, legit_batch, trip_countries
from streams.generator.population import Population, build_population
from streams.generator.seeding import Stream, rng_for

__all__ = ["Item", "WindowMaker"]

# (produced_at, window, ordinal, transaction, pattern, label_delay): tuples order by
# delivery time, then window, then ordinal; the transaction is never compared.
Item = tuple[int, int, int, Transaction, int, int]


class WindowMaker:
    """Builds hour windows for one config; caches the day-level schedules it reuses."""

    def __init__(self, config: WorldConfig) -> None:
        self.config = config
        self.population: Population = build_population(
            seed=config.seed, cards=config.cards, merchants=config.merchants
        )
        pop = self.population
        self._card_country = [COUNTRIES[c].code for c in pop.card_country.tolist()]
        self._card_currency = [COUNTRIES[c].currency for c in pop.card_country.tolist()]
        self._merchant_country = [COUNTRIES[c].code for c in pop.merchant_country.tolist()]
        self._merchant_mcc = [MCCS[m].mcc for m in pop.merchant_mcc.tolist()]
        self._trips: dict[int, np.ndarray] = {}
        self._campaigns: dict[int, list[Campaign]] = {}

    def _trips_on(self, day: int) -> np.ndarray:
        if day not in self._trips:
            self._trips.clear()
            self._trips[day] = trip_countries(
                seed=self.config.seed, population=self.population, day=day
            )
        return self._trips[day]

    def _campaigns_near(self, day: int) -> list[Campaign]:
        found: list[Campaign] = []
        for d in (day - 1, day):
            if d < 0:
                continue
            if d not in self._campaigns:
                if len(self._campaigns) > 4:
                    self._campaigns.pop(min(self._campaigns))
                day_start = self.config.start_ms + d * DAY_MS
                self._campaigns[d] = campaigns_on(
                    seed=self.config.seed, population=self.population, day=d, day_start=day_start
                )
            found.extend(self._campaigns[d])
        return found

    def _batch(self, window: int, rng: np.random.Generator) -> Batch:
        cfg, pop = self.config, self.population
        start = window_start(cfg.start_ms, window)
        day = day_of(cfg.start_ms, start)
        hourly = cfg.events_per_day / 24
        fraud_hourly = hourly * cfg.fraud_rate
        n_legit = int(rng.poisson(hourly * (1 - cfg.fraud_rate) * hour_weight(start)))
        times = event_times(rng, n_legit, start, start + WINDOW_MS)
        testing = fraud_hourly * SHARES[Pattern.CARD_TESTING] / TESTING_MEAN_EVENTS
        takeover = fraud_hourly * SHARES[Pattern.ACCOUNT_TAKEOVER] / ATO_MEAN_EVENTS
        compromise = cfg.events_per_day * cfg.fraud_rate * SHARES[Pattern.COMPROMISED_MERCHANT]
        abroad = self._trips_on(day)
        seed = cfg.seed
        return concat(
            [
                legit_batch(
                    seed=seed, window=window, rng=rng, population=pop, times=times, abroad=abroad
                ),
                card_testing(
                    seed=seed,
                    window=window,
                    rng=rng,
                    population=pop,
                    start=start,
                    episodes=int(rng.poisson(testing)),
                ),
                account_takeovers(
                    seed=seed,
                    window=window,
                    rng=rng,
                    population=pop,
                    start=start,
                    episodes=int(rng.poisson(takeover)),
                ),
                compromised_merchant(
                    seed=seed,
                    window=window,
                    rng=rng,
                    population=pop,
                    start=start,
                    campaigns=self._campaigns_near(day),
                    events_per_hour=compromise / CAMPAIGN_HOURS_PER_DAY,
                ),
            ]
        )

    def items(self, window: int) -> list[Item]:
        """Window `window`'s transactions, sorted by delivery time (ties: event order)."""
        cfg, pop = self.config, self.population
        rng = rng_for(cfg.seed, Stream.WINDOW, window)
        batch = self._batch(window, rng)
        order = np.argsort(batch.time, kind="stable")
        n = order.size
        times = batch.time[order]
        produced = times + delivery_delays(
            rng, n, fraction=cfg.out_of_order, max_delay_ms=cfg.max_delay_ms
        )
        patterns = batch.pattern[order]
        chargeback = label_delays(rng, patterns)
        release = np.argsort(produced, kind="stable").tolist()

        time_l, produced_l = times.tolist(), produced.tolist()
        card_l, merchant_l = batch.card[order].tolist(), batch.merchant[order].tolist()
        amount_l, channel_l = batch.amount[order].tolist(), batch.channel[order].tolist()
        pattern_l, chargeback_l = patterns.tolist(), chargeback.tolist()
        device_l = [batch.device[i] for i in order.tolist()]
        card_ids, merchant_ids = pop.card_ids, pop.merchant_ids
        card_country, card_currency = self._card_country, self._card_currency
        m_country, m_mcc = self._merchant_country, self._merchant_mcc
        prefix = f"e{cfg.seed}-{window}-"
        items: list[Item] = []
        append = items.append
        for j in release:
            card, merchant = card_l[j], merchant_l[j]
            txn = Transaction(
                event_id=prefix + str(j),
                card_id=card_ids[card],
                merchant_id=merchant_ids[merchant],
                amount=amount_l[j],
                currency=card_currency[card],
                mcc=m_mcc[merchant],
                country=m_country[merchant],
                channel=CHANNELS[channel_l[j]],
                event_time=time_l[j],
                card_country=card_country[card],
                device_id=device_l[j],
            )
            append((produced_l[j], window, j, txn, pattern_l[j], chargeback_l[j]))
        return items
