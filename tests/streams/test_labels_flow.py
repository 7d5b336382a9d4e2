"""The labels dataflow: every valid label once in Delta, bad ones dead-lettered.

Its Delta commits come every `commit_interval` (`streams.sinks.commit_interval`): between
them, snapshots log the rows in the state log, and a quiet stream's idle polls commit
them once due.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from schemas.contracts import codec_for
from schemas.records import Label
from skewless.endpoints import Endpoints
from streams.delta_tables import LABELS, table_uri
from streams.labels import build_labels_flow
from streams.runner import run_dataflow
from streams.sinks.dead_letter import DeadLetterTarget
from streams.sources import kafka_source
from streams.topic_reader import read_to_end
from tests.factories import produce_payloads
from tests.workers import stop_once_seen

pytestmark = pytest.mark.integration

T0 = 1_767_225_600_000


def _produced(kafka_config: dict[str, str], topic: str, labels: int, garbage: int) -> None:
    codec = codec_for("Label")
    payloads = [
        (f"e{i}", codec.encode(Label(f"e{i}", i % 5 == 0, T0 + i * 1_000, "chargeback").to_avro()))
        for i in range(labels)
    ]
    payloads += [(f"bad{i}", b"not avro") for i in range(garbage)]
    produce_payloads(kafka_config, topic, payloads)


def _event_ids(delta_root: Path) -> list[str]:
    try:
        table = DeltaTable(table_uri(str(delta_root), LABELS))
    except TableNotFoundError:
        return []
    return sorted(table.to_pyarrow_table(columns=["event_id"]).column("event_id").to_pylist())


def test_every_label_lands_once_across_reruns_and_bad_ones_are_dead_lettered(
    tmp_path: Path, kafka_config: dict[str, str], make_topic: Callable[..., str]
) -> None:
    topic, dead = make_topic("labels", 4), make_topic("dl", 1)
    _produced(kafka_config, topic, labels=300, garbage=3)

    def run(recovery: Path | None) -> None:
        flow = build_labels_flow(
            kafka_source(kafka_config, topic, bounded=True),
            delta_root=str(tmp_path / "delta"),
            dead_letters=DeadLetterTarget(kafka_config, dead),
            commit_interval=timedelta(seconds=10),  # longer than the run: close commits
        )
        run_dataflow(flow, recovery_dir=recovery)

    run(tmp_path / "recovery")
    expected = sorted(f"e{i}" for i in range(300))
    assert _event_ids(tmp_path / "delta") == expected
    run(tmp_path / "recovery")  # resumed: nothing new
    assert len(list(read_to_end(kafka_config, dead))) == 3
    run(None)  # read from the start: every label is skipped, as the table holds it
    assert _event_ids(tmp_path / "delta") == expected


def test_a_tailing_labels_worker_commits_deferred_labels_while_the_stream_is_quiet(
    tmp_path: Path,
    kafka_config: dict[str, str],
    make_topic: Callable[..., str],
    services: Endpoints,
) -> None:
    topic = make_topic("labels", 4)
    _produced(kafka_config, topic, labels=50, garbage=0)
    env = {
        **os.environ,
        "SKEWLESS_CONFIG": str(tmp_path / "none.toml"),
        "SKEWLESS_KAFKA_BOOTSTRAP": kafka_config["bootstrap.servers"],
        "SKEWLESS_REDIS_URL": services.redis_url,  # every command resolves the services
        "SKEWLESS_STATE_DIR": str(tmp_path / "state"),
        "SKEWLESS_DATA_DIR": str(tmp_path / "data"),
        "SKEWLESS_TOPICS__LABELS": topic,
        "SKEWLESS_TOPICS__DEAD_LETTER": make_topic("dl", 1),
        "SKEWLESS_DELTA_COMMIT_SECONDS": "3",
    }
    worker = subprocess.Popen(
        [sys.executable, "-c", "from skewless.cli import main; main()", "labels", "run"],
        env=env,
        stderr=subprocess.PIPE,
    )
    delta_root = tmp_path / "data" / "delta"
    stderr = stop_once_seen(worker, lambda: len(_event_ids(delta_root)), 50, what="labels")
    assert worker.returncode == 0, stderr
    assert _event_ids(delta_root) == sorted(f"e{i}" for i in range(50))
