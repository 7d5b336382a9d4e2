"""The services room's error."""

from __future__ import annotations

from schemas.errors import SkewlessError

__all__ = ["ServiceError"]


class ServiceError(SkewlessError):
    """An embedded service did not start, answer or stop; or none is configured or running."""
