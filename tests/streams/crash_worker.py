"""A feature worker process for crash tests: `python -m tests.streams.crash_worker CONFIG_JSON`."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

from schemas.features.fraud import FRAUD_FEATURES
from streams.features.flow import build_feature_flow
from streams.runner import run_dataflow
from streams.sinks.dead_letter import DeadLetterTarget
from streams.sinks.feature_store import FeatureStoreConfig
from streams.sources import KafkaTransactions


def main(raw: str) -> None:
    args = json.loads(raw)
    kafka = args["kafka_config"]
    config = FeatureStoreConfig(
        feature_set=FRAUD_FEATURES,
        app_id="crash-test",
        redis_url=args["redis_url"],
        redis_prefix=args["prefix"],
        delta_root=args["delta_root"],
        delta_storage_options=None,
        kafka_config=kafka,
        features_topic=args["features_topic"],
        commit_interval=timedelta(seconds=float(args.get("commit_seconds", 0))),
    )
    workers = int(args.get("workers", 1))
    flow = build_feature_flow(
        config,
        KafkaTransactions(kafka, args["topic"], bounded=bool(args.get("bounded", True))),
        dead_letters=DeadLetterTarget(kafka, args["dead_topic"]),
        sink_partitions=workers,  # as `skewless features run --workers N`
    )
    recovery = args.get("recovery_dir")
    run_dataflow(flow, workers=workers, recovery_dir=Path(recovery) if recovery else None)


if __name__ == "__main__":
    main(sys.argv[1])
