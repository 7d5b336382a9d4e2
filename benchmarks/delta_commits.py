"""Delta commits through the appender: CPU per commit as the table's log grows.

A live feature worker commits each table once per epoch (1 s), so a table gains ~3,600
versions an hour. This commits `--commits` versions of `--rows` fraud feature rows each
(vectors of the benchmark world, computed by the shared kernels) through
`DeltaAppender`, as the worker's commit thread does, and reports the CPU per commit of
this process (the commit's Rust threads and the background checkpoints included) in
blocks of `--block` versions: the first block, the last, and their ratio. Before the
appender reopened its handle from each checkpoint, versions 350-400 cost 5.7× versions
0-50 (274 against 48 ms, one rep); reopened, 1.7× (63 against 37 ms, medians of 3).
What was left grew with the table's files (`--commits 1500 --block 250`: 41.8 → 119.7
ms, 2.86×); the appender now also compacts every 600 of its commits: 46.6 → 50.4 ms,
1.08× (one rep each; the compactions' CPU is in the figures). The last row is one more
block after `skewless compact` (`streams.maintenance.compact_table`).

Floor, same run: pyarrow writing the same rows as one Parquet file per commit (the data
file every commit writes), reported as appender / floor per block.

Every figure is the median over `--reps` repetitions, each on a fresh table.

    python benchmarks/delta_commits.py [--commits 400 --rows 150 --reps 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from _common import ProcessCpu, median, write_result
from rich.console import Console
from rich.table import Table

from schemas.features import CompiledFeatureSet, FeatureVector, LocalEngine
from schemas.features.fraud import FRAUD_FEATURES
from schemas.records import Transaction
from streams import delta_tables
from streams.generator import World, WorldConfig
from streams.maintenance import compact_table
from streams.sinks.delta_appender import DeltaAppender

FS = FRAUD_FEATURES


@dataclass(frozen=True)
class Options:
    """The benchmark's knobs (see `--help`)."""

    commits: int
    rows: int
    block: int
    reps: int
    seed: int


def vectors(n: int, seed: int) -> list[FeatureVector]:
    """Feature vectors of the first `n` transactions of the benchmark world, in order."""
    config = WorldConfig(seed=seed, cards=5_000, merchants=500, out_of_order=0.0)
    engine = LocalEngine(CompiledFeatureSet(FS))
    out: list[FeatureVector] = []
    for item in World.fresh(config).stream(n * 2):
        event = item.record
        if not isinstance(event, Transaction):
            continue
        values, late = engine.compute(event)
        out.append(
            FeatureVector(
                event_id=event.event_id,
                keys=(event.card_id, event.merchant_id),
                event_time=event.event_time,
                source_timestamp=event.event_time,
                source_partition=0,
                source_offset=len(out),
                computed_at=event.event_time,
                definition_version=FS.version,
                late=late,
                values=values,
            )
        )
        if len(out) == n:
            break
    return out


def one_rep(opts: Options, rows: list[FeatureVector], workdir: Path) -> dict[str, list[float]]:
    """CPU ms per commit, per block, for the appender and the Parquet floor."""
    row_format = delta_tables.feature_rows(FS)
    appender = DeltaAppender(
        str(workdir / "features"),
        delta_tables.features_schema(FS),
        app_id="bench",
        partition_by=["event_date"],
        resume_version=None,
    )
    cpu = ProcessCpu(os.getpid())  # every thread of this process: commits, checkpoints
    blocks: dict[str, list[float]] = {"appender": [], "floor": []}
    for start in range(0, opts.commits, opts.block):
        spent = {"appender": 0.0, "floor": 0.0}
        for commit in range(start, min(start + opts.block, opts.commits)):
            batch = rows[commit * opts.rows : (commit + 1) * opts.rows]
            before = cpu.used()
            table = row_format.build(batch)
            pq.write_table(table, workdir / f"floor-{commit}.parquet")
            spent["floor"] += cpu.used() - before
            before = cpu.used()
            appender.add_rows(batch, row_format)
            appender.commit()
            spent["appender"] += cpu.used() - before
        size = min(opts.block, opts.commits - start)
        for name, seconds in spent.items():
            blocks[name].append(1000 * seconds / size)
    # `skewless compact`, then one more block of commits: what the files cost.
    compact_table(appender.uri, retention=timedelta(days=7))
    before = cpu.used()
    for commit in range(opts.commits, opts.commits + opts.block):
        appender.add_rows(rows[commit * opts.rows : (commit + 1) * opts.rows], row_format)
        appender.commit()
    blocks["compacted"] = [1000 * (cpu.used() - before) / opts.block]
    return blocks


def run(opts: Options) -> dict[str, Any]:
    """Every rep; medians per block and the figures the table shows."""
    rows = vectors((opts.commits + opts.block) * opts.rows, opts.seed)
    reps = []
    for rep in range(opts.reps):
        with tempfile.TemporaryDirectory(prefix="bench-delta-") as tmp:
            blocks = one_rep(opts, rows, Path(tmp))
        reps.append(blocks)
        first, last = blocks["appender"][0], blocks["appender"][-1]
        print(f"rep {rep}: {first:.1f} → {last:.1f} ms per commit", flush=True)
    count = len(reps[0]["appender"])
    per_block = {
        name: [median([r[name][b] for r in reps]) for b in range(count)]
        for name in ("appender", "floor")
    }
    appender, floor = per_block["appender"], per_block["floor"]
    return {
        "options": asdict(opts),
        "blocks_ms_per_commit": per_block,
        "first_block_ms": appender[0],
        "last_block_ms": appender[-1],
        "growth": appender[-1] / appender[0],
        "compacted_ms": median([r["compacted"][0] for r in reps]),
        "floor_ms": median(floor),
        "ratio_first": appender[0] / floor[0],
        "ratio_last": appender[-1] / floor[-1],
        "reps": reps,
    }


def report(results: dict[str, Any]) -> Table:
    opts = results["options"]
    table = Table(title=f"Delta commits of {opts['rows']} feature rows, CPU ms per commit")
    for column in ("versions", "appender", "floor (Parquet file)", "appender / floor"):
        table.add_column(column, justify="right")
    per_block = results["blocks_ms_per_commit"]
    for b, (ms, floor) in enumerate(zip(per_block["appender"], per_block["floor"], strict=True)):
        start = b * opts["block"]
        end = min(start + opts["block"], opts["commits"])
        table.add_row(f"{start}-{end}", f"{ms:.1f}", f"{floor:.1f}", f"{ms / floor:.1f}×")
    table.add_row("last / first", f"{results['growth']:.2f}×", "", "")
    table.add_row("compacted, next block", f"{results['compacted_ms']:.1f}", "", "")
    return table


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--commits", type=int, default=400, help="versions committed per repetition")
    add("--rows", type=int, default=150, help="feature rows per commit")
    add("--block", type=int, default=50, help="versions per reported block")
    add("--reps", type=int, default=3)
    add("--seed", type=int, default=7)
    return Options(**vars(parser.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_options(argv)
    results = run(opts)
    path = write_result("delta_commits", results)
    Console().print(report(results))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
