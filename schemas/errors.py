"""The root of every error skewless raises on purpose.

Tree (each room adds its own branch)::

    SkewlessError
    ├── schemas.errors.ContractError        a record does not fit its contract
    │   └── schemas.codec.DecodeError       undecodable bytes (framing, fingerprint, field)
    ├── schemas.errors.DefinitionError      a feature definition that cannot be used
    ├── skewless.settings.SettingsError     configuration a user got wrong
    ├── skewless.services.ServiceError      an embedded service that did not start or answer
    └── ...                                 streams/, offline/, serving/ errors

A `SkewlessError` is a user-facing fact: the CLI prints its message without a traceback.
"""

from __future__ import annotations

__all__ = ["ContractError", "DefinitionError", "SkewlessError"]


class SkewlessError(Exception):
    """Base class: an expected failure with a message written for the user."""


class ContractError(SkewlessError):
    """A record does not fit its Avro contract (field, expected, got)."""


class DefinitionError(SkewlessError):
    """A feature definition is inconsistent (unknown field, duplicate name, bad window)."""
