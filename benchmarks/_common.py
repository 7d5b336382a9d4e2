"""Shared benchmark helpers: services, fresh topics, paced timing, medians, result files.

Benchmarks use the services the environment names (`SKEWLESS_KAFKA_BOOTSTRAP`,
`SKEWLESS_REDIS_URL`) or start an embedded broker and Redis for their duration, in a
private state directory, and stop only what they started. Results go to
`benchmarks/results/<name>.json`.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import redis
from confluent_kafka import Producer

from skewless.endpoints import kafka_config as endpoint_kafka_config
from skewless.native import compiled_modules
from skewless.services import embedded_services
from skewless.settings import load_settings
from streams.kafka_admin import TopicSpec, create_topics

__all__ = [
    "PRODUCER_CONFIG",
    "RESULTS_DIR",
    "BenchServices",
    "MachineCpu",
    "ProcessCpu",
    "bench_services",
    "delete_prefix",
    "fresh_topic",
    "frozen_heap",
    "median",
    "percentile",
    "produce_all",
    "stop_process",
    "stopwatch",
    "write_result",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TOPIC_CONFIG = {"retention.ms": str(24 * 3600 * 1000), "cleanup.policy": "delete"}
# Partitions of the topics a live (paced) measurement runs on: one, as one worker per stage
# reads them. The embedded broker (Tansu 0.6, memory storage) scans every record batch a
# partition holds on each fetch, and a live producer lingering 5 ms adds ~200 batches per
# partition per second: measured with one consumer of a 4-partition topic at 5,000 msg/s,
# its CPU climbs from 0.24 to 0.99 of a core over 20 s (to 0.18 with linger 20 ms;
# producing alone, no consumer: 0.05).
# At 4 partitions the broker takes 0.6-0.9 of the 2 cores within a 10 s scoring phase.
# Retention is not enforced and DeleteRecords does not answer, so nothing trims the logs.
LIVE_PARTITIONS = 1
# An ordinary, durable application producer: idempotent, acks=all, a short linger.
PRODUCER_CONFIG: dict[str, str] = {
    "enable.idempotence": "true",
    "acks": "all",
    "linger.ms": "5",
    "batch.num.messages": "10000",
    "compression.type": "lz4",
    "queue.buffering.max.messages": "1000000",
}


@dataclass(frozen=True)
class BenchServices:
    """Where a benchmark's broker and Redis are, and whether this run started them."""

    kafka_config: dict[str, str]
    redis_url: str
    redis_password: str | None
    embedded: bool

    def redis_client(self) -> redis.Redis:
        """A new client on the benchmark's Redis."""
        return redis.Redis.from_url(self.redis_url, password=self.redis_password)


@contextmanager
def bench_services() -> Iterator[BenchServices]:
    """Configured services, or embedded ones started (and stopped) around the block."""
    with tempfile.TemporaryDirectory(prefix="skewless-bench-") as state_dir:
        settings = load_settings(state_dir=Path(state_dir))
        with embedded_services(settings) as endpoints:
            password = settings.redis_password
            yield BenchServices(
                kafka_config=endpoint_kafka_config(settings, endpoints),
                redis_url=endpoints.redis_url,
                redis_password=password.get_secret_value() if password else None,
                embedded=endpoints.kafka_managed or endpoints.redis_managed,
            )


def fresh_topic(kafka_config: Mapping[str, str], prefix: str, partitions: int) -> str:
    """Create a topic with a unique name and `partitions` partitions; return its name."""
    name = f"bench-{prefix}-{uuid.uuid4().hex[:10]}"
    create_topics(kafka_config, [TopicSpec(name, partitions, 1, TOPIC_CONFIG)])
    return name


def produce_all(
    kafka_config: Mapping[str, str],
    topic: str,
    records: Sequence[tuple[bytes, bytes]],
    *,
    timeout_s: float = 120,
) -> None:
    """Produce `(key, value)` records and wait until every one is acknowledged."""
    producer = Producer({**PRODUCER_CONFIG, **kafka_config})
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(timeout_s)
    if remaining:
        msg = (
            f"{remaining} of {len(records)} records to {topic!r} unacknowledged after {timeout_s}s"
        )
        raise RuntimeError(msg)


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete every key starting with `prefix:` (a benchmark's online store); the count."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += int(client.unlink(*batch))
            batch.clear()
    if batch:
        deleted += int(client.unlink(*batch))
    return deleted


def median(values: Sequence[float]) -> float:
    """The median of `values` (NaN when empty)."""
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0-100) of `values` by nearest rank (NaN when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def _environment() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "compiled": sorted(compiled_modules()),  # setup.py's modules, as `make` built them
        "python_ns_per_step": _python_speed(),
    }


def _python_speed(steps: int = 2_000_000) -> float:
    """Nanoseconds per step of a plain Python loop, best of 3: this machine's speed now.

    The machines are shared: the same code measured up to 2.7x apart on different days.
    Figures compare only with figures of a similar speed; ratios to a floor measured in
    the same run travel better.
    """
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(steps):
            total += i
        best = min(best, time.perf_counter() - start)
    return round(best / steps * 1e9, 1)


def write_result(name: str, payload: Mapping[str, Any]) -> Path:
    """Write `payload` (plus the environment) to `benchmarks/results/<name>.json`."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    document = {"benchmark": name, "environment": _environment(), **payload}
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


@contextmanager
def frozen_heap() -> Iterator[None]:
    """No long garbage collections in the benchmark's own process while it measures.

    A benchmark process holds what it imported (MLflow, Arrow, pandas: ~400,000 objects)
    and a full collection walks all of it with the interpreter lock held: 190-310 ms in
    `benchmarks/scoring.py`, once or twice per 10 s phase, while its paced producer and
    its watcher wait. Frozen first, collections walk only what the measurement allocates.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """`with stopwatch() as took:` ... then `took[0]` is the block's wall seconds."""
    took: list[float] = []
    start = time.perf_counter()
    try:
        yield took
    finally:
        took.append(time.perf_counter() - start)


class ProcessCpu:
    """The CPU seconds (user + system) process `pid` has used since this was made."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self._start = self._seconds()

    def _seconds(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def used(self) -> float:
        return self._seconds() - self._start


class MachineCpu:
    """How busy this machine's cores have been since this was made (a share of their time)."""

    def __init__(self) -> None:
        self._start = psutil.cpu_times()

    def busy(self) -> float:
        now = psutil.cpu_times()
        total = sum(now) - sum(self._start)
        idle = _idle(now) - _idle(self._start)
        return 1.0 - idle / total if total > 0 else float("nan")


def _idle(times: Any) -> float:
    """Idle CPU seconds in `psutil.cpu_times()` (waiting for I/O counts: Linux has it)."""
    return float(times.idle + getattr(times, "iowait", 0.0))


def stop_process(process: subprocess.Popen[bytes], *, timeout_s: float = 30.0) -> int:
    """SIGTERM (a dataflow stops cleanly on it), then SIGKILL if it lingers; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
