"""The shared feature definition and its pure kernels (no I/O, no Bytewax)."""

from schemas.features.definition import (
    Aggregation,
    Entity,
    FeatureSet,
    FeatureView,
    HourOfDay,
    Identity,
    InSet,
    IsNull,
    Log1p,
    NotEqual,
    OneHot,
    RequestFeature,
)
from schemas.features.engine import CompiledFeatureSet, LocalEngine
from schemas.features.kernels import ViewKernel, WindowState
from schemas.features.request import RequestKernel
from schemas.features.vector import FeatureVector, feature_vector_schema

__all__ = [
    "Aggregation",
    "CompiledFeatureSet",
    "Entity",
    "FeatureSet",
    "FeatureVector",
    "FeatureView",
    "HourOfDay",
    "Identity",
    "InSet",
    "IsNull",
    "LocalEngine",
    "Log1p",
    "NotEqual",
    "OneHot",
    "RequestFeature",
    "RequestKernel",
    "ViewKernel",
    "WindowState",
    "feature_vector_schema",
]
