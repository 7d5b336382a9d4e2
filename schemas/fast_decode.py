"""Decoding with a fast path: own-schema bodies read directly, everything else by the codec.

`records_avro.TransactionReader` and `features.vector_avro.FeatureVectorReader` read the
body of a record written with exactly their schema several times faster than fastavro.
`body_decoder` puts one in front of an `AvroCodec`: records whose header names the codec's
own schema (`AvroCodec.own_body_offset`) take the reader, any other writer schema, framing
or JSON takes `AvroCodec.decode`. Both raise `DecodeError` for bad bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from schemas.codec import AvroCodec

__all__ = ["BodyReader", "body_decoder"]

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class BodyReader(Protocol[R_co]):
    """Reads an Avro body written with one exact schema straight into a record."""

    @property
    def fingerprint(self) -> bytes: ...

    def read(self, data: bytes, offset: int) -> R_co: ...


def body_decoder(
    codec: AvroCodec, build: Callable[[dict[str, Any]], R], reader: BodyReader[R] | None = None
) -> Callable[[bytes], R]:
    """`data -> build(codec.decode(data))`, with `reader` taking bodies in its own schema.

    `reader` is used only if it reads exactly the codec's schema.
    """
    if reader is None or reader.fingerprint != codec.fingerprint:
        return lambda data: build(codec.decode(data))
    read, own_offset, decode = reader.read, codec.own_body_offset, codec.decode

    def fast(data: bytes) -> R:
        offset = own_offset(data)
        return build(decode(data)) if offset is None else read(data, offset)

    return fast
