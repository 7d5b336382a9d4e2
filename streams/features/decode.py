"""Decode and validate source records: a `Transaction`, or a `DeadLetter` saying why not."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import msgspec

from schemas.codec import AvroCodec
from schemas.errors import ContractError
from schemas.fast_decode import BodyReader, body_decoder
from schemas.records import DeadLetter, Label, Transaction
from schemas.records_avro import TransactionReader

__all__ = ["Decoded", "SourceRecord", "dead_letter", "decode_label", "decode_transaction"]

T = TypeVar("T")

# 2000-01-01 and 2100-01-01 in epoch ms: anything outside is a unit mistake (s vs ms).
_MIN_TIME_MS = 946_684_800_000
_MAX_TIME_MS = 4_102_444_800_000


class SourceRecord(msgspec.Struct, frozen=True):
    """The parts of a Kafka record the pipeline keeps (no Bytewax types past the source)."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # Kafka record timestamp, epoch ms (producer create time)
    key: bytes | None
    value: bytes | None


class Decoded(msgspec.Struct, Generic[T], frozen=True):
    """A valid record with where it came from (a Struct: one is built per event)."""

    record: T
    partition: int
    offset: int
    timestamp: int


def _check_transaction(txn: Transaction) -> str | None:
    if not math.isfinite(txn.amount) or txn.amount < 0:
        return f"field 'amount': expected a finite amount >= 0, got {txn.amount!r}"
    for name in ("event_id", "card_id", "merchant_id"):
        if not getattr(txn, name):
            return f"field {name!r}: expected a non-empty id, got ''"
    if not _MIN_TIME_MS <= txn.event_time < _MAX_TIME_MS:
        return (
            f"field 'event_time': expected epoch milliseconds between 2000 and 2100, "
            f"got {txn.event_time!r}"
        )
    return None


def dead_letter(
    source: SourceRecord, reason: str, *, error_type: str, step: str, failed_at: int | None = None
) -> DeadLetter:
    """The dead letter of `source`: the whole record, why, and which step refused it."""
    return DeadLetter(
        source_topic=source.topic,
        source_partition=source.partition,
        source_offset=source.offset,
        key=source.key,
        payload=source.value,
        reason=reason,
        error_type=error_type,
        step=step,
        failed_at=int(time.time() * 1000) if failed_at is None else failed_at,
    )


def _decoder(
    codec: AvroCodec,
    build: Callable[[dict[str, object]], T],
    check: Callable[[T], str | None],
    step: str,
    reader: BodyReader[T] | None = None,
) -> Callable[[SourceRecord], Decoded[T] | DeadLetter]:
    decode_value = body_decoder(codec, build, reader)

    def decode(source: SourceRecord) -> Decoded[T] | DeadLetter:
        value = source.value
        if value is None:
            return dead_letter(
                source, "empty record value (tombstone)", error_type="DecodeError", step=step
            )
        try:
            record = decode_value(value)
        except ContractError as exc:
            return dead_letter(source, str(exc), error_type=type(exc).__name__, step=step)
        except (KeyError, ValueError, TypeError) as exc:
            reason = f"record does not fit: {exc!r}"
            return dead_letter(source, reason, error_type="ContractError", step=step)
        problem = check(record)
        if problem is not None:
            return dead_letter(source, problem, error_type="ValidationError", step=step)
        return Decoded(record, source.partition, source.offset, source.timestamp)

    return decode


def decode_transaction(
    codec: AvroCodec, *, step: str
) -> Callable[[SourceRecord], Decoded[Transaction] | DeadLetter]:
    """A decoder of transaction records that never raises for bad input.

    Bodies written with the codec's own schema skip fastavro (`TransactionReader`, ~3x
    faster), if that is the reader's schema; the rest take `codec.decode`.
    """
    return _decoder(codec, Transaction.from_avro, _check_transaction, step, TransactionReader())


def decode_label(
    codec: AvroCodec, *, step: str
) -> Callable[[SourceRecord], Decoded[Label] | DeadLetter]:
    """A decoder of label records that never raises for bad input."""

    def check(label: Label) -> str | None:
        if not label.event_id:
            return "field 'event_id': expected a non-empty id, got ''"
        return None

    return _decoder(codec, Label.from_avro, check, step)
