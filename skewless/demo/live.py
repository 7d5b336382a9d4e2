"""The demo's live segment: real feature and scoring workers, events produced at a rate.

Both workers run as `python -m skewless` subprocesses against the demo's services; the
producer paces the simulated world at a fixed rate, so every record's Kafka timestamp is
the wall clock and event → prediction latency is real.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from schemas.records import Transaction
from serving.predictions import prediction_decoder
from skewless import wiring
from skewless.demo.batch import DRIFT
from skewless.demo.context import DemoContext
from skewless.services import ServiceError
from streams.generator.produce import produce
from streams.topic_reader import read_to_end

__all__ = ["LiveResult", "live_workers", "run_segment"]

_DEADLINE_S = 180.0


@dataclass(frozen=True)
class LiveResult:
    """What one paced segment measured."""

    events: int
    offered_rate: float
    started_ms: int
    ended_ms: int
    latency_ms: list[float]
    served: dict[str, int]  # variant → served predictions of this segment
    unserved: dict[str, int]


def _environment(ctx: DemoContext) -> dict[str, str]:
    return {
        **os.environ,
        "SKEWLESS_STATE_DIR": str(ctx.settings.state_dir),
        "SKEWLESS_DATA_DIR": str(ctx.settings.data_dir),
    }


@contextmanager
def live_workers(ctx: DemoContext) -> Iterator[None]:
    """A tailing feature worker and scoring worker for the duration of the block."""
    env = _environment(ctx)
    log_dir = ctx.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    commands = {
        # Simulated time runs ~17,000x the wall clock at 1,000 events/s: waiting for a
        # partition's next record to the simulated second would wait for its next fetch.
        "features": ["features", "run", "--merge-tolerance", "10m"],
        "scoring": [
            "score", "run", "--poll-s", "1", "--drift-window", "1d",
            "--drift-min-count", str(DRIFT.min_count), "--batch-size", "200",
        ],
    }  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name, args in commands.items():
            log = (log_dir / f"{name}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "skewless", *args], env=env, stdout=log, stderr=log
                )
            )
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def run_segment(ctx: DemoContext, *, events: int, rate: float) -> LiveResult:
    """Produce `events` at `rate`/s and wait until every one has its served prediction."""
    emitted = list(ctx.world.stream(events))
    ids = {item.record.event_id for item in emitted if isinstance(item.record, Transaction)}
    started_ms = int(time.time() * 1000)
    produce(
        emitted,
        client_config=ctx.kafka,
        transactions_topic=ctx.settings.topics.transactions,
        labels_topic=ctx.settings.topics.labels,
        schema_registry=wiring.schema_registry(ctx.settings),
        rate=rate,
    )
    ended_ms = int(time.time() * 1000)
    return _collect(ctx, ids, started_ms, ended_ms, rate)


def _collect(
    ctx: DemoContext, ids: set[str], started_ms: int, ended_ms: int, rate: float
) -> LiveResult:
    """Read predictions until every event of the segment has a served one (deadline)."""
    decode = prediction_decoder(wiring.schema_registry(ctx.settings))
    deadline = time.monotonic() + _DEADLINE_S
    while True:
        served: dict[str, int] = {}
        unserved: dict[str, int] = {}
        latency: list[float] = []
        seen: set[str] = set()
        for message in read_to_end(ctx.kafka, ctx.settings.topics.predictions):
            prediction = decode(message.value() or b"")
            if prediction.event_id not in ids:
                continue
            counts = served if prediction.served else unserved
            counts[prediction.variant] = counts.get(prediction.variant, 0) + 1
            if prediction.served and prediction.event_id not in seen:
                seen.add(prediction.event_id)
                latency.append(float(message.timestamp()[1] - prediction.source_timestamp))
        if len(seen) == len(ids):
            return LiveResult(len(ids), rate, started_ms, ended_ms, latency, served, unserved)
        if time.monotonic() > deadline:
            msg = (
                f"live segment: {len(ids) - len(seen)} of {len(ids)} events have no served "
                f"prediction after {_DEADLINE_S:.0f}s; see {ctx.home / 'logs'}"
            )
            raise ServiceError(msg)
        time.sleep(0.5)  # poll interval of the deadline loop
