"""Prediction records: one per (event, scored variant), as published to the predictions topic.

`predict` scores a micro-batch of feature vectors through a `ModelSet` and returns, per
event in input order, the champion's prediction then the challenger's (when the rollout
scores it); exactly one of an event's predictions has `served=True`. The card id is the
vector's first entity key (`vector.keys[0]`, the card in the fraud feature set).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from schemas.features.vector import FeatureVector
from schemas.records import to_millis
from serving.errors import ServingError
from serving.routing import ModelSet, ScoredVariant
from serving.runtime import Decision

__all__ = ["Prediction", "build_predictions", "feature_matrix", "predict"]


@dataclass(frozen=True, slots=True)
class Prediction:
    """One model's score for one transaction (fields mirror `Prediction.avsc`)."""

    event_id: str
    card_id: str
    model_name: str
    model_version: str
    variant: str
    served: bool
    score: float
    decision: Decision
    event_time: int  # epoch millis, the transaction's event time
    scored_at: int  # epoch millis, wall clock
    source_timestamp: int  # epoch millis, Kafka timestamp of the source message

    def to_avro(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "card_id": self.card_id,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "variant": self.variant,
            "served": self.served,
            "score": self.score,
            "decision": self.decision.value,
            "event_time": self.event_time,
            "scored_at": self.scored_at,
            "source_timestamp": self.source_timestamp,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any]) -> Prediction:
        return cls(
            event_id=data["event_id"],
            card_id=data["card_id"],
            model_name=data["model_name"],
            model_version=str(data["model_version"]),
            variant=data["variant"],
            served=bool(data["served"]),
            score=float(data["score"]),
            decision=Decision(data["decision"]),
            event_time=to_millis(data["event_time"]),
            scored_at=to_millis(data["scored_at"]),
            source_timestamp=to_millis(data["source_timestamp"]),
        )


def feature_matrix(
    vectors: Sequence[FeatureVector], *, definition_version: str = ""
) -> npt.NDArray[np.float32]:
    """The vectors' values as float32 [batch, d].

    When `definition_version` is given, every vector must have been computed by it
    (values are positional); the first that was not is named in a `ServingError`.
    """
    if definition_version:
        for vector in vectors:
            if vector.definition_version != definition_version:
                msg = (
                    f"event {vector.event_id!r}: feature vector of definition version "
                    f"{vector.definition_version!r}, the model expects {definition_version!r}"
                )
                raise ServingError(msg)
    if not vectors:
        return np.empty((0, 0), dtype=np.float32)
    return np.array([v.values for v in vectors], dtype=np.float32)


def build_predictions(
    vectors: Sequence[FeatureVector], scored: Sequence[ScoredVariant], *, scored_at: int
) -> list[Prediction]:
    """Predictions for `vectors` from `ModelSet.route` output, event by event."""
    columns = [(sv, sv.scores.tolist(), sv.served.tolist()) for sv in scored if len(sv.scores) > 0]
    for sv, scores, _ in columns:
        if len(scores) != len(vectors):
            msg = (
                f"{sv.variant} {sv.model.name!r} version {sv.model.version!r} scored "
                f"{len(scores)} events, expected {len(vectors)}"
            )
            raise ServingError(msg)
    predictions: list[Prediction] = []
    for i, vector in enumerate(vectors):
        for sv, scores, served in columns:
            predictions.append(
                Prediction(
                    event_id=vector.event_id,
                    card_id=vector.keys[0],
                    model_name=sv.model.name,
                    model_version=sv.model.version,
                    variant=sv.variant,
                    served=bool(served[i]),
                    score=float(scores[i]),
                    decision=Decision(sv.decisions[i]),
                    event_time=vector.event_time,
                    scored_at=scored_at,
                    source_timestamp=vector.source_timestamp,
                )
            )
    return predictions


def predict(
    model_set: ModelSet, vectors: Sequence[FeatureVector], *, scored_at: int | None = None
) -> list[Prediction]:
    """Score a micro-batch through `model_set` (one ORT call per variant) into predictions.

    `scored_at` defaults to the wall clock after scoring, in epoch millis.
    """
    if not vectors:
        return []
    x = feature_matrix(vectors, definition_version=model_set.champion.definition_version)
    scored = model_set.route([v.keys[0] for v in vectors], x)
    stamp = scored_at if scored_at is not None else time.time_ns() // 1_000_000
    return build_predictions(vectors, scored, scored_at=stamp)
