"""Score a batch of posted transactions: stored vectors, assembled features, one routed call.

`Scorer.score` runs on the micro-batcher's worker thread: one pipelined Redis round trip
for every entity of the batch, feature assembly (`serving.api.assemble`), then
`ModelSet.route` — the same routing the streaming workers use, one onnxruntime call per
scored variant — on the model set the watcher serves at that moment.

The served model must have been trained on this server's feature definition: its
`definition_version` tag (when set) and `feature_names` must match the feature set, or
the batch fails with a `ServingError` naming both.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from schemas.features.definition import FeatureSet
from schemas.features.vector import FeatureVector
from schemas.records import Transaction
from serving.api.assemble import Assembled, FeatureAssembler
from serving.api.lookup import OnlineStore
from serving.api.schemas import EntityFreshness, Freshness, ScoreResponse, UnservedScore
from serving.errors import ServingError
from serving.routing import ModelSet, ScoredVariant
from serving.runtime import Decision

__all__ = ["ModelSource", "Scorer", "freshness", "now_ms"]


class ModelSource(Protocol):
    """Where the serving model set comes from (a `RegistryWatcher`)."""

    def current(self) -> ModelSet: ...


def now_ms() -> int:
    """Wall clock, epoch milliseconds."""
    return time.time_ns() // 1_000_000


def freshness(vector: FeatureVector, now: int) -> Freshness:
    """The age of a stored vector at `now` (epoch ms)."""
    return Freshness(computed_age_ms=now - vector.computed_at, event_age_ms=now - vector.event_time)


class Scorer:
    """Turns transactions into served scores (see the module docstring)."""

    def __init__(
        self,
        feature_set: FeatureSet,
        store: OnlineStore,
        models: ModelSource,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.feature_set = feature_set
        self.version = feature_set.version  # a property hashing the definition: read once
        self.store = store
        self.models = models
        self.assembler = FeatureAssembler(feature_set)
        self._clock = clock

    def check(self, model_set: ModelSet) -> None:
        """Raise `ServingError` unless the champion scores this server's feature vectors."""
        model = model_set.champion
        fs = self.feature_set
        where = f"model {model.name!r} version {model.version!r}"
        if model.definition_version and model.definition_version != self.version:
            msg = (
                f"{where} was trained on feature definition {model.definition_version!r}; "
                f"this server computes {fs.name!r} version {self.version!r}"
            )
            raise ServingError(msg)
        if model.feature_names != fs.feature_names:
            extra = sorted(set(model.feature_names) - set(fs.feature_names))[:5]
            missing = sorted(set(fs.feature_names) - set(model.feature_names))[:5]
            msg = (
                f"{where} expects {len(model.feature_names)} features, this server's "
                f"{fs.name!r} has {len(fs.feature_names)} (in order); unknown to the server: "
                f"{extra}, not in the model: {missing}"
            )
            raise ServingError(msg)

    def score(self, txns: Sequence[Transaction]) -> list[ScoreResponse]:
        """One response per transaction, in order; whole-batch errors raise."""
        model_set = self.models.current()
        self.check(model_set)
        assembler = self.assembler
        wanted = [assembler.wanted(t) for t in txns]
        stored = self.store.get_many([pair for pairs in wanted for pair in pairs])
        width = len(assembler.entities)
        assembled = [
            assembler.assemble(t, stored[i * width : (i + 1) * width]) for i, t in enumerate(txns)
        ]
        with np.errstate(over="ignore"):  # a double beyond float32 scores as inf, like streaming
            x = np.array([a.values for a in assembled], dtype=np.float32)
        variants = model_set.route([t.card_id for t in txns], x)
        now = self._clock()
        return [
            self._response(i, t, pairs, assembled[i], variants, now)
            for i, (t, pairs) in enumerate(zip(txns, wanted, strict=True))
        ]

    def _response(
        self,
        i: int,
        txn: Transaction,
        pairs: Sequence[tuple[str, str]],
        assembled: Assembled,
        variants: Sequence[ScoredVariant],
        now: int,
    ) -> ScoreResponse:
        served = next(v for v in variants if v.served[i])
        other = next((v for v in variants if v is not served), None)
        unserved = None
        if other is not None:
            unserved = UnservedScore(
                model_name=other.model.name,
                model_version=other.model.version,
                variant=other.variant,
                score=_finite(other.scores[i]),
                decision=Decision(other.decisions[i]),
            )
        return ScoreResponse(
            event_id=txn.event_id,
            card_id=txn.card_id,
            score=_finite(served.scores[i]),
            decision=Decision(served.decisions[i]),
            model_name=served.model.name,
            model_version=served.model.version,
            variant=served.variant,
            unserved=unserved,
            features_source=assembled.source,
            features_as_of={e: v.event_id if v else None for e, v in assembled.as_of.items()},
            freshness=_entity_freshness(pairs, assembled.as_of, now),
            definition_version=self.version,
            scored_at=now,
        )


def _finite(value: np.float32) -> float | None:
    score = float(value)
    return score if math.isfinite(score) else None


def _entity_freshness(
    pairs: Sequence[tuple[str, str]], as_of: Mapping[str, FeatureVector | None], now: int
) -> dict[str, EntityFreshness]:
    out: dict[str, EntityFreshness] = {}
    for entity, entity_id in pairs:
        vector = as_of.get(entity)
        if vector is None:
            out[entity] = EntityFreshness(id=entity_id, event_id=None, freshness=None)
        else:
            out[entity] = EntityFreshness(
                id=entity_id,
                event_id=vector.event_id,
                event_time=vector.event_time,
                computed_at=vector.computed_at,
                freshness=freshness(vector, now),
            )
    return out
