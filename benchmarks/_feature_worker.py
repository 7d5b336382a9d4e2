"""One feature worker with every sink on, as the benchmark runs it (in process or not).

As a script it runs the live flow described by the JSON in `$SKEWLESS_BENCH_WORKER` (kept
out of argv: it holds the client configs) until SIGTERM::

    SKEWLESS_BENCH_WORKER='{"kafka_config": {...}, ...}' python benchmarks/_feature_worker.py
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from bytewax.dataflow import Dataflow

from schemas.features.fraud import FRAUD_FEATURES
from streams.features.flow import build_feature_flow
from streams.runner import run_dataflow
from streams.sinks.dead_letter import DeadLetterTarget
from streams.sinks.feature_store import FeatureStoreConfig
from streams.sources import KafkaTransactions

__all__ = ["SPEC_ENV", "WorkerSpec", "feature_flow"]

SPEC_ENV = "SKEWLESS_BENCH_WORKER"


@dataclass(frozen=True)
class WorkerSpec:
    """Where one benchmark worker reads and writes."""

    kafka_config: dict[str, str]
    redis_url: str
    redis_prefix: str
    delta_root: str
    source_topic: str
    features_topic: str
    dead_letter_topic: str
    app_id: str = "bench-features"
    # Bytewax recovery (snapshots every epoch), as `skewless features run` has by default.
    recovery_dir: str | None = None
    # Delta commits every this many seconds (0: every epoch, the costlier path, which the
    # features and scoring benchmarks keep for comparison; `features run` commits every 10).
    commit_seconds: float = 0.0

    def to_env(self) -> str:
        """The spec as the JSON the script reads from `$SKEWLESS_BENCH_WORKER`."""
        return json.dumps(asdict(self))


def feature_flow(spec: WorkerSpec, *, bounded: bool, stores: bool = True) -> Dataflow:
    """The fraud feature flow: Kafka in; Redis, Delta, features topic and dead letters out.

    With `stores=False` its stores sink writes none of the three (the benchmark's budget).
    """
    config = FeatureStoreConfig(
        feature_set=FRAUD_FEATURES,
        app_id=spec.app_id,
        redis_url=spec.redis_url if stores else None,
        redis_prefix=spec.redis_prefix,
        delta_root=spec.delta_root if stores else None,
        delta_storage_options=None,
        kafka_config=spec.kafka_config if stores else None,
        features_topic=spec.features_topic,
        commit_interval=timedelta(seconds=spec.commit_seconds),
    )
    return build_feature_flow(
        config,
        KafkaTransactions(spec.kafka_config, spec.source_topic, bounded=bounded),
        dead_letters=DeadLetterTarget(spec.kafka_config, spec.dead_letter_topic),
    )


def main() -> int:
    """Run the live flow of `$SKEWLESS_BENCH_WORKER` until SIGTERM/SIGINT."""
    raw = os.environ.get(SPEC_ENV)
    if raw is None:
        print(f"expected the worker spec as JSON in ${SPEC_ENV}", file=sys.stderr)
        return 2
    spec = WorkerSpec(**json.loads(raw))
    recovery = Path(spec.recovery_dir) if spec.recovery_dir else None
    run_dataflow(feature_flow(spec, bounded=False), recovery_dir=recovery)  # until SIGTERM
    return 0


if __name__ == "__main__":
    sys.exit(main())
