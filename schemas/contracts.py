"""The packaged Avro contracts, by name, and ready codecs for them.

>>> from schemas.contracts import codec_for
>>> codec = codec_for("Label")
>>> record = {"event_id": "e1", "is_fraud": True, "label_time": 0, "reason": "chargeback"}
>>> codec.decode(codec.encode(record)) == record
True
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Literal, get_args

from schemas.codec import AvroCodec
from schemas.errors import ContractError

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

__all__ = ["SCHEMA_NAMES", "SchemaName", "codec_for", "load_schema", "registry_client"]

SchemaName = Literal["Transaction", "Label", "DeadLetter", "Prediction", "DriftMetric"]
SCHEMA_NAMES: tuple[SchemaName, ...] = get_args(SchemaName)


@cache
def _schema_text(name: str) -> str:
    if name not in SCHEMA_NAMES:
        msg = f"unknown schema {name!r}: expected one of {list(SCHEMA_NAMES)!r}"
        raise ContractError(msg)
    return files("schemas.avro").joinpath(f"{name}.avsc").read_text(encoding="utf-8")


def load_schema(name: SchemaName) -> dict[str, Any]:
    """The raw schema dict from ``schemas/avro/<name>.avsc`` (a fresh copy each call)."""
    schema: dict[str, Any] = json.loads(_schema_text(name))
    return schema


@cache
def _shared_codec(name: SchemaName) -> AvroCodec:
    return AvroCodec(load_schema(name))


def registry_client(config: Mapping[str, str] | None) -> SchemaRegistryClient | None:
    """One shared registry client per config (`{"url": ..., options}`); None: no registry.

    Without a registry, codecs write Avro single-object encoding; with one, the Confluent
    wire format. `mock://` URLs give confluent-kafka's in-memory registry (tests).
    """
    if not config:
        return None
    return _registry_client(tuple(sorted(config.items())))


@cache
def _registry_client(items: tuple[tuple[str, str], ...]) -> SchemaRegistryClient:
    from confluent_kafka.schema_registry import SchemaRegistryClient as Client

    return Client.new_client(dict(items))


def codec_for(
    name: SchemaName,
    *,
    registry: SchemaRegistryClient | None = None,
    subject: str | None = None,
    topic: str | None = None,
) -> AvroCodec:
    """A codec for the packaged schema `name`; one shared instance per name without registry.

    `subject` and `topic` only matter with a `registry`: then each call builds a new codec
    (Confluent framing, subject as in `AvroCodec`); keep it for the producer's lifetime.
    """
    if registry is None:
        return _shared_codec(name)
    return AvroCodec(load_schema(name), registry=registry, subject=subject, topic=topic)
