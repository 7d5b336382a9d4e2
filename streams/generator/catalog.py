"""The fixed vocabulary of the world: countries, currencies and merchant categories.

Amounts are in the card's billing currency; the home countries are chosen with currencies
near parity so amounts compare across cards without an FX table. Merchant countries add a
few places where home cards rarely shop (where account takeovers like to cash out).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COUNTRIES", "MCCS", "Country", "MerchantCategory"]


@dataclass(frozen=True, slots=True)
class Country:
    """A country: ISO code, billing currency, share of issued cards and of merchants."""

    code: str
    currency: str
    card_share: float
    merchant_share: float


@dataclass(frozen=True, slots=True)
class MerchantCategory:
    """A merchant category (MCC) and how it is used.

    `log_amount` shifts the card's typical log-amount; `online` is the share of these
    merchants that sell online; `popularity` weights how often cards shop there;
    `ato_target`/`testing_target` mark what account takeover and card testing favour.
    """

    mcc: str
    name: str
    log_amount: float
    online: float
    popularity: float
    ato_target: bool = False
    testing_target: bool = False
    drift_target: bool = False


COUNTRIES: tuple[Country, ...] = (
    Country("US", "USD", 0.40, 0.34),
    Country("GB", "GBP", 0.12, 0.10),
    Country("DE", "EUR", 0.10, 0.09),
    Country("FR", "EUR", 0.08, 0.08),
    Country("ES", "EUR", 0.05, 0.06),
    Country("IT", "EUR", 0.05, 0.06),
    Country("NL", "EUR", 0.04, 0.04),
    Country("CA", "CAD", 0.07, 0.06),
    Country("AU", "AUD", 0.05, 0.05),
    Country("CH", "CHF", 0.04, 0.04),
    # Merchant-only countries: seldom visited by legitimate cards.
    Country("BR", "BRL", 0.0, 0.02),
    Country("NG", "NGN", 0.0, 0.02),
    Country("RO", "RON", 0.0, 0.02),
    Country("ID", "IDR", 0.0, 0.02),
)

MCCS: tuple[MerchantCategory, ...] = (
    MerchantCategory("5411", "grocery", 0.0, 0.05, 10.0),
    MerchantCategory("5812", "restaurants", 0.1, 0.0, 8.0),
    MerchantCategory("5814", "fast_food", -0.9, 0.05, 8.0, drift_target=True),
    MerchantCategory("5541", "fuel", 0.2, 0.0, 5.0),
    MerchantCategory("5999", "misc_retail", 0.3, 0.3, 5.0),
    MerchantCategory("5311", "department_store", 0.6, 0.3, 3.0),
    MerchantCategory("5691", "clothing", 0.6, 0.4, 3.0),
    MerchantCategory("5912", "pharmacy", -0.3, 0.1, 3.0),
    MerchantCategory("4121", "rideshare", -0.3, 1.0, 3.0, drift_target=True),
    MerchantCategory(
        "5815", "digital_goods", -1.2, 1.0, 3.0, testing_target=True, drift_target=True
    ),
    MerchantCategory("5816", "games", -0.6, 1.0, 1.5, testing_target=True, drift_target=True),
    MerchantCategory("6011", "atm", 1.0, 0.0, 2.0),
    MerchantCategory("4511", "airlines", 2.0, 0.9, 0.4),
    MerchantCategory("7011", "hotels", 1.5, 0.5, 0.6),
    MerchantCategory("5732", "electronics", 1.5, 0.6, 1.0, ato_target=True),
    MerchantCategory("5944", "jewelry", 1.8, 0.3, 0.3, ato_target=True),
    MerchantCategory("4829", "money_transfer", 1.2, 0.8, 0.3, ato_target=True),
    MerchantCategory("5947", "gift_cards", 0.5, 0.7, 0.5, True, True),
)
