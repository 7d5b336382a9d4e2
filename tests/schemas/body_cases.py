"""Helpers shared by the tests of the own-schema Avro body readers and writers."""

from __future__ import annotations

from functools import cache

from confluent_kafka.schema_registry import SchemaRegistryClient
from hypothesis import strategies as st

from schemas.codec import AvroCodec, DecodeError, Framing
from schemas.contracts import SchemaName, load_schema


@cache
def codecs(name: SchemaName) -> tuple[AvroCodec, AvroCodec, AvroCodec]:
    """Single-object producer, Confluent producer (topic `name`), consumer (registry only)."""
    schema = load_schema(name)
    registry = SchemaRegistryClient.new_client({"url": f"mock://body-cases-{name}"})
    return (
        AvroCodec(schema),
        AvroCodec(schema, registry=registry, topic=name),
        AvroCodec(schema, registry=registry),
    )


def producer(name: SchemaName, framing: Framing) -> AvroCodec:
    """The producer codec of `codecs(name)` that frames as `framing`."""
    single_object, confluent, _ = codecs(name)
    return single_object if framing is Framing.SINGLE_OBJECT else confluent


def resolved_offset(consumer: AvroCodec, data: bytes) -> int:
    """The body offset of `data` once `consumer` has resolved its header by decoding it."""
    consumer.decode(data)
    offset = consumer.own_body_offset(data)
    assert offset is not None
    return offset


def names_the_problem(error: DecodeError, prefix: str) -> bool:
    """Whether `error` is the codec's message for `prefix` naming a field or trailing bytes."""
    message = str(error)
    return message.startswith(prefix) and (
        "field '" in message or "trailing bytes after the record" in message
    )


def varint(n: int) -> bytes:
    """`n` as an Avro zigzag varint (n >= 2**63 unsigned, to build overlong ones)."""
    z = (n << 1) ^ (n >> 63) if n < 2**63 else n << 1
    out = bytearray()
    while z > 0x7F:
        out.append(z & 0x7F | 0x80)
        z >>= 7
    return bytes([*out, z])


def corrupted(body: bytes, data: st.DataObject) -> bytes:
    """`body` with up to 3 bytes at a drawn position replaced by up to 12 drawn bytes."""
    out = bytearray(body)
    at = data.draw(st.integers(0, len(out) - 1))
    cut = data.draw(st.integers(0, 3))
    out[at : at + cut] = data.draw(st.binary(max_size=12))
    return bytes(out)
