"""The HTTP API's settings: one frozen value handed to `create_app` by the application shell."""

from __future__ import annotations

import math
from dataclasses import dataclass

from schemas.features.definition import FeatureSet
from serving.errors import ServingError

__all__ = ["ApiConfig"]


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """What the API serves and its limits.

    - `feature_set`, `redis_prefix`: the definition and key prefix the feature dataflow
      writes Redis with (`schemas.features.online.entity_key`).
    - `max_batch_transactions`: most transactions one `POST /v1/score:batch` may carry
      (more is 413).
    - `max_body_bytes`: largest request body (more is 413, checked while reading).
    - `batch_max_size`, `batch_max_wait_ms`: the micro-batcher flushes when this many
      transactions are queued or the oldest has waited this long.
    - `ready_timeout_s`: how long `/readyz` waits for Redis to answer a PING.
    """

    feature_set: FeatureSet
    redis_prefix: str
    max_batch_transactions: int = 256
    max_body_bytes: int = 1 << 20
    batch_max_size: int = 64
    batch_max_wait_ms: float = 2.0
    ready_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        positive = {
            "max_batch_transactions": self.max_batch_transactions,
            "max_body_bytes": self.max_body_bytes,
            "batch_max_size": self.batch_max_size,
        }
        for name, value in positive.items():
            if value < 1:
                msg = f"ApiConfig.{name}: expected an integer >= 1, got {value!r}"
                raise ServingError(msg)
        if not math.isfinite(self.batch_max_wait_ms) or self.batch_max_wait_ms < 0:
            msg = f"ApiConfig.batch_max_wait_ms: expected >= 0, got {self.batch_max_wait_ms!r}"
            raise ServingError(msg)
        if not math.isfinite(self.ready_timeout_s) or self.ready_timeout_s <= 0:
            msg = f"ApiConfig.ready_timeout_s: expected > 0 seconds, got {self.ready_timeout_s!r}"
            raise ServingError(msg)
