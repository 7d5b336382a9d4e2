"""Errors of the streams room."""

from __future__ import annotations

from schemas.errors import SkewlessError

__all__ = ["SourceError", "StoreError", "StreamsError"]


class StreamsError(SkewlessError):
    """A dataflow could not be built or run as configured."""


class StoreError(StreamsError):
    """An online or offline store rejected a write or could not be read."""


class SourceError(StreamsError):
    """A source (a Kafka topic, a Delta table) could not be read."""
