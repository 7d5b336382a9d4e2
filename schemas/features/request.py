"""Request-time features: computed from the event alone, the same way online and offline."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from enum import Enum
from itertools import chain
from typing import Any, assert_never

from schemas.features.definition import (
    HourOfDay,
    Identity,
    InSet,
    IsNull,
    Log1p,
    NotEqual,
    OneHot,
    RequestFeature,
)
from schemas.records import Transaction

__all__ = ["RequestKernel"]

_DAY_MS = 86_400_000
_Compute = Callable[[Transaction], tuple[float, ...]]


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _compile(feature: RequestFeature) -> _Compute:
    if isinstance(feature, Identity):
        src = feature.source
        return lambda e: (float(getattr(e, src)),)
    if isinstance(feature, Log1p):
        src = feature.source
        return lambda e: (math.log1p(max(float(getattr(e, src)), 0.0)),)
    if isinstance(feature, OneHot):
        src = feature.source
        zeros = (0.0,) * len(feature.values)
        hot = {
            v: tuple(1.0 if j == i else 0.0 for j in range(len(zeros)))
            for i, v in enumerate(feature.values)
        }
        return lambda e: hot.get(_plain(getattr(e, src)), zeros)
    if isinstance(feature, HourOfDay):
        src = feature.source
        return lambda e: ((int(getattr(e, src)) % _DAY_MS) / 3_600_000.0,)
    if isinstance(feature, NotEqual):
        left, right = feature.left, feature.right

        def not_equal(e: Transaction) -> tuple[float, ...]:
            a, b = getattr(e, left), getattr(e, right)
            return (1.0 if a is not None and b is not None and a != b else 0.0,)

        return not_equal
    if isinstance(feature, IsNull):
        src = feature.source
        return lambda e: (1.0 if getattr(e, src) is None else 0.0,)
    if isinstance(feature, InSet):
        src, members = feature.source, frozenset(feature.values)
        return lambda e: (1.0 if _plain(getattr(e, src)) in members else 0.0,)
    assert_never(feature)


class RequestKernel:
    """The compiled request-time features of a feature set, in vector order."""

    def __init__(self, features: Sequence[RequestFeature]) -> None:
        self._computes = tuple(_compile(f) for f in features)

    def compute(self, event: Transaction) -> tuple[float, ...]:
        return tuple(chain.from_iterable([compute(event) for compute in self._computes]))
