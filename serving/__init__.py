"""Serving: ONNX model runtime, registry loading and integrity, routing, predictions.

The serving image carries no torch and no Bytewax: this package imports only `schemas`
and numpy, onnx, onnxruntime and mlflow.
"""

from serving.errors import ModelIntegrityError, ModelNotFound, ServingError
from serving.integrity import VerifiedModel, read_verified, sha256_hex, verify_onnx
from serving.model_store import (
    DEFAULT_MODEL_NAME,
    ModelStore,
    ModelVersionInfo,
    RegistryState,
)
from serving.predictions import Prediction, build_predictions, feature_matrix, predict
from serving.routing import (
    ModelSet,
    RolloutConfig,
    RolloutMode,
    ScoredVariant,
    Variant,
    card_bucket,
)
from serving.runtime import Decision, LoadedModel, Thresholds, create_session
from serving.watcher import RegistryWatcher

__all__ = [
    "DEFAULT_MODEL_NAME",
    "Decision",
    "LoadedModel",
    "ModelIntegrityError",
    "ModelNotFound",
    "ModelSet",
    "ModelStore",
    "ModelVersionInfo",
    "Prediction",
    "RegistryState",
    "RegistryWatcher",
    "RolloutConfig",
    "RolloutMode",
    "ScoredVariant",
    "ServingError",
    "Thresholds",
    "Variant",
    "VerifiedModel",
    "build_predictions",
    "card_bucket",
    "create_session",
    "feature_matrix",
    "predict",
    "read_verified",
    "sha256_hex",
    "verify_onnx",
]
