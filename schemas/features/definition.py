"""Declarative feature definitions: entities, windowed aggregations, request-time features.

A definition is plain frozen data, referenced by import path (`schemas.features.fraud`),
never pickled. Its fingerprint (sha256 of a canonical JSON form) is its version: change a
window or a feature and the version changes, so every stored row says which definition
computed it. The form includes `ARITHMETIC`, the revision of the kernels' arithmetic
contract (`schemas.features.kernels`): the same definition computed under another contract
gives other bits, so it is another version.

Windows are sliding, by event time, and end at the event, inclusive: a feature of an event
at time t over window w aggregates the entity's known events e with t - w < e.time <= t,
the event itself included.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any, Literal

from schemas.errors import DefinitionError
from schemas.records import Transaction

__all__ = [
    "ARITHMETIC",
    "NUMERIC_FIELDS",
    "AggFunction",
    "Aggregation",
    "Entity",
    "FeatureSet",
    "FeatureView",
    "HourOfDay",
    "Identity",
    "InSet",
    "IsNull",
    "Log1p",
    "NotEqual",
    "OneHot",
    "RequestFeature",
]

# Revision of the arithmetic contract of `schemas.features.kernels`: 2 = exact sums, means
# and variances (1 summed window slices with the built-in `sum`).
ARITHMETIC = 2

AggFunction = Literal[
    "count",
    "sum",
    "mean",
    "min",
    "max",
    "std",
    "count_distinct",
    "last",
    "seconds_since_previous",
    "zscore",
]
_NUMERIC_FUNCTIONS = frozenset({"sum", "mean", "min", "max", "std", "last", "zscore"})
_TRANSACTION_FIELDS = frozenset(Transaction.__struct_fields__)
NUMERIC_FIELDS = frozenset({"amount", "event_time"})


def _check_field(owner: str, name: str) -> None:
    if name not in _TRANSACTION_FIELDS:
        msg = (
            f"{owner}: unknown event field {name!r}; expected one of {sorted(_TRANSACTION_FIELDS)}"
        )
        raise DefinitionError(msg)


@dataclass(frozen=True, slots=True)
class Entity:
    """What a feature view is keyed by: a name and the event field holding its id."""

    name: str
    key_field: str

    def __post_init__(self) -> None:
        _check_field(f"entity {self.name!r}", self.key_field)


@dataclass(frozen=True, slots=True)
class Aggregation:
    """One windowed feature: `function` of `source` over the `window` ending at the event.

    `count` needs no source. `seconds_since_previous` is the gap to the entity's latest
    earlier event, capped at the window length (also its value when there is none).
    `zscore` is (value - mean) / std of the earlier events in the window (0.0 with fewer
    than two earlier events or zero spread). `last` is the source value of the latest
    earlier event (0.0 when there is none).
    """

    name: str
    function: AggFunction
    window: timedelta
    source: str | None = None

    def __post_init__(self) -> None:
        if self.window <= timedelta(0):
            msg = f"aggregation {self.name!r}: window must be positive, got {self.window!r}"
            raise DefinitionError(msg)
        needs_source = self.function not in {"count", "seconds_since_previous"}
        if needs_source and self.source is None:
            msg = f"aggregation {self.name!r}: function {self.function!r} needs a source field"
            raise DefinitionError(msg)
        if self.source is not None:
            _check_field(f"aggregation {self.name!r}", self.source)
            if self.function in _NUMERIC_FUNCTIONS and self.source not in NUMERIC_FIELDS:
                msg = (
                    f"aggregation {self.name!r}: {self.function!r} needs a numeric source "
                    f"({sorted(NUMERIC_FIELDS)}), got {self.source!r}"
                )
                raise DefinitionError(msg)

    @property
    def window_ms(self) -> int:
        return int(self.window / timedelta(milliseconds=1))


@dataclass(frozen=True, slots=True)
class FeatureView:
    """Windowed aggregations for one entity, with its lateness and online TTL."""

    name: str
    entity: Entity
    aggregations: tuple[Aggregation, ...]
    allowed_lateness: timedelta = timedelta(minutes=5)
    ttl: timedelta = timedelta(days=30)
    timestamp_field: str = "event_time"

    def __post_init__(self) -> None:
        _check_field(f"view {self.name!r}", self.timestamp_field)
        if not self.aggregations:
            msg = f"view {self.name!r}: needs at least one aggregation"
            raise DefinitionError(msg)
        if self.allowed_lateness < timedelta(0):
            msg = (
                f"view {self.name!r}: allowed_lateness must be >= 0, got {self.allowed_lateness!r}"
            )
            raise DefinitionError(msg)

    @property
    def retention_ms(self) -> int:
        """How much event time of history the state keeps: longest window + lateness."""
        longest = max(a.window for a in self.aggregations)
        return int((longest + self.allowed_lateness) / timedelta(milliseconds=1))

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.aggregations)


@dataclass(frozen=True, slots=True)
class Identity:
    """The numeric event field as it is."""

    name: str
    source: str


@dataclass(frozen=True, slots=True)
class Log1p:
    """log(1 + max(value, 0)) of a numeric event field."""

    name: str
    source: str


@dataclass(frozen=True, slots=True)
class OneHot:
    """One 0/1 feature per value of a categorical field, named `<name>_<value>`."""

    name: str
    source: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HourOfDay:
    """Hour of the UTC day (0-23, fractional) of a timestamp field."""

    name: str
    source: str = "event_time"


@dataclass(frozen=True, slots=True)
class NotEqual:
    """1.0 when two fields differ and both are set, else 0.0 (e.g. a foreign-country flag)."""

    name: str
    left: str
    right: str


@dataclass(frozen=True, slots=True)
class IsNull:
    """1.0 when an optional field is missing."""

    name: str
    source: str


@dataclass(frozen=True, slots=True)
class InSet:
    """1.0 when a categorical field is one of `values`."""

    name: str
    source: str
    values: tuple[str, ...]


RequestFeature = Identity | Log1p | OneHot | HourOfDay | NotEqual | IsNull | InSet


def request_feature_names(feature: RequestFeature) -> tuple[str, ...]:
    """The output names of a request-time feature (several for a one-hot)."""
    if isinstance(feature, OneHot):
        return tuple(f"{feature.name}_{value.lower()}" for value in feature.values)
    return (feature.name,)


def _request_fields(feature: RequestFeature) -> tuple[str, ...]:
    if isinstance(feature, NotEqual):
        return (feature.left, feature.right)
    return (feature.source,)


@dataclass(frozen=True, slots=True)
class FeatureSet:
    """The whole definition: request-time features plus one view per entity.

    The vector's feature order is: request features, then each view's aggregations in
    declaration order. `version` is the definition's fingerprint.
    """

    name: str
    request_features: tuple[RequestFeature, ...]
    views: tuple[FeatureView, ...]
    description: str = ""
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _version: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names: list[str] = []
        for feature in self.request_features:
            for source in _request_fields(feature):
                _check_field(f"request feature {feature.name!r}", source)
            names.extend(request_feature_names(feature))
        for view in self.views:
            names.extend(view.feature_names)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            msg = f"feature set {self.name!r}: duplicate feature names {duplicates}"
            raise DefinitionError(msg)
        view_names = [v.name for v in self.views]
        if len(set(view_names)) != len(view_names):
            msg = f"feature set {self.name!r}: duplicate view names {view_names}"
            raise DefinitionError(msg)
        object.__setattr__(self, "_names", tuple(names))
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        object.__setattr__(self, "_version", hashlib.sha256(blob.encode()).hexdigest()[:16])

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def max_window(self) -> timedelta:
        """The longest window of any view: how long a stream runs before features mature."""
        return max(a.window for v in self.views for a in v.aggregations)

    @property
    def entities(self) -> tuple[Entity, ...]:
        return tuple(v.entity for v in self.views)

    def view(self, name: str) -> FeatureView:
        for view in self.views:
            if view.name == name:
                return view
        known = [v.name for v in self.views]
        msg = f"feature set {self.name!r} has no view {name!r}; views: {known}"
        raise DefinitionError(msg)

    def canonical(self) -> dict[str, Any]:
        """A JSON-able form of the definition, stable across processes and versions."""
        return {
            "arithmetic": ARITHMETIC,
            "name": self.name,
            "request_features": [_describe(f) for f in self.request_features],
            "views": [
                {
                    "name": v.name,
                    "entity": {"name": v.entity.name, "key_field": v.entity.key_field},
                    "timestamp_field": v.timestamp_field,
                    "allowed_lateness_ms": _ms(v.allowed_lateness),
                    "ttl_ms": _ms(v.ttl),
                    "aggregations": [
                        {
                            "name": a.name,
                            "function": a.function,
                            "window_ms": a.window_ms,
                            "source": a.source,
                        }
                        for a in v.aggregations
                    ],
                }
                for v in self.views
            ],
        }

    @property
    def version(self) -> str:
        """The definition's fingerprint: the first 16 hex digits of a sha256 (computed once)."""
        return self._version


def _ms(value: timedelta) -> int:
    return int(value / timedelta(milliseconds=1))


def _describe(feature: RequestFeature) -> dict[str, Any]:
    described: dict[str, Any] = {"kind": type(feature).__name__}
    for f in fields(feature):
        value = getattr(feature, f.name)
        described[f.name] = (
            list(value) if isinstance(value, Sequence) and not isinstance(value, str) else value
        )
    return described
