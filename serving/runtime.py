"""The model runtime: one onnxruntime session per verified model, batch scoring, decisions.

A `LoadedModel` is built only from a `VerifiedModel` (see `serving.integrity`), so every
session runs bytes whose sha256 matched the registry. Sessions are tuned for a scoring
worker on few cores: `intra_op_threads` (default 1) threads per call, one inter-op
thread, all graph optimizations, sequential execution. Parallelism comes from batching
(one ORT call scores a whole micro-batch) and from running more workers, not from
threads fighting over two cores.

Decisions: a score `>= decline` declines, else `>= review` goes to review, else approves.
A non-finite score (NaN from a NaN feature) goes to review: never silently approved.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from schemas.records import Decision
from serving.errors import ModelIntegrityError, ServingError
from serving.integrity import INPUT_NAME, OUTPUT_NAME, VerifiedModel

__all__ = ["Decision", "LoadedModel", "Thresholds", "create_session"]


_BY_LEVEL = (Decision.APPROVE, Decision.REVIEW, Decision.DECLINE)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Score cut-offs: `>= review` is reviewed, `>= decline` declined (0 <= review <= decline)."""

    review: float
    decline: float

    def __post_init__(self) -> None:
        values = (self.review, self.decline)
        if not all(math.isfinite(v) for v in values) or not 0.0 <= self.review <= self.decline <= 1:
            msg = (
                "thresholds: expected 0 <= review <= decline <= 1, "
                f"got review={self.review!r} decline={self.decline!r}"
            )
            raise ServingError(msg)


def create_session(data: bytes, *, intra_op_threads: int = 1) -> ort.InferenceSession:
    """A CPU onnxruntime session for ONNX `data` with the runtime's tuned options."""
    if intra_op_threads < 1:
        msg = f"intra_op_threads: expected >= 1, got {intra_op_threads!r}"
        raise ServingError(msg)
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


class LoadedModel:
    """A verified registry model version, ready to score feature matrices.

    `alias` is the registry alias it was resolved through (None when loaded by version).
    `reference` holds the drift reference bins (empty when the model has none).
    """

    __slots__ = (
        "_session",
        "alias",
        "data_version",
        "definition_version",
        "feature_names",
        "name",
        "reference",
        "run_id",
        "sha256",
        "thresholds",
        "version",
    )

    def __init__(
        self,
        verified: VerifiedModel,
        *,
        feature_names: Sequence[str],
        thresholds: Thresholds,
        alias: str | None = None,
        reference: Mapping[str, Any] | None = None,
        definition_version: str = "",
        data_version: Mapping[str, Any] | None = None,
        run_id: str = "",
        intra_op_threads: int = 1,
    ) -> None:
        where = f"model {verified.model!r} version {verified.version!r}"
        names = tuple(feature_names)
        if verified.n_features is not None and verified.n_features != len(names):
            msg = (
                f"{where}: input {INPUT_NAME!r} takes {verified.n_features} features, "
                f"tag feature_names lists {len(names)}"
            )
            raise ModelIntegrityError(msg)
        try:
            self._session = create_session(verified.data, intra_op_threads=intra_op_threads)
        except ServingError:
            raise
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            msg = f"{where}: onnxruntime refused the verified model: {exc}"
            raise ModelIntegrityError(msg) from exc
        self.name = verified.model
        self.version = verified.version
        self.sha256 = verified.sha256
        self.alias = alias
        self.feature_names = names
        self.thresholds = thresholds
        self.reference: dict[str, Any] = dict(reference or {})
        self.definition_version = definition_version
        self.data_version: dict[str, Any] = dict(data_version or {})
        self.run_id = run_id

    def __repr__(self) -> str:
        return (
            f"LoadedModel(name={self.name!r}, version={self.version!r}, alias={self.alias!r}, "
            f"sha256={self.sha256[:12]!r}..., features={len(self.feature_names)})"
        )

    def with_alias(self, alias: str | None) -> LoadedModel:
        """The same model (sharing its session) resolved through another alias."""
        other = copy.copy(self)
        other.alias = alias
        return other

    def score(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Fraud probabilities [batch] for features `x` [batch, d], in one onnxruntime call."""
        matrix = np.ascontiguousarray(x, dtype=np.float32)
        width = len(self.feature_names)
        if matrix.ndim != 2 or matrix.shape[1] != width:
            msg = (
                f"model {self.name!r} version {self.version!r}: expected features of shape "
                f"[batch, {width}], got {list(matrix.shape)}"
            )
            raise ServingError(msg)
        if matrix.shape[0] == 0:
            return np.empty(0, dtype=np.float32)
        (scores,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: matrix})
        out = np.asarray(scores, dtype=np.float32)
        if out.size != matrix.shape[0]:
            msg = (
                f"model {self.name!r} version {self.version!r}: output {OUTPUT_NAME!r} has "
                f"shape {list(out.shape)}, expected [{matrix.shape[0]}]"
            )
            raise ServingError(msg)
        return out.reshape(matrix.shape[0])

    def decide(self, scores: npt.ArrayLike) -> list[str]:
        """One `Decision` per score (see the module docstring for the rule)."""
        values = np.asarray(scores, dtype=np.float64).reshape(-1)
        level = (values >= self.thresholds.review).astype(np.int8)
        level += values >= self.thresholds.decline
        level[~np.isfinite(values)] = 1
        return [_BY_LEVEL[i] for i in level.tolist()]
