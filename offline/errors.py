"""Errors of the offline room.

Tree::

    SkewlessError
    └── OfflineError            Delta data that cannot be read or used as asked
        └── ValidationFailed    a training set failed validation; nothing is trained

Messages name the table, column or check, and what was expected versus what was found.
"""

from __future__ import annotations

from schemas.errors import SkewlessError

__all__ = ["OfflineError", "ValidationFailed"]


class OfflineError(SkewlessError):
    """Offline data could not be read, joined or assembled as asked."""


class ValidationFailed(OfflineError):  # noqa: N818 - the room's agreed name
    """A training set failed at least one validation check (the message lists them)."""
