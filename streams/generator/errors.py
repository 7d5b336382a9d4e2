"""Errors of the synthetic world and its Kafka producer.

Tree::

    SkewlessError
    └── GeneratorError          an option out of range, or a state file that does not fit
        └── ProduceError        Kafka refused or lost messages while producing
"""

from __future__ import annotations

from schemas.errors import SkewlessError

__all__ = ["GeneratorError", "ProduceError"]


class GeneratorError(SkewlessError):
    """The generator was asked for something it cannot do (option, range, state)."""


class ProduceError(GeneratorError):
    """Producing to Kafka failed: delivery errors, or messages still queued at the end."""
