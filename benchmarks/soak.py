"""The live feature worker over minutes: does anything grow that should not?

The other benchmarks run for seconds; a worker runs for days. This runs the live flow as
`skewless features run` does (recovery on; Delta commits every `--commit-seconds`, 0: every
epoch) in a subprocess, offers `--rate` events/s of the benchmark world for `--seconds`,
and every `--interval` seconds samples the worker: CPU per offered event, resident memory,
its state log on disk, and its Delta features table (files, bytes, version). Freshness
(produced → visible in Redis, as in `benchmarks/features.py`) is reported per interval of
offering. The floor is the first interval: each figure of the last one is also given as a
ratio to it.

What is expected to grow: the entities' state while their windows fill (the world makes
60,000 events a simulated day; the longest windows are 7 days, kept 8 with lateness), so
CPU per event and memory rise at first (a bulk pass: ~20% from the first 100,000 events to
the steady state, `benchmarks/features.py --events 500000`), and the Delta table's files
until the worker's compaction every 600 commits. What is not: anything after that.

The source topic has `--partitions` partitions (4) and the producer lingers `--linger-ms`
(100 ms, which freshness includes): the embedded broker stops answering fetches of a
partition holding some thousands of record batches (README, The embedded broker;
`benchmarks/broker_batches.py`), and a 5 ms linger on one partition gets there in about 80
seconds at 1,500 events/s.

    python benchmarks/soak.py [--rate 1500 --seconds 180 --interval 30]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
from _common import BenchServices, bench_services, percentile, write_result
from deltalake import DeltaTable
from features import log_tail, parse_options, warm_live_worker, world_events
from rich.console import Console
from rich.table import Table

from streams.delta_tables import FEATURES, table_uri
from streams.state_log import DIR_NAME


@dataclass(frozen=True)
class Options:
    rate: float
    seconds: float
    interval: float
    partitions: int
    linger_ms: int
    commit_seconds: float
    warmup: int
    sample_every: int
    poll_ms: float
    seed: int


def _tree(path: Path) -> tuple[int, int]:
    """Files and bytes under `path` (0, 0 if it is not there)."""
    files = size = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                size += (Path(root) / name).stat().st_size
            except OSError:  # a file replaced between listing and stat
                continue
            files += 1
    return files, size


@dataclass
class _Sampler:
    """The worker's resources at each interval's end."""

    pid: int
    state_log: Path
    features: str
    samples: list[dict[str, float]]

    def sample(self, at_s: float, produced: int) -> None:
        process = psutil.Process(self.pid)
        times = process.cpu_times()
        _, log_bytes = _tree(self.state_log)
        table_files, table_bytes = _tree(Path(self.features))
        self.samples.append(
            {
                "at_s": at_s,
                "produced": produced,
                "cpu_s": times.user + times.system,
                "rss_mb": process.memory_info().rss / 2**20,
                "state_log_mb": log_bytes / 2**20,
                "delta_files": table_files,
                "delta_mb": table_bytes / 2**20,
                "delta_version": DeltaTable(self.features).version(),
            }
        )


def _intervals(
    samples: Sequence[Mapping[str, float]],
    seen_at: Mapping[int, float],
    sent_at: Sequence[float],
    start: float,
) -> list[dict[str, float]]:
    """Per interval between samples: CPU per event and freshness of the events sent in it."""
    rows = []
    for before, after in itertools.pairwise(samples):
        lo, hi = start + before["at_s"], start + after["at_s"]
        latencies = [
            (seen - sent_at[i]) * 1000 for i, seen in seen_at.items() if lo <= sent_at[i] < hi
        ]
        events = after["produced"] - before["produced"]
        rows.append(
            {
                **after,
                "cpu_us_per_event": (after["cpu_s"] - before["cpu_s"]) * 1e6 / max(1.0, events),
                "p50_ms": percentile(latencies, 50),
                "p99_ms": percentile(latencies, 99),
                "measured": len(latencies),
            }
        )
    return rows


def run(opts: Options, services: BenchServices, workdir: Path) -> dict[str, Any]:
    world = parse_options(["--seed", str(opts.seed)])
    total = opts.warmup + int(opts.rate * opts.seconds)
    events = world_events(world, total, seed=opts.seed + 2, out_of_order=0.0)
    with warm_live_worker(
        services,
        workdir / "soak",
        events,
        partitions=opts.partitions,
        recovery=True,
        warmup=opts.warmup,
        rate=opts.rate,
        producer_options={"linger.ms": str(opts.linger_ms)},
        commit_seconds=opts.commit_seconds,
    ) as live:
        producer, worker = live.producer, live.worker
        probe = live.probe(range(opts.warmup, total, opts.sample_every))
        assert live.spec.recovery_dir is not None
        sampler = _Sampler(
            worker.pid,
            Path(live.spec.recovery_dir) / DIR_NAME,
            table_uri(live.spec.delta_root, FEATURES),
            [],
        )
        start = time.monotonic()
        sampler.sample(0.0, opts.warmup)
        producer.start()
        next_sample = start + opts.interval
        deadline = start + opts.seconds + 60
        while not probe.complete() and time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError(f"feature worker exited early with code {worker.returncode}")
            probe.poll(producer.produced)
            now = time.monotonic()
            if now >= next_sample and next_sample <= start + opts.seconds:
                sampler.sample(now - start, producer.produced)
                print(f"{now - start:5.0f} s: {producer.produced:,} offered", flush=True)
                next_sample += opts.interval
            time.sleep(opts.poll_ms / 1000)
        producer.join()
        if producer.error is not None:
            raise RuntimeError(f"paced producer failed: {producer.error}") from producer.error
    rows = _intervals(sampler.samples, probe.seen_at, producer.sent_at, start)
    first, last = rows[0], rows[-1]
    log = log_tail(workdir / "soak-worker.log", 200)
    return {
        "options": asdict(opts),
        "intervals": rows,
        "last_to_first": {
            k: last[k] / first[k] if first[k] else float("nan")
            for k in ("cpu_us_per_event", "rss_mb", "p99_ms", "state_log_mb", "delta_files")
        },
        "never_seen": len(probe.measured) - len(probe.seen_at),
        "worker_exit_code": live.exit_code,
        "worker_warnings": [line for line in log.splitlines() if "Kafka topic" in line],
    }


def report(results: Mapping[str, Any]) -> Table:
    opts = results["options"]
    table = Table(
        title=f"live feature worker, recovery on, {opts['rate']:,.0f} events/s, "
        f"{opts['partitions']} partitions, linger {opts['linger_ms']} ms, Delta commits "
        f"every {opts['commit_seconds']:g} s"
    )
    # until: seconds into the offering; CPU per offered event; freshness ms; the state log
    # on disk and the Delta features table (files, MB, version).
    for column in ("until s", "offered", "CPU µs/ev", "RSS MB", "p50 ms", "p99 ms",
                   "log MB", "Δ files", "Δ MB", "Δ v"):  # fmt: skip
        table.add_column(column, justify="right")
    for row in results["intervals"]:
        table.add_row(
            f"{row['at_s']:.0f}",
            f"{row['produced'] / 1000:,.0f}k",
            f"{row['cpu_us_per_event']:.0f}",
            f"{row['rss_mb']:.0f}",
            f"{row['p50_ms']:.0f}",
            f"{row['p99_ms']:.0f}",
            f"{row['state_log_mb']:.1f}",
            f"{row['delta_files']:.0f}",
            f"{row['delta_mb']:.1f}",
            f"{row['delta_version']:.0f}",
        )
    ratios = results["last_to_first"]
    table.caption = (
        "last / first interval: "
        + ", ".join(f"{name} {value:.2f}×" for name, value in ratios.items())
        + f"; never seen: {results['never_seen']}; worker exit {results['worker_exit_code']}"
    )
    return table


def parse_soak_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--rate", type=float, default=1_500, help="offered events/s")
    add("--seconds", type=float, default=180, help="how long to offer it")
    add("--interval", type=float, default=30, help="seconds between samples")
    add("--partitions", type=int, default=4, help="source topic partitions")
    add("--linger-ms", type=int, default=100, help="the producer's linger (see above)")
    add(
        "--commit-seconds",
        type=float,
        default=10,
        help="the worker's Delta commit interval (SKEWLESS_DELTA_COMMIT_SECONDS, as its"
        " default; 0: every epoch)",
    )
    add("--warmup", type=int, default=2_000, help="events the worker must show first")
    add("--sample-every", type=int, default=20, help="measure every n-th offered event")
    add("--poll-ms", type=float, default=20, help="pause between Redis visibility polls")
    add("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.seconds < 2 * args.interval or args.interval <= 0 or args.rate <= 0:
        parser.error("--seconds must cover at least two --interval (> 0), --rate above 0")
    return Options(**vars(args))


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_soak_options(argv)
    with bench_services() as services, tempfile.TemporaryDirectory() as tmp:
        results = run(opts, services, Path(tmp))
    path = write_result("soak", results)
    Console().print(report(results))
    for line in results["worker_warnings"]:
        print(f"worker: {line}")
    print(f"wrote {path}")
    return 0 if results["worker_exit_code"] == 0 and results["never_seen"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
