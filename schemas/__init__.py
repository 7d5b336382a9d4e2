"""Contracts: Avro schemas, the codec, records and the shared feature definition.

Pure Python with no I/O; imports nothing else of skewless.
"""

from schemas.codec import (
    AvroCodec,
    DecodeError,
    EncodeError,
    Framing,
    canonical_fingerprint,
    detect_framing,
)
from schemas.contracts import SchemaName, codec_for, load_schema
from schemas.errors import ContractError, DefinitionError, SkewlessError
from schemas.records import Channel, DeadLetter, Label, Transaction

__all__ = [
    "AvroCodec",
    "Channel",
    "ContractError",
    "DeadLetter",
    "DecodeError",
    "DefinitionError",
    "EncodeError",
    "Framing",
    "Label",
    "SchemaName",
    "SkewlessError",
    "Transaction",
    "canonical_fingerprint",
    "codec_for",
    "detect_framing",
    "load_schema",
]
