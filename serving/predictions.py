"""Prediction records: one per (event, scored variant), as published to the predictions topic.

`predict` scores a micro-batch of feature vectors through a `ModelSet` and returns, per
event in input order, the champion's prediction then the challenger's (when the rollout
scores it); exactly one of an event's predictions has `served=True`. The card id is the
vector's first entity key (`vector.keys[0]`, the card in the fraud feature set).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from schemas.contracts import codec_for, registry_client
from schemas.fast_decode import body_decoder
from schemas.features.vector import FeatureVector
from schemas.records import Decision, Prediction
from schemas.records_avro import PredictionReader
from serving.errors import ServingError
from serving.routing import ModelSet, ScoredVariant

__all__ = ["Prediction", "build_predictions", "feature_matrix", "predict", "prediction_decoder"]


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


def prediction_decoder(registry: Mapping[str, str] | None = None) -> Callable[[bytes], Prediction]:
    """A decoder of the predictions topic's values, reading own-schema bodies directly.

    Other writer schemas, framing and JSON take the codec (`schemas.fast_decode`).
    `registry` is the schema registry's client config, if any.
    """
    codec = codec_for("Prediction", registry=registry_client(registry))
    return body_decoder(codec, Prediction.from_avro, PredictionReader())
