"""Score one source micro-batch: decode the feature vectors, one ORT call per variant.

`BatchScorer` is the body of the scoring dataflow's `flat_map_batch` step. Per call it
takes the serving `ModelSet` **once** (so every event of the batch is scored by the same
set, and an alias move takes effect between two batches), decodes every record (bad ones
become `DeadLetter`s naming the reason and source offset), scores all good vectors in one
`ModelSet.route` call — one onnxruntime call per variant — and returns, in source order:
every `Prediction`, one `DriftBatch` per model that scored, and the dead letters.

Model input columns are selected from the vector by name (the model's `feature_names`),
so a model may use any subset or order of the feature set's features; vectors computed by
a definition version other than the champion's are dead-lettered, never scored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from schemas.codec import AvroCodec
from schemas.errors import ContractError
from schemas.fast_decode import body_decoder
from schemas.features import FeatureSet, FeatureVector, feature_vector_schema
from schemas.features.vector_avro import FeatureVectorReader
from schemas.records import DeadLetter
from serving.drift import DriftReference
from serving.errors import ModelNotFound, ServingError
from serving.predictions import Prediction, build_predictions
from serving.routing import ModelSet
from serving.runtime import LoadedModel
from streams.features.decode import SourceRecord, dead_letter
from streams.scoring.metrics import ScoringMetrics

__all__ = ["BatchScorer", "DriftBatch", "ScoredItem"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, eq=False)
class DriftBatch:
    """What one model saw in one batch: event times [n], its input columns [n, d], scores [n],
    and the source partition of each event (the features topic's, for watermarks)."""

    reference: DriftReference
    event_times: npt.NDArray[np.int64]
    x: npt.NDArray[np.float64]
    scores: npt.NDArray[np.float32]
    partitions: npt.NDArray[np.int64]

    @property
    def key(self) -> str:
        """The drift state key: ``<model name>:<version>``."""
        return f"{self.reference.model_name}:{self.reference.model_version}"


ScoredItem = Prediction | DriftBatch | DeadLetter


@dataclass(frozen=True, slots=True, eq=False)
class _Plan:
    """How to score with one `ModelSet`: input columns and each model's drift reference."""

    model_set: ModelSet
    columns: npt.NDArray[np.intp] | None  # None: the vector is already in model order
    references: dict[str, DriftReference | None]  # by model version
    definition_version: str


class BatchScorer:
    """Decode and score micro-batches with the model set `current()` returns at each batch.

    `current` is typically `RegistryWatcher.current`; while it raises `ModelNotFound` (no
    model loaded yet) the batch waits, polling every `wait_s`, rather than lose events.
    """

    def __init__(
        self,
        feature_set: FeatureSet,
        current: Callable[[], ModelSet],
        *,
        step: str,
        metrics: ScoringMetrics | None = None,
        codec: AvroCodec | None = None,
        wait_s: float = 1.0,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._fs = feature_set
        self._index = {name: j for j, name in enumerate(feature_set.feature_names)}
        self._current = current
        self._step = step
        self._metrics = metrics or ScoringMetrics()
        self._codec = codec or AvroCodec(feature_vector_schema(feature_set))
        # Bodies in the codec's own schema skip fastavro (~3.5x faster).
        self._decode_value = body_decoder(
            self._codec,
            partial(FeatureVector.from_avro, feature_set),
            FeatureVectorReader(feature_set),
        )
        self._wait_s = wait_s
        self._clock_ms = clock_ms
        self._plan: _Plan | None = None
        self._refused: ModelSet | None = None

    def __call__(self, items: list[Any]) -> list[ScoredItem]:
        records: list[SourceRecord] = items
        if not records:
            return []
        self._track_positions(records)
        plan = self._plan_for(self._model_set())
        good: list[tuple[SourceRecord, FeatureVector]] = []
        out: list[ScoredItem] = []
        for record in records:
            decoded = self._decode(record, plan)
            if isinstance(decoded, DeadLetter):
                out.append(decoded)
            else:
                good.append((record, decoded))
        if good:
            parts = np.fromiter((r.partition for r, _ in good), dtype=np.int64, count=len(good))
            out[:0] = self._score(plan, [v for _, v in good], parts)
        self._metrics.dead_letters.inc(len(records) - len(good))
        return out

    def _model_set(self) -> ModelSet:
        while True:
            try:
                return self._current()
            except ModelNotFound as exc:
                _log.warning("step %r: no model to score with yet, waiting: %s", self._step, exc)
                time.sleep(self._wait_s)

    def _plan_for(self, model_set: ModelSet) -> _Plan:
        """The plan for `model_set`; one this worker cannot serve keeps the previous plan."""
        plan = self._plan
        if plan is not None and (plan.model_set is model_set or self._refused is model_set):
            return plan
        try:
            self._plan = self._new_plan(model_set)
        except ServingError as exc:
            if plan is None:
                raise
            _log.error("step %r keeps serving the previous model set: %s", self._step, exc)
            self._refused = model_set
            return plan
        return self._plan

    def _new_plan(self, model_set: ModelSet) -> _Plan:
        champion = model_set.champion
        missing = [n for n in champion.feature_names if n not in self._index]
        if missing:
            msg = (
                f"step {self._step!r}: model {champion.name!r} version {champion.version!r} "
                f"needs features {missing!r} that feature set {self._fs.name!r} does not compute"
            )
            raise ServingError(msg)
        columns = np.array([self._index[n] for n in champion.feature_names], dtype=np.intp)
        identity = len(columns) == len(self._index) and bool(
            np.array_equal(columns, np.arange(len(columns)))
        )
        models = [m for m in (champion, model_set.challenger) if m is not None]
        return _Plan(
            model_set=model_set,
            columns=None if identity else columns,
            references={m.version: _reference(m) for m in models},
            definition_version=champion.definition_version,
        )

    def _decode(self, record: SourceRecord, plan: _Plan) -> FeatureVector | DeadLetter:
        if record.value is None:
            return self._dead(record, "empty record value (tombstone)", "DecodeError")
        try:
            vector = self._decode_value(record.value)
        except ContractError as exc:
            return self._dead(record, str(exc), type(exc).__name__)
        except (KeyError, ValueError, TypeError) as exc:
            return self._dead(record, f"record does not fit: {exc!r}", "ContractError")
        expected = plan.definition_version
        if expected and vector.definition_version != expected:
            reason = (
                f"event {vector.event_id!r}: feature vector of definition version "
                f"{vector.definition_version!r}, the champion expects {expected!r}"
            )
            return self._dead(record, reason, "ServingError")
        return vector

    def _dead(self, record: SourceRecord, reason: str, error_type: str) -> DeadLetter:
        return dead_letter(
            record, reason, error_type=error_type, step=self._step, failed_at=self._clock_ms()
        )

    def _score(
        self, plan: _Plan, vectors: Sequence[FeatureVector], partitions: npt.NDArray[np.int64]
    ) -> list[ScoredItem]:
        full = np.array([v.values for v in vectors], dtype=np.float64)
        x64 = full if plan.columns is None else full[:, plan.columns]
        started = time.perf_counter()
        scored = plan.model_set.route([v.keys[0] for v in vectors], x64)
        self._metrics.inference_ms.observe((time.perf_counter() - started) * 1000)
        self._metrics.batch_size.observe(len(vectors))
        self._metrics.events.inc(len(vectors))
        out: list[ScoredItem] = []
        out.extend(build_predictions(vectors, scored, scored_at=self._clock_ms()))
        times = np.fromiter((v.event_time for v in vectors), dtype=np.int64, count=len(vectors))
        for variant in scored:
            reference = plan.references.get(variant.model.version)
            if reference is not None:
                out.append(DriftBatch(reference, times, x64, variant.scores, partitions))
        return out

    def _track_positions(self, records: Sequence[SourceRecord]) -> None:
        latest: dict[int, int] = {}
        for r in records:
            latest[r.partition] = max(latest.get(r.partition, 0), r.offset + 1)
        self._metrics.positions(records[0].topic, latest)


def _reference(model: LoadedModel) -> DriftReference | None:
    if not model.reference:
        _log.warning("%r has no drift reference: its drift is not monitored", model)
        return None
    return DriftReference.from_json(
        model.reference, model.feature_names, model_name=model.name, model_version=model.version
    )
