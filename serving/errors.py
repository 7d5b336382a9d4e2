"""Errors of the serving room.

Tree::

    SkewlessError
    └── ServingError              a model that cannot be loaded, routed or scored as asked
        ├── ModelNotFound         no such registered model, alias or version
        └── ModelIntegrityError   the artifact is not the verified ONNX model its tags promise

Messages name the model and version, and what was expected versus what was found (for
integrity failures: the expected and actual sha256).
"""

from __future__ import annotations

from schemas.errors import SkewlessError

__all__ = ["ModelIntegrityError", "ModelNotFound", "ServingError"]


class ServingError(SkewlessError):
    """A model could not be resolved, loaded, routed or scored."""


class ModelNotFound(ServingError):  # noqa: N818 - the room's agreed name
    """The registry has no such registered model, alias or version."""


class ModelIntegrityError(ServingError):
    """A model artifact failed verification (sha256, ONNX validity, I/O contract)."""
