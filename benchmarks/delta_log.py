"""What a long-running worker leaves in a Delta table, and what opening the table costs then.

A live feature worker commits each table once per epoch (1 s): 86,400 versions a day.

(a) Opening a table on the local filesystem lists its whole `_delta_log`, however recent
    its last checkpoint: a table of 200 versions, checkpointed, is opened with 0,
    `--entries` more entries in its log (names Delta ignores stand in for old versions:
    they are listed and skipped all the same). Floor, same run: `os.scandir` and a `stat`
    of every entry, the least a listing costs. The appender opens its table at every
    checkpoint (every 25 versions), and every reader opens it.
(b) `--commits` commits of `--rows` fraud feature rows through `DeltaAppender`, compacting
    every `--compact-every` (checkpoints every 25), with the worker's retention (7 days:
    nothing is old enough to go during the run) and with a retention of 0 (housekeeping
    deletes what a compaction replaced and the log before the checkpoint): `_delta_log`
    entries, data files and MB on disk at the end, and CPU per commit. Each background
    checkpoint is waited for after its commit, so that none is skipped.

Every figure is the median over `--reps` repetitions.

    python benchmarks/delta_log.py [--entries 10000 50000 200000 --commits 600 --reps 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from _common import ProcessCpu, median, write_result
from delta_commits import FS, vectors
from deltalake import DeltaTable, write_deltalake
from rich.console import Console
from rich.table import Table

from streams import delta_tables
from streams.sinks.delta_appender import RETENTION, DeltaAppender


@dataclass(frozen=True)
class Options:
    """The benchmark's knobs (see `--help`)."""

    entries: list[int]
    commits: int
    rows: int
    compact_every: int
    reps: int
    seed: int


def _ms(seconds: float) -> float:
    return round(1000 * seconds, 2)


def open_costs(opts: Options, workdir: Path) -> list[dict[str, Any]]:
    """(a): per log size, the median open and listing-floor times."""
    uri = workdir / "opened"
    for i in range(200):
        write_deltalake(str(uri), pa.table({"x": [i]}), mode="append")
    DeltaTable(str(uri)).create_checkpoint()
    log = uri / "_delta_log"
    rows = []
    for target in [0, *sorted(opts.entries)]:
        for i in range(len(os.listdir(log)), target):
            (log / f"_filler-{i:09d}.old").touch()
        opens, floors = [], []
        for _ in range(opts.reps):
            started = time.perf_counter()
            DeltaTable(str(uri)).version()
            opens.append(time.perf_counter() - started)
            started = time.perf_counter()
            with os.scandir(log) as listing:
                for entry in listing:
                    entry.stat()
            floors.append(time.perf_counter() - started)
        row = {
            "log_entries": len(os.listdir(log)),
            "open_ms": _ms(median(opens)),
            "floor_ms": _ms(median(floors)),
        }
        row["open_over_floor"] = round(row["open_ms"] / max(row["floor_ms"], 1e-3), 1)
        print(f"{row['log_entries']:,} log entries: open {row['open_ms']} ms", flush=True)
        rows.append(row)
    return rows


def long_run(opts: Options, rows: list[Any], workdir: Path, retention: timedelta) -> dict[str, Any]:
    """(b): what `opts.commits` commits leave with `retention`, and their CPU per commit."""
    uri = workdir / "features"
    row_format = delta_tables.feature_rows(FS)
    appender = DeltaAppender(
        str(uri),
        delta_tables.features_schema(FS),
        app_id="bench",
        partition_by=["event_date"],
        resume_version=None,
        compact_every=opts.compact_every,
        retention=retention,
    )
    cpu = ProcessCpu(os.getpid())  # every thread: commits, checkpoints, housekeeping
    for commit in range(opts.commits):
        appender.add_rows(rows[commit * opts.rows : (commit + 1) * opts.rows], row_format)
        appender.commit()
        appender.settle()
    spent = cpu.used()
    data = [p for p in uri.rglob("*.parquet") if "_delta_log" not in p.parts]
    return {
        "log_entries": len(os.listdir(uri / "_delta_log")),
        "data_files": len(data),
        "data_mb": round(sum(p.stat().st_size for p in data) / 1e6, 1),
        "table_files": len(DeltaTable(str(uri)).file_uris()),
        "cpu_ms_per_commit": round(1000 * spent / opts.commits, 1),
    }


def run(opts: Options) -> dict[str, Any]:
    rows = vectors(opts.commits * opts.rows, opts.seed)
    opens: list[list[dict[str, Any]]] = []
    runs: dict[str, list[dict[str, Any]]] = {"kept": [], "housekept": []}
    for rep in range(opts.reps):
        with tempfile.TemporaryDirectory(prefix="bench-delta-log-") as tmp:
            if rep == 0:  # the open times are already medians over reps
                opens.append(open_costs(opts, Path(tmp)))
            for name, retention in (("kept", RETENTION), ("housekept", timedelta(0))):
                with tempfile.TemporaryDirectory(dir=tmp) as run_dir:
                    runs[name].append(long_run(opts, rows, Path(run_dir), retention))
        print(f"rep {rep}: {runs['kept'][-1]} / {runs['housekept'][-1]}", flush=True)
    return {
        "options": asdict(opts),
        "open": opens[0],
        "long_run": {
            name: {k: median([r[k] for r in reps]) for k in reps[0]} for name, reps in runs.items()
        },
    }


def report(results: dict[str, Any]) -> list[Table]:
    opens = Table(title="opening a table (200 versions, checkpointed) by _delta_log entries")
    for column in ("log entries", "open ms", "floor ms (scandir + stat)", "open / floor"):
        opens.add_column(column, justify="right")
    for row in results["open"]:
        opens.add_row(
            f"{row['log_entries']:,}",
            f"{row['open_ms']:,.1f}",
            f"{row['floor_ms']:,.1f}",
            f"{row['open_over_floor']:.1f}",
        )
    opts = results["options"]
    runs = Table(
        title=f"{opts['commits']} commits of {opts['rows']} feature rows, compacting every "
        f"{opts['compact_every']}"
    )
    runs.add_column("retention")
    for column in ("_delta_log entries", "data files", "data MB", "in the table", "CPU ms/commit"):
        runs.add_column(column, justify="right")
    for name, label in (("kept", "7 days"), ("housekept", "0")):
        r = results["long_run"][name]
        runs.add_row(
            label,
            f"{r['log_entries']:,}",
            f"{r['data_files']:,}",
            f"{r['data_mb']:.1f}",
            f"{r['table_files']:,}",
            f"{r['cpu_ms_per_commit']:.1f}",
        )
    return [opens, runs]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--entries", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    add("--commits", type=int, default=600, help="commits per long run")
    add("--rows", type=int, default=100, help="feature rows per commit")
    add("--compact-every", type=int, default=100, help="the appender's compact_every")
    add("--reps", type=int, default=3)
    add("--seed", type=int, default=7)
    opts = Options(**vars(parser.parse_args(argv)))
    results = run(opts)
    path = write_result("delta_log", results)
    for table in report(results):
        Console().print(table)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
