"""Offline: Delta readers, point-in-time training sets, validation, training, registry.

`point_in_time_join` (in `offline.pit`) needs pandas, from `pip install 'skewless[train]'`;
it is imported on first use so that importing `offline` does not need it.
"""

from __future__ import annotations

from typing import Any

from offline.delta_reader import DataVersion, current_versions, read_delta, read_table
from offline.errors import OfflineError, ValidationFailed
from offline.reference_stats import ReferenceStats
from offline.training_set import (
    TrainingSet,
    assemble_training_set,
    build_training_set,
    data_end_ms,
)
from offline.validation import ValidationConfig, range_rules, validate_training_set
from offline.validation_report import Check, ValidationReport

__all__ = [
    "Check",
    "DataVersion",
    "OfflineError",
    "ReferenceStats",
    "TrainingSet",
    "ValidationConfig",
    "ValidationFailed",
    "ValidationReport",
    "assemble_training_set",
    "build_training_set",
    "current_versions",
    "data_end_ms",
    "point_in_time_join",
    "range_rules",
    "read_delta",
    "read_table",
    "validate_training_set",
]


def __getattr__(name: str) -> Any:
    if name == "point_in_time_join":
        from offline.pit import point_in_time_join

        return point_in_time_join
    msg = f"module 'offline' has no attribute {name!r}"
    raise AttributeError(msg)
