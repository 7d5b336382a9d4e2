"""The shipped card-fraud feature set: card velocity and amount profile, merchant activity."""

from __future__ import annotations

from datetime import timedelta

from schemas.features.definition import (
    Aggregation,
    Entity,
    FeatureSet,
    FeatureView,
    HourOfDay,
    Identity,
    InSet,
    IsNull,
    Log1p,
    NotEqual,
    OneHot,
)

__all__ = ["CARD", "FRAUD_FEATURES", "MERCHANT"]

_MIN = timedelta(minutes=1)
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)

CARD = Entity("card", key_field="card_id")
MERCHANT = Entity("merchant", key_field="merchant_id")

# Categories where stolen cards are cashed out (digital goods, money transfer, jewelry,
# electronics, gambling).
_HIGH_RISK_MCC = ("5816", "4829", "5944", "5732", "7995")

FRAUD_FEATURES = FeatureSet(
    name="fraud",
    description="Card-not-present and card-present fraud signals for authorization scoring.",
    request_features=(
        Identity("amount", source="amount"),
        Log1p("log_amount", source="amount"),
        OneHot("channel", source="channel", values=("POS", "ONLINE", "ATM", "CONTACTLESS")),
        HourOfDay("hour_of_day"),
        NotEqual("is_foreign", left="country", right="card_country"),
        IsNull("no_device", source="device_id"),
        InSet("high_risk_mcc", source="mcc", values=_HIGH_RISK_MCC),
    ),
    views=(
        FeatureView(
            name="card",
            entity=CARD,
            allowed_lateness=5 * _MIN,
            ttl=30 * _DAY,
            aggregations=(
                Aggregation("card_txn_count_10m", "count", 10 * _MIN),
                Aggregation("card_txn_count_1h", "count", _HOUR),
                Aggregation("card_txn_count_24h", "count", _DAY),
                Aggregation("card_amount_sum_24h", "sum", _DAY, source="amount"),
                Aggregation("card_amount_max_24h", "max", _DAY, source="amount"),
                # A week of spending profile: long enough to know the card, short enough
                # to mature a week into a stream (a month-long window would keep drifting
                # for a month, and leave a month of immature history to burn).
                Aggregation("card_amount_mean_7d", "mean", 7 * _DAY, source="amount"),
                Aggregation("card_amount_std_7d", "std", 7 * _DAY, source="amount"),
                Aggregation("card_amount_zscore_7d", "zscore", 7 * _DAY, source="amount"),
                Aggregation("card_merchants_24h", "count_distinct", _DAY, source="merchant_id"),
                Aggregation("card_countries_24h", "count_distinct", _DAY, source="country"),
                Aggregation("card_mcc_distinct_1h", "count_distinct", _HOUR, source="mcc"),
                Aggregation("card_seconds_since_prev", "seconds_since_previous", 7 * _DAY),
            ),
        ),
        FeatureView(
            name="merchant",
            entity=MERCHANT,
            # The merchant view merges every card partition. The source hands them out in
            # event-time order (streams.merge), but a partition that fell behind and
            # catches up live, or a producer delivering late, can still bring disorder.
            allowed_lateness=_DAY,
            ttl=30 * _DAY,
            aggregations=(
                Aggregation("merchant_txn_count_1h", "count", _HOUR),
                Aggregation("merchant_txn_count_24h", "count", _DAY),
                Aggregation("merchant_cards_1h", "count_distinct", _HOUR, source="card_id"),
                Aggregation("merchant_amount_mean_7d", "mean", 7 * _DAY, source="amount"),
                Aggregation("merchant_amount_max_1h", "max", _HOUR, source="amount"),
            ),
        ),
    ),
)
