"""Offline: Delta readers, point-in-time training sets, validation, training, registry.

`point_in_time_join` (in `offline.pit`) needs pandas, from `pip install 'skewless[train]'`;
it is imported on first use so that importing `offline` does not need it. So are training,
export, evaluation and the pipeline (torch, onnx, scikit-learn, MLflow: the same extra).
"""

from __future__ import annotations

import importlib
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
    "GateConfig",
    "OfflineError",
    "PipelineReport",
    "ReferenceStats",
    "TrainConfig",
    "TrainingSet",
    "ValidationConfig",
    "ValidationFailed",
    "ValidationReport",
    "assemble_training_set",
    "build_training_set",
    "current_versions",
    "data_end_ms",
    "evaluate",
    "export_onnx",
    "point_in_time_join",
    "promote",
    "range_rules",
    "read_delta",
    "read_table",
    "rollback",
    "run_pipeline",
    "train_and_register",
    "train_model",
    "validate_training_set",
]

_LAZY = {
    "point_in_time_join": "offline.pit",
    "GateConfig": "offline.gates",
    "PipelineReport": "offline.pipeline",
    "TrainConfig": "offline.train",
    "evaluate": "offline.evaluate",
    "export_onnx": "offline.onnx_export",
    "promote": "offline.registry",
    "rollback": "offline.registry",
    "run_pipeline": "offline.pipeline",
    "train_and_register": "offline.pipeline",
    "train_model": "offline.train",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    msg = f"module 'offline' has no attribute {name!r}"
    raise AttributeError(msg)
