"""Transaction decoding: the fast own-schema path refuses exactly what the slow path does."""

from __future__ import annotations

import math

import pytest

from schemas.contracts import codec_for
from schemas.records import Channel, DeadLetter, Transaction
from streams.features.decode import (
    Decoded,
    SourceRecord,
    _check_transaction,
    _decoder,
    decode_transaction,
)

_GOOD = Transaction(
    "e-1", "c-1", "m-1", 12.5, "USD", "5411", "US", Channel.POS, 1_767_225_600_000, "US", None
)


def _payloads() -> dict[str, bytes | None]:
    codec = codec_for("Transaction")
    good = codec.encode(_GOOD.to_avro())
    channel_at = good.index(b"\x04US\x00") + 3  # after country "US": the enum index byte
    return {
        "valid": good,
        "tombstone": None,
        "truncated": good[:-3],
        "trailing bytes": good + b"\x00",
        "enum index out of range": good[:channel_at] + b"\x08" + good[channel_at + 1 :],
        "garbage after the header": good[:10] + b"\xff" * 20,
        "negative amount": codec.encode({**_GOOD.to_avro(), "amount": -1.0}),
        "empty card id": codec.encode({**_GOOD.to_avro(), "card_id": ""}),
        "seconds, not millis": codec.encode({**_GOOD.to_avro(), "event_time": 1_767_225_600}),
        "nan amount": codec.encode({**_GOOD.to_avro(), "amount": math.nan}),
    }


@pytest.mark.parametrize("name", list(_payloads()))
def test_fast_and_slow_paths_agree_on_every_payload(name: str) -> None:
    value = _payloads()[name]
    source = SourceRecord("transactions", 2, 41, 1_767_225_600_001, b"c-1", value)
    codec = codec_for("Transaction")
    if value is not None:  # every payload is framed for the codec's own schema: fast path
        assert codec.own_body_offset(value) == 10
    fast = decode_transaction(codec, step="decode")(source)
    slow = _decoder(codec, Transaction.from_avro, _check_transaction, "decode")(source)
    if isinstance(slow, Decoded):
        assert fast == slow
        assert name == "valid"
        return
    assert isinstance(fast, DeadLetter)
    assert (fast.error_type, fast.step) == (slow.error_type, slow.step)
    assert (fast.source_partition, fast.source_offset, fast.payload) == (2, 41, value)
    assert fast.reason
    if slow.error_type == "ValidationError":  # a record that decoded: the same words
        assert fast.reason == slow.reason
