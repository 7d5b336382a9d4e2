"""Typed records that cross module boundaries: transactions, labels, dead letters, predictions.

Each record is a frozen `msgspec.Struct` whose fields mirror its Avro schema in
`schemas/avro/` (a frozen dataclass would do, but builds ~10x slower, and the feature
worker builds one record per event). `to_avro()` gives the dict fastavro writes;
`from_avro()` builds the record from a decoded dict. Times are integer epoch milliseconds;
`schemas.codec` decodes Avro `timestamp-millis` as int epoch millis (plain fastavro gives
an aware `datetime`; `from_avro` accepts both).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import msgspec

__all__ = ["Channel", "DeadLetter", "Decision", "Label", "Prediction", "Transaction", "to_millis"]


class Channel(StrEnum):
    """How the card was used."""

    POS = "POS"
    ONLINE = "ONLINE"
    ATM = "ATM"
    CONTACTLESS = "CONTACTLESS"


class Decision(StrEnum):
    """What the fraud service does with a transaction (the Avro `Decision` enum)."""

    APPROVE = "approve"
    REVIEW = "review"
    DECLINE = "decline"


def to_millis(value: int | datetime) -> int:
    """Epoch milliseconds from an int (already millis) or an aware datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return round(value.timestamp() * 1000)
    return int(value)


class Transaction(msgspec.Struct, frozen=True):
    """One card authorization, as produced to the `transactions` topic."""

    event_id: str
    card_id: str
    merchant_id: str
    amount: float
    currency: str
    mcc: str
    country: str
    channel: Channel
    event_time: int  # epoch millis, event time
    card_country: str | None = None  # issuing country, known at authorization
    device_id: str | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "card_id": self.card_id,
            "merchant_id": self.merchant_id,
            "amount": self.amount,
            "currency": self.currency,
            "mcc": self.mcc,
            "country": self.country,
            "channel": self.channel.value,
            "event_time": self.event_time,
            "card_country": self.card_country,
            "device_id": self.device_id,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any]) -> Transaction:
        return cls(
            event_id=data["event_id"],
            card_id=data["card_id"],
            merchant_id=data["merchant_id"],
            amount=float(data["amount"]),
            currency=data["currency"],
            mcc=data["mcc"],
            country=data["country"],
            channel=Channel(data["channel"]),
            event_time=to_millis(data["event_time"]),
            card_country=data.get("card_country"),
            device_id=data.get("device_id"),
        )


class Label(msgspec.Struct, frozen=True):
    """A chargeback outcome for one transaction, arriving days after it."""

    event_id: str
    is_fraud: bool
    label_time: int  # epoch millis, when the label became known
    reason: str

    def to_avro(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "is_fraud": self.is_fraud,
            "label_time": self.label_time,
            "reason": self.reason,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any]) -> Label:
        return cls(
            event_id=data["event_id"],
            is_fraud=bool(data["is_fraud"]),
            label_time=to_millis(data["label_time"]),
            reason=data["reason"],
        )


class DeadLetter(msgspec.Struct, frozen=True):
    """A record that could not be processed, kept whole with the reason and its source."""

    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    payload: bytes | None
    reason: str
    error_type: str
    step: str
    failed_at: int  # epoch millis, wall clock

    def to_avro(self) -> dict[str, Any]:
        return {
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "key": self.key,
            "payload": self.payload,
            "reason": self.reason,
            "error_type": self.error_type,
            "step": self.step,
            "failed_at": self.failed_at,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any]) -> DeadLetter:
        return cls(
            source_topic=data["source_topic"],
            source_partition=int(data["source_partition"]),
            source_offset=int(data["source_offset"]),
            key=data.get("key"),
            payload=data.get("payload"),
            reason=data["reason"],
            error_type=data["error_type"],
            step=data["step"],
            failed_at=to_millis(data["failed_at"]),
        )


class Prediction(msgspec.Struct, frozen=True):
    """One model's score for one transaction, as published to the `predictions` topic.

    A scoring worker builds one per event and scored variant (two per event in shadow).
    """

    event_id: str
    card_id: str
    model_name: str
    model_version: str
    variant: str
    served: bool
    score: float
    decision: Decision
    event_time: int  # epoch millis, the transaction's event time
    scored_at: int  # epoch millis, wall clock
    source_timestamp: int  # epoch millis, Kafka timestamp of the source message

    def to_avro(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "card_id": self.card_id,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "variant": self.variant,
            "served": self.served,
            "score": self.score,
            "decision": self.decision.value,
            "event_time": self.event_time,
            "scored_at": self.scored_at,
            "source_timestamp": self.source_timestamp,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any]) -> Prediction:
        return cls(
            event_id=data["event_id"],
            card_id=data["card_id"],
            model_name=data["model_name"],
            model_version=str(data["model_version"]),
            variant=data["variant"],
            served=bool(data["served"]),
            score=float(data["score"]),
            decision=Decision(data["decision"]),
            event_time=to_millis(data["event_time"]),
            scored_at=to_millis(data["scored_at"]),
            source_timestamp=to_millis(data["source_timestamp"]),
        )
