"""Feature worker benchmark: sustained throughput against a floor, and p99 freshness.

1. Throughput: N transactions of the synthetic fraud world are pre-produced to a fresh
   4-partition topic; one worker with every sink on (Redis, Delta, the features topic, dead
   letters) runs the bounded flow to the end of it. Events / wall seconds of
   `run_dataflow`, startup included; and the rate over the second half of the stream, from
   the Delta commits' times (`later_half_rate`: the cost grows while windows fill, so
   `--events 500000` shows the steady state).
2. Floor, same run, same topic: a bare confluent-kafka loop that consumes every partition
   with `assign()` to EOF, decodes each value with the same codec and produces the value to
   another topic with the same producer options (its producer made ready before the clock
   starts: see `floor_pass`). Reported as pipeline / floor.
   Unless `--no-budget`, each rep also times the same pass without the sinks (the stores sink
   writes nothing), without the view kernels (each view step runs a kernel returning
   zeros) and without both (the skeleton: Kafka, decoding, the merge, request features,
   keying, Bytewax): µs per event of each, against the 40 µs the target leaves.
3. Freshness, on a fresh `--live-partitions` topic (1 by default: see
   `_common.LIVE_PARTITIONS` for why): the live flow runs in a subprocess while a paced
   producer offers `--rate` events/s for `--seconds`, once the worker has shown the
   `--warmup` events in Redis and committed them to Delta (its first commit is start-up,
   not steady state). Every `--sample-every`-th event is measured: its freshness is the
   first time its card's Redis hash shows it (or a later event of the card, which includes
   it) minus the time it was handed to the producer. Every `--poll-ms` the poller sends one
   pipelined `HGET _m` (the metadata, event id first, see `schemas.features.online`) per
   card with measured events outstanding, and stamps what it sees with the reply time:
   figures are upper bounds by up to `--poll-ms` (20 ms: the probe itself loads the 2 cores
   less) plus one round trip.
   The freshness world has no late delivery, so every event of a card eventually shows in
   or under a later one.

Run: `python benchmarks/features.py [--events 100000 --reps 3 --rate 10000 --seconds 10]`.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, cast
from unittest import mock

import redis
from _common import (
    LIVE_PARTITIONS,
    PRODUCER_CONFIG,
    BenchServices,
    ProcessCpu,
    bench_services,
    delete_prefix,
    fresh_topic,
    frozen_heap,
    median,
    percentile,
    produce_all,
    stop_process,
    stopwatch,
    write_result,
)
from _feature_worker import SPEC_ENV, WorkerSpec, feature_flow
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from rich.console import Console
from rich.table import Table

from schemas.contracts import codec_for
from schemas.features.fraud import FRAUD_FEATURES
from schemas.features.kernels import ViewKernel
from schemas.features.online import META_FIELD, entity_key, event_id_of
from schemas.records import Transaction
from streams.delta_tables import FEATURES, table_uri
from streams.features import flow as feature_flow_module
from streams.features.steps import ViewLogic
from streams.generator import TokenBucket, World, WorldConfig
from streams.kafka_assign import assign
from streams.ready_producer import ready_producer
from streams.runner import run_dataflow

TARGET_EVENTS_PER_S = 25_000
TARGET_P99_MS = 500.0
WORKER = Path(__file__).resolve().parent / "_feature_worker.py"


@dataclass(frozen=True)
class Options:
    """The benchmark's knobs (see `--help`)."""

    events: int
    reps: int
    rate: float
    seconds: float
    cards: int
    merchants: int
    seed: int
    partitions: int
    live_partitions: int
    sample_every: int
    warmup: int
    poll_ms: float
    skip_throughput: bool
    skip_freshness: bool
    recovery: bool
    budget: bool


@dataclass(frozen=True)
class Timed:
    """One timed pass over the source topic.

    `later_half_events_per_s`: of a pass with the sinks on, the rate over the second half
    of the stream (`later_half_rate`); None otherwise.
    """

    events: int
    seconds: float
    later_half_events_per_s: float | None = None

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def world_events(opts: Options, n: int, *, seed: int, out_of_order: float) -> list[Transaction]:
    """The first `n` transactions of a fraud world with the benchmark's cardinalities."""
    config = WorldConfig(
        seed=seed, cards=opts.cards, merchants=opts.merchants, out_of_order=out_of_order
    )
    stream = World.fresh(config).stream(n)
    return [e.record for e in stream if isinstance(e.record, Transaction)]


def encoded(events: Sequence[Transaction]) -> list[tuple[bytes, bytes]]:
    """`(card id, Avro value)` records, as the transactions topic holds them."""
    codec = codec_for("Transaction")
    return [(e.card_id.encode(), codec.encode(e.to_avro())) for e in events]


def worker_spec(
    services: BenchServices,
    source_topic: str,
    delta_root: Path,
    *,
    recovery: bool,
    commit_seconds: float = 0.0,
) -> WorkerSpec:
    """A spec writing to fresh features/dead-letter topics and a fresh Redis prefix."""
    config = services.kafka_config
    return WorkerSpec(
        kafka_config=config,
        redis_url=services.redis_url,
        redis_prefix=f"bench-{uuid.uuid4().hex[:8]}",
        delta_root=str(delta_root),
        source_topic=source_topic,
        features_topic=fresh_topic(config, "fv", 4),
        dead_letter_topic=fresh_topic(config, "dl", 1),
        recovery_dir=str(delta_root / "recovery") if recovery else None,
        commit_seconds=commit_seconds,
    )


# --- throughput and floor ---------------------------------------------------------------


def pipeline_pass(
    services: BenchServices,
    topic: str,
    events: int,
    workdir: Path,
    *,
    recovery: bool = False,
    sinks: bool = True,
    kernels: bool = True,
) -> Timed:
    """Run the bounded flow over `topic` once; with its sinks, check Delta got every row.

    Without `sinks` the stores sink is built with no store to write (the vectors are still
    assembled and handed to it); without `kernels` each view step runs a kernel returning
    zeros (`_ZeroKernel`). Decoding, the merge, request features, keying and Bytewax run
    either way (the budget passes).
    """
    spec = worker_spec(services, topic, workdir / uuid.uuid4().hex[:8], recovery=recovery)
    flow = feature_flow(spec, bounded=True, stores=sinks)
    recovery_dir = Path(spec.recovery_dir) if spec.recovery_dir else None
    logic = ViewLogic if kernels else _ZeroViewLogic
    # The flow's step builders read `ViewLogic` when the dataflow starts.
    with mock.patch.object(feature_flow_module, "ViewLogic", logic), stopwatch() as took:
        run_dataflow(flow, recovery_dir=recovery_dir)
    if not sinks:
        return Timed(events, took[0])
    table = DeltaTable(table_uri(spec.delta_root, FEATURES))
    rows = table.to_pyarrow_dataset().count_rows()
    with services.redis_client() as client:
        delete_prefix(client, spec.redis_prefix)
    if rows != events:
        raise RuntimeError(f"pipeline pass wrote {rows} feature rows to Delta, expected {events}")
    return Timed(events, took[0], later_half_rate(table))


def later_half_rate(table: DeltaTable) -> float | None:
    """Rows per second the table gained over the second half of its rows, by commit times.

    A worker's per-event cost grows while its windows fill (the entities' state): the first
    100,000 events of the world are 1.7 simulated days, and a 500,000-event pass ran its
    first 100,000 at 123-131 µs per event and the rest at 145-170 (one run). None if the
    second half came in one commit.
    """
    writes = sorted(
        (h["timestamp"], h["operationMetrics"]["num_added_rows"])
        for h in table.history()
        if h.get("operation") == "WRITE"
    )
    total = sum(rows for _, rows in writes)
    done = 0
    for at_ms, rows in writes:
        done += rows
        if done * 2 >= total:
            span_s = (writes[-1][0] - at_ms) / 1000
            return (total - done) / span_s if span_s > 0 else None
    return None


def _consume_decode_produce(consumer: Consumer, producer: Producer, out_topic: str) -> int:
    """Consume assigned partitions to EOF, decode each value, produce it on; the count."""
    decode = codec_for("Transaction").decode
    pending = {tp.partition for tp in consumer.assignment()}
    count = 0
    while pending:
        for message in consumer.consume(500, 0.1):
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(f"floor consumer error: {error}")
                pending.discard(message.partition())
                continue
            value = message.value() or b""
            decode(value)
            while True:
                try:
                    producer.produce(out_topic, value=value, key=message.key())
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
            count += 1
    if producer.flush(60):
        raise RuntimeError(f"floor producer: records to {out_topic!r} unacknowledged after 60s")
    return count


def floor_pass(kafka_config: dict[str, str], topic: str, events: int) -> Timed:
    """The bare consume+decode+produce loop over `topic`, timed like the pipeline.

    Its producer is made ready before the clock starts: a fresh idempotent librdkafka
    producer waits for its producer id, and when the broker connection comes up after its
    first try, it tries again only 500 ms later (librdkafka's idempotence timer; measured:
    ready in 0.05-0.1 s or in 0.50-0.55 s), up to half of this ~1 s loop. The pipeline
    pays that start-up inside its own timing, in its Kafka sink, overlapped with its work.
    """
    out_topic = fresh_topic(kafka_config, "floor", 4)
    producer = ready_producer({**PRODUCER_CONFIG, **kafka_config}, out_topic, timeout_s=30)
    with stopwatch() as took:
        consumer = Consumer(
            {
                **kafka_config,
                "group.id": f"bench-floor-{uuid.uuid4().hex}",
                "enable.partition.eof": "true",
                "enable.auto.commit": "false",
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": "10",
            }
        )
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        # Started as the pipeline's source starts its consumers (see `streams.kafka_assign`).
        assign(
            consumer, [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions], timeout_s=30
        )
        try:
            count = _consume_decode_produce(consumer, producer, out_topic)
        finally:
            consumer.close()
    if count != events:
        raise RuntimeError(f"floor pass read {count} records, expected {events}")
    return Timed(events, took[0])


def throughput(opts: Options, services: BenchServices, workdir: Path) -> dict[str, Any]:
    """Pre-produce once, then alternate pipeline and floor passes `opts.reps` times."""
    records = encoded(world_events(opts, opts.events, seed=opts.seed, out_of_order=0.02))
    topic = fresh_topic(services.kafka_config, "tx", opts.partitions)
    produce_all(services.kafka_config, topic, records)
    runs: list[dict[str, float]] = []
    for rep in range(opts.reps):
        pipeline = pipeline_pass(services, topic, len(records), workdir, recovery=opts.recovery)
        floor = floor_pass(services.kafka_config, topic, len(records))
        run = {
            "rep": rep,
            "pipeline_s": pipeline.seconds,
            "pipeline_events_per_s": pipeline.events_per_s,
            "later_half_events_per_s": pipeline.later_half_events_per_s or float("nan"),
            "floor_s": floor.seconds,
            "floor_events_per_s": floor.events_per_s,
        }
        line = f"pipeline {pipeline.events_per_s:,.0f} ev/s, floor {floor.events_per_s:,.0f} ev/s"
        if opts.budget:
            for name, (sinks, kernels) in BUDGET_PASSES.items():
                timed = pipeline_pass(
                    services, topic, len(records), workdir, sinks=sinks, kernels=kernels
                )
                run[f"{name}_events_per_s"] = timed.events_per_s
                line += f", {name} {timed.events_per_s:,.0f}"
        runs.append(run)
        print(f"rep {rep}: {line}", flush=True)
    pipeline_median = median([r["pipeline_events_per_s"] for r in runs])
    floor_median = median([r["floor_events_per_s"] for r in runs])
    return {
        **({"budget": budget_figures(runs)} if opts.budget else {}),
        "events": len(records),
        "pipeline_events_per_s": pipeline_median,
        "later_half_events_per_s": median(
            [
                r["later_half_events_per_s"]
                for r in runs
                if not math.isnan(r["later_half_events_per_s"])
            ]
        ),
        "floor_events_per_s": floor_median,
        "ratio": pipeline_median / floor_median,
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "meets_target": pipeline_median >= TARGET_EVENTS_PER_S,
        "runs": runs,
    }


# --- budget: where a pass's time goes ----------------------------------------------------


class _ZeroKernel:
    """Stands in for a view's kernel and computes nothing: zeros, never late."""

    def __init__(self, kernel: ViewKernel) -> None:
        self.view = kernel.view
        self.retention_ms = kernel.retention_ms
        self._zeros = (0.0,) * len(kernel.view.aggregations)

    def new_state(self) -> tuple[()]:
        return ()

    def extract(self, event: Transaction) -> tuple[()]:
        return ()

    def apply(
        self, state: object, event_time: int, values: object
    ) -> tuple[tuple[float, ...], bool]:
        return self._zeros, False


class _ZeroViewLogic(ViewLogic):
    """The view step with its kernel stubbed out (`_ZeroKernel`): the step's own cost."""

    def __init__(self, kernel: ViewKernel, step: str, resume_state: Any) -> None:
        super().__init__(cast("ViewKernel", _ZeroKernel(kernel)), step, resume_state)


# What each budget pass leaves out of the full pipeline.
BUDGET_PASSES = {
    "no_sinks": (False, True),  # (sinks, kernels)
    "no_kernels": (True, False),
    "skeleton": (False, False),
}


def budget_figures(runs: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """Medians in µs per event, and the shares they imply (differences of medians).

    kernels = no_sinks - skeleton; sinks = no_kernels - skeleton: each what stubbing it
    out saved. `target_us` is what the throughput target leaves per event.
    """
    us = {
        name: median([1e6 / r[f"{name}_events_per_s"] for r in runs])
        for name in ("pipeline", "floor", *BUDGET_PASSES)
    }
    return {
        "us_per_event": us,
        "kernels_us": us["no_sinks"] - us["skeleton"],
        "sinks_us": us["no_kernels"] - us["skeleton"],
        "target_us": 1e6 / TARGET_EVENTS_PER_S,
    }


# --- freshness --------------------------------------------------------------------------


@dataclass
class VisibilityProbe:
    """Stamps when measured events first show in (or under a later event in) Redis."""

    client: redis.Redis
    keys: Sequence[str]  # the card hash of each event, by stream index
    index_of: Mapping[str, int]  # event id -> stream index
    measured: Sequence[int]  # stream indices to measure, ascending
    max_cards: int = 1000  # per round; the longest-outstanding first (insertion order)
    seen_at: dict[int, float] = field(default_factory=dict)
    requests: int = 0  # HGETs sent: the probe's own load on Redis and the CPU
    _next: int = 0
    _pending: dict[str, deque[int]] = field(default_factory=dict)

    def _enqueue(self, produced: int) -> None:
        while self._next < len(self.measured) and self.measured[self._next] < produced:
            index = self.measured[self._next]
            self._pending.setdefault(self.keys[index], deque()).append(index)
            self._next += 1

    def poll(self, produced: int) -> None:
        """One pipelined round of `HGET _m` (the metadata: event id) over outstanding cards.

        At most `max_cards` per round, so a backlog (an overloaded worker) cannot turn the
        poller into the bottleneck; cards re-enter at the back when they get new events.
        """
        self._enqueue(produced)
        if not self._pending:
            return
        cards = list(islice(self._pending, self.max_cards))
        self.requests += len(cards)
        pipe = self.client.pipeline(transaction=False)
        for key in cards:
            pipe.hget(key, META_FIELD)
        shown = pipe.execute()
        now = time.monotonic()
        for key, value in zip(cards, shown, strict=True):
            index = self.index_of.get(event_id_of(value)) if value else None
            if index is None:
                continue
            queue = self._pending[key]
            while queue and queue[0] <= index:
                self.seen_at[queue.popleft()] = now
            if not queue:
                del self._pending[key]

    def complete(self) -> bool:
        return self._next == len(self.measured) and not self._pending


class PacedProducer(threading.Thread):
    """Produces `records[start:]` at `rate` events/s, stamping each hand-off time."""

    def __init__(
        self,
        kafka_config: dict[str, str],
        topic: str,
        records: Sequence[tuple[bytes, bytes]],
        *,
        start: int,
        rate: float,
    ) -> None:
        super().__init__(name="paced-producer", daemon=True)
        self._producer = Producer({**PRODUCER_CONFIG, **kafka_config})
        self._topic, self._records, self._start, self._rate = topic, records, start, rate
        self.sent_at = [0.0] * len(records)
        self.produced = start  # stream index of the next record to produce
        self.error: BaseException | None = None

    def prime(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Produce `records` unpaced and wait for them: connection and producer id ready."""
        for key, value in records:
            self._producer.produce(self._topic, value=value, key=key)
        if self._producer.flush(60):
            raise RuntimeError("paced producer: warm-up records unacknowledged after 60s")

    def run(self) -> None:
        try:
            # 50 ms of burst: a short stall of this thread (GIL, CPU) is made up for.
            bucket = TokenBucket(self._rate, burst=max(1.0, self._rate / 20))
            for index in range(self._start, len(self._records)):
                key, value = self._records[index]
                bucket.take()
                self.sent_at[index] = time.monotonic()
                self._producer.produce(self._topic, value=value, key=key)
                self._producer.poll(0)
                self.produced = index + 1
            if self._producer.flush(60):
                raise RuntimeError("paced producer: records unacknowledged after 60s")
        except BaseException as exc:
            self.error = exc


def watch_visibility(
    probe: VisibilityProbe,
    produced: Any,
    worker: subprocess.Popen[bytes],
    *,
    timeout_s: float,
    poll_s: float,
) -> None:
    """Poll `probe` until it is complete; raise if the worker dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not probe.complete():
        if worker.poll() is not None:
            raise RuntimeError(f"feature worker exited early with code {worker.returncode}")
        if time.monotonic() > deadline:
            return
        probe.poll(produced())
        time.sleep(poll_s)


def await_delta_rows(
    spec: WorkerSpec, rows: int, worker: subprocess.Popen[bytes], *, timeout_s: float
) -> None:
    """Wait until the worker's Delta features table holds `rows` rows.

    A worker's first Delta commit of a run costs ~10x a later one (table state, object
    store and writer set-up); it is start-up, not steady state, so it ends the warm-up.
    """
    uri = table_uri(spec.delta_root, FEATURES)
    deadline = time.monotonic() + timeout_s
    while True:
        if worker.poll() is not None:
            raise RuntimeError(f"feature worker exited early with code {worker.returncode}")
        with contextlib.suppress(TableNotFoundError):
            if DeltaTable(uri).to_pyarrow_dataset().count_rows() >= rows:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the live worker did not commit {rows} rows within {timeout_s}s")
        time.sleep(0.1)  # polling interval of the deadline loop


def log_tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class LiveWorker:
    """A live feature worker (a subprocess) on a fresh topic, and the paced producer for it.

    `probe(measured)` watches stream indices of `events` in Redis; `exit_code` is set once
    the worker has been stopped (`warm_live_worker`'s exit).
    """

    spec: WorkerSpec
    worker: subprocess.Popen[bytes]
    producer: PacedProducer
    client: redis.Redis
    keys: list[str]
    index_of: dict[str, int]
    exit_code: int | None = None

    def probe(self, measured: Sequence[int]) -> VisibilityProbe:
        return VisibilityProbe(self.client, self.keys, self.index_of, measured)


@contextlib.contextmanager
def warm_live_worker(
    services: BenchServices,
    workdir: Path,
    events: Sequence[Transaction],
    *,
    partitions: int,
    recovery: bool,
    warmup: int,
    rate: float,
    producer_options: Mapping[str, str] | None = None,
    commit_seconds: float = 0.0,
) -> Iterator[LiveWorker]:
    """Start the live worker on a fresh `partitions`-partition topic and warm it up.

    The first `warmup` events are produced unpaced; the block starts once the worker has
    shown them in Redis and committed them to Delta. The producer (not started) offers the
    rest at `rate` events/s. On exit the worker is stopped (SIGTERM) and its Redis keys
    deleted; its log's tail is printed if the block failed or the worker did not exit 0.
    """
    topic = fresh_topic(services.kafka_config, "tx-live", partitions)
    spec = worker_spec(services, topic, workdir, recovery=recovery, commit_seconds=commit_seconds)
    records = encoded(events)
    keys = [entity_key(FRAUD_FEATURES, "card", e.card_id, prefix=spec.redis_prefix) for e in events]
    index_of = {e.event_id: i for i, e in enumerate(events)}
    log_path = workdir.parent / f"{workdir.name}-worker.log"
    client = services.redis_client()
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, str(WORKER)],
            env={**os.environ, SPEC_ENV: spec.to_env()},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    config = {**services.kafka_config, **(producer_options or {})}
    producer = PacedProducer(config, topic, records, start=warmup, rate=rate)
    live = LiveWorker(spec, worker, producer, client, keys, index_of)
    try:
        warm = live.probe(range(warmup))
        producer.prime(records[:warmup])
        watch_visibility(warm, lambda: warmup, worker, timeout_s=180, poll_s=0.05)
        if not warm.complete():
            raise RuntimeError("the live worker did not show the warm-up events within 180s")
        await_delta_rows(spec, warmup, worker, timeout_s=180)
        yield live
    except BaseException:
        print(f"worker log tail:\n{log_tail(log_path)}", file=sys.stderr)
        raise
    finally:
        live.exit_code = stop_process(worker)
        if live.exit_code != 0:
            print(
                f"worker exited {live.exit_code}; log tail:\n{log_tail(log_path)}", file=sys.stderr
            )
        delete_prefix(client, spec.redis_prefix)
        client.close()


def freshness(opts: Options, services: BenchServices, workdir: Path) -> dict[str, Any]:
    """Warm the live worker up, offer `rate` events/s for `seconds`, measure visibility."""
    total = opts.warmup + int(opts.rate * opts.seconds)
    events = world_events(opts, total, seed=opts.seed + 1, out_of_order=0.0)
    with warm_live_worker(
        services,
        workdir / "live",
        events,
        partitions=opts.live_partitions,
        recovery=opts.recovery,
        warmup=opts.warmup,
        rate=opts.rate,
    ) as live:
        producer = live.producer
        probe = live.probe(range(opts.warmup, total, opts.sample_every))
        cpu = ProcessCpu(live.worker.pid)
        with frozen_heap():
            producer.start()
            watch_visibility(
                probe,
                lambda: producer.produced,
                live.worker,
                timeout_s=opts.seconds + 60,
                poll_s=opts.poll_ms / 1000,
            )
            producer.join()
        worker_cpu_s = cpu.used()
        if producer.error is not None:
            raise RuntimeError(f"paced producer failed: {producer.error}") from producer.error
    assert live.exit_code is not None
    figures = _freshness_figures(opts, probe, producer.sent_at, live.exit_code)
    figures["worker_cpu_us_per_event"] = worker_cpu_s * 1e6 / producer.produced
    return figures


def _timeline(latencies: Mapping[int, float], sent_at: Sequence[float], start: float) -> list[Any]:
    """Per offered second: `[second, events measured, p50 ms, max ms]` (stalls show here)."""
    by_second: dict[int, list[float]] = {}
    for index, ms in latencies.items():
        by_second.setdefault(int(sent_at[index] - start), []).append(ms)
    return [
        [second, len(v), round(percentile(v, 50), 1), round(max(v), 1)]
        for second, v in sorted(by_second.items())
    ]


def _freshness_figures(
    opts: Options, probe: VisibilityProbe, sent_at: Sequence[float], worker_exit: int
) -> dict[str, Any]:
    """p50/p90/p99/max freshness ms, a per-second timeline, and the offered rate achieved."""
    by_index = {i: (seen - sent_at[i]) * 1000 for i, seen in probe.seen_at.items()}
    latencies = list(by_index.values())
    offered = sent_at[opts.warmup :]
    span = offered[-1] - offered[0]
    p99 = percentile(latencies, 99)
    return {
        "offered_rate": opts.rate,
        "achieved_rate": (len(offered) - 1) / span if span > 0 else float("nan"),
        "offered_events": len(offered),
        "offered_seconds": span,
        "sample_every": opts.sample_every,
        "sampled": len(probe.measured),
        "seen": len(latencies),
        "never_seen": len(probe.measured) - len(latencies),
        "poll_ms": opts.poll_ms,
        "probe_requests_per_s": probe.requests / span if span > 0 else float("nan"),
        "p50_ms": percentile(latencies, 50),
        "p90_ms": percentile(latencies, 90),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": p99,
        "max_ms": max(latencies, default=float("nan")),
        "target_p99_ms": TARGET_P99_MS,
        "meets_target": p99 < TARGET_P99_MS and len(latencies) == len(probe.measured),
        "over_target": sum(ms >= TARGET_P99_MS for ms in latencies),
        "worker_exit_code": worker_exit,
        "timeline": _timeline(by_index, sent_at, offered[0]),
    }


# --- report -----------------------------------------------------------------------------


def report(results: Mapping[str, Any]) -> Table:
    """The headline figures with their targets."""
    recovery = "on" if results["options"]["recovery"] else "off"
    table = Table(title=f"feature worker (all sinks on, recovery {recovery})")
    for column in ("figure", "value", "target"):
        table.add_column(column, justify="right" if column != "figure" else "left")
    tp = results.get("throughput")
    if tp is not None:
        mark = "✓" if tp["meets_target"] else "✗"
        target = f"≥ {TARGET_EVENTS_PER_S:,} {mark}"
        table.add_row("pipeline events/s (median)", f"{tp['pipeline_events_per_s']:,.0f}", target)
        later = f"{tp['later_half_events_per_s']:,.0f}"
        table.add_row(f"  over events {tp['events'] // 2:,}-{tp['events']:,}", later, "")
        table.add_row("floor events/s (median)", f"{tp['floor_events_per_s']:,.0f}", "")
        table.add_row("pipeline / floor", f"{tp['ratio']:.2f}", "")
        budget = tp.get("budget")
        if budget is not None:
            us = budget["us_per_event"]
            target = f"≤ {budget['target_us']:.0f}"
            table.add_row("µs per event: pipeline", f"{us['pipeline']:.1f}", target)
            table.add_row("  skeleton (no sinks, no kernels)", f"{us['skeleton']:.1f}", "")
            table.add_row("  + view kernels", f"{budget['kernels_us']:.1f}", "")
            table.add_row("  + sinks", f"{budget['sinks_us']:.1f}", "")
            table.add_row("  floor loop", f"{us['floor']:.1f}", "")
    fr = results.get("freshness")
    if fr is not None:
        mark = "✓" if fr["meets_target"] else "✗"
        offered = f"{fr['offered_rate']:,.0f}"
        table.add_row("offered rate achieved (ev/s)", f"{fr['achieved_rate']:,.0f}", offered)
        table.add_row("freshness p50 ms", f"{fr['p50_ms']:.1f}", "")
        table.add_row("freshness p99 ms", f"{fr['p99_ms']:.1f}", f"< {TARGET_P99_MS:g} {mark}")
        table.add_row("freshness max ms", f"{fr['max_ms']:.1f}", "")
        table.add_row("worker CPU µs per event", f"{fr['worker_cpu_us_per_event']:.0f}", "")
        table.add_row("sampled / never seen", f"{fr['sampled']} / {fr['never_seen']}", "0 unseen")
    return table


def parse_options(argv: Sequence[str] | None = None) -> Options:
    """Command-line options; the defaults are the issue's acceptance run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--events", type=int, default=100_000, help="events per throughput pass")
    add("--reps", type=int, default=3, help="throughput + floor repetitions (medians)")
    add("--rate", type=float, default=10_000, help="offered events/s for freshness")
    add("--seconds", type=float, default=10, help="how long to offer that rate")
    add("--cards", type=int, default=5_000)
    add("--merchants", type=int, default=500)
    add("--seed", type=int, default=7)
    add("--partitions", type=int, default=4, help="source topic partitions (throughput)")
    add(
        "--live-partitions",
        type=int,
        default=LIVE_PARTITIONS,
        help="source topic partitions (freshness)",
    )
    add("--sample-every", type=int, default=10, help="measure every n-th offered event")
    add("--warmup", type=int, default=2_000, help="events the live worker must show first")
    # Each poll is one pipelined HGET per card with measured events outstanding: at 5 ms
    # that was ~14k HGET/s, load on the same 2 cores the worker runs on. 20 ms bounds the
    # error at 20 ms against a 500 ms target.
    add("--poll-ms", type=float, default=20, help="pause between Redis visibility polls")
    add("--skip-throughput", action="store_true")
    add("--skip-freshness", action="store_true")
    add(
        "--budget",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time each rep without sinks, without kernels and without both",
    )
    add(
        "--recovery",
        action="store_true",
        help="run the worker with Bytewax recovery on (`skewless features run`'s default)",
    )
    return Options(**vars(parser.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table, write `benchmarks/results/features.json`."""
    opts = parse_options(argv)
    results: dict[str, Any] = {"options": asdict(opts)}
    with bench_services() as services, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        results["services"] = "embedded" if services.embedded else "configured"
        if not opts.skip_throughput:
            results["throughput"] = throughput(opts, services, Path(tmp))
        if not opts.skip_freshness:
            results["freshness"] = freshness(opts, services, Path(tmp))
    path = write_result("features", results)
    Console().print(report(results))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
