"""Contracts: Avro schemas, the codec, records and the shared feature definition.

Pure Python with no I/O; imports nothing else of skewless.
"""

from schemas.errors import ContractError, DefinitionError, SkewlessError
from schemas.records import Channel, DeadLetter, Label, Transaction

__all__ = [
    "Channel",
    "ContractError",
    "DeadLetter",
    "DefinitionError",
    "Label",
    "SkewlessError",
    "Transaction",
]
