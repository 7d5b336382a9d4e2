"""The feature vector the API scores for a posted transaction, from the shared definition.

The online vector of an entity is the vector of its newest processed event (see
`schemas.features.online`). For a posted transaction:

- **stored**: when the card's or the merchant's stored vector *is* this transaction's
  (same `event_id`; the event id is the dedup key, so it is the same event), that vector
  is scored as stored, bit for bit what the streaming workers scored;
- **assembled**: otherwise it is a new event. Request-time features come from the
  transaction (`RequestKernel`); each view's features come from its entity's stored
  vector, as of that entity's newest processed event (the new event itself is not in
  them: the stream has not processed it yet). An entity with no stored vector (never
  seen, or expired after the view's TTL) gets the view's *cold-start* values: exactly what
  the view's kernel computes for the transaction as the entity's first event (counts and
  distinct counts 1, sums/max/mean the amount, std and z-score 0, seconds-since-previous
  the window cap).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from schemas.features.definition import FeatureSet
from schemas.features.engine import CompiledFeatureSet
from schemas.features.kernels import ViewKernel
from schemas.features.vector import FeatureVector
from schemas.records import Transaction

__all__ = ["Assembled", "FeatureAssembler", "FeatureSource"]

FeatureSource = Literal["stored", "assembled"]


@dataclass(frozen=True, slots=True)
class Assembled:
    """A transaction's feature values and where they came from.

    `as_of` maps each entity to the stored vector its view features came from (None for
    cold start); for a `stored` source every entity maps to the vector scored.
    """

    values: tuple[float, ...]
    source: FeatureSource
    as_of: Mapping[str, FeatureVector | None]


@dataclass(frozen=True, slots=True)
class _ViewSlice:
    entity: str
    key_field: str
    start: int
    stop: int
    kernel: ViewKernel


class FeatureAssembler:
    """Builds the scored vector of a transaction from its request and the stored vectors."""

    def __init__(self, feature_set: FeatureSet) -> None:
        compiled = CompiledFeatureSet(feature_set)
        self.feature_set = feature_set
        self._request = compiled.request
        width = len(feature_set.feature_names)
        view_width = sum(len(v.aggregations) for v in feature_set.views)
        start = width - view_width
        slices: list[_ViewSlice] = []
        for kernel in compiled.views:
            stop = start + len(kernel.view.aggregations)
            entity = kernel.view.entity
            slices.append(_ViewSlice(entity.name, entity.key_field, start, stop, kernel))
            start = stop
        self._slices = tuple(slices)
        self.entities: tuple[str, ...] = tuple(s.entity for s in slices)

    def wanted(self, txn: Transaction) -> list[tuple[str, str]]:
        """The `(entity, id)` pairs whose stored vectors `assemble` needs, in view order."""
        return [(s.entity, str(getattr(txn, s.key_field))) for s in self._slices]

    def assemble(self, txn: Transaction, stored: Sequence[FeatureVector | None]) -> Assembled:
        """The vector of `txn`, given the stored vectors of `wanted(txn)` (None: missing)."""
        for vector in stored:
            if vector is not None and vector.event_id == txn.event_id:
                return Assembled(vector.values, "stored", dict.fromkeys(self.entities, vector))
        values = list(self._request.compute(txn))
        for view, vector in zip(self._slices, stored, strict=True):
            if vector is not None:
                values.extend(vector.values[view.start : view.stop])
            else:
                kernel = view.kernel
                cold, _ = kernel.apply(kernel.new_state(), txn.event_time, kernel.extract(txn))
                values.extend(cold)
        as_of = dict(zip(self.entities, stored, strict=True))
        return Assembled(tuple(values), "assembled", as_of)
