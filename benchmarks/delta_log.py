"""What a long-running worker leaves in a Delta table, and what opening and committing cost then.

A live feature worker committing each table once per epoch (1 s) adds 86,400 versions a
day, and the log keeps them for the retention (7 days: ~630,000 entries per table).

(a) A table of 26 versions of fraud feature rows, checkpointed, is given `--entries`
    older commits before its checkpoint (copies of a commit file, as a log holds them
    until its cleanup; delta-rs lists them and reads none). Then: opening it, median of
    `--reps`; floor, same run: `os.listdir` of the `_delta_log` (names only), the least a
    listing costs. On the local filesystem every read of the log lists the whole
    `_delta_log`, however recent its last checkpoint: the appender opens its table at
    every checkpoint (every 25 versions), every reader opens it.
(b) Then `--commits-per-size` commits of `--rows` feature rows through `DeltaAppender` on
    that table: CPU per commit (every thread of this process, background checkpoints
    included).
(c) `--commits` commits of `--rows` fraud feature rows through `DeltaAppender`, compacting
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
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import ProcessCpu, median, write_result
from delta_commits import FS, vectors
from deltalake import DeltaTable
from rich.console import Console
from rich.table import Table

from streams import delta_tables
from streams.sinks.delta_appender import RETENTION, DeltaAppender


@dataclass(frozen=True)
class Options:
    """The benchmark's knobs (see `--help`)."""

    entries: list[int]
    commits: int
    commits_per_size: int
    rows: int
    compact_every: int
    reps: int
    seed: int


def _ms(seconds: float) -> float:
    return round(1000 * seconds, 2)


def _appender(uri: Path, **kwargs: Any) -> DeltaAppender:
    return DeltaAppender(
        str(uri),
        delta_tables.features_schema(FS),
        app_id="bench",
        partition_by=["event_date"],
        resume_version=None,
        **kwargs,
    )


def _commit(appender: DeltaAppender, rows: list[Any], size: int, commit: int) -> None:
    row_format = delta_tables.feature_rows(FS)
    appender.add_rows(rows[commit * size : (commit + 1) * size], row_format)
    appender.commit()


def aged_table(uri: Path, rows: list[Any], size: int, older: int) -> int:
    """A table of 25 commits, checkpointed, whose log holds `older` commits before them.

    The versions are renumbered to follow the older ones (the checkpoint does not name
    its version: `_last_checkpoint` and the file name do). Returns the commits written.
    """
    appender = _appender(uri)
    for commit in range(25):
        _commit(appender, rows, size, commit)
    appender.settle()  # the background checkpoint at version 25
    log = uri / "_delta_log"
    if older:
        newest = older + 25
        sample = (log / f"{1:020}.json").read_bytes()
        (log / f"{newest:020}.json").write_bytes((log / f"{25:020}.json").read_bytes())
        (log / f"{25:020}.checkpoint.parquet").rename(log / f"{newest:020}.checkpoint.parquet")
        hint = json.loads((log / "_last_checkpoint").read_text())
        (log / "_last_checkpoint").write_text(json.dumps({**hint, "version": newest}))
        for version in range(newest):
            (log / f"{version:020}.json").write_bytes(sample)
    return 25


def by_log_size(opts: Options, rows: list[Any], workdir: Path) -> list[dict[str, Any]]:
    """(a) and (b): per log size, the median open, listing floor and commit CPU."""
    out = []
    for older in [0, *sorted(opts.entries)]:
        uri = workdir / f"aged-{older}"
        written = aged_table(uri, rows, opts.rows, older)
        log = uri / "_delta_log"
        opens, floors, commits = [], [], []
        for _ in range(opts.reps):
            started = time.perf_counter()
            DeltaTable(str(uri)).version()
            opens.append(time.perf_counter() - started)
            started = time.perf_counter()
            os.listdir(log)
            floors.append(time.perf_counter() - started)
        appender = _appender(uri)
        for _ in range(opts.reps):
            cpu = ProcessCpu(os.getpid())
            for _ in range(opts.commits_per_size):
                _commit(appender, rows, opts.rows, written)
                written += 1
            appender.settle()
            commits.append(cpu.used() / opts.commits_per_size)
        row = {
            "log_entries": len(os.listdir(log)),
            "open_ms": _ms(median(opens)),
            "floor_ms": _ms(median(floors)),
            "commit_cpu_ms": _ms(median(commits)),
        }
        row["open_over_floor"] = round(row["open_ms"] / max(row["floor_ms"], 1e-3), 1)
        print(
            f"{row['log_entries']:,} log entries: open {row['open_ms']} ms, "
            f"commit {row['commit_cpu_ms']} ms CPU",
            flush=True,
        )
        out.append(row)
    return out


def long_run(opts: Options, rows: list[Any], workdir: Path, retention: timedelta) -> dict[str, Any]:
    """(c): what `opts.commits` commits leave with `retention`, and their CPU per commit."""
    uri = workdir / "features"
    appender = _appender(uri, compact_every=opts.compact_every, retention=retention)
    cpu = ProcessCpu(os.getpid())  # every thread: commits, checkpoints, housekeeping
    for commit in range(opts.commits):
        _commit(appender, rows, opts.rows, commit)
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
    sized = 25 + opts.reps * opts.commits_per_size
    rows = vectors(max(opts.commits, sized) * opts.rows, opts.seed)
    opens: list[list[dict[str, Any]]] = []
    runs: dict[str, list[dict[str, Any]]] = {"kept": [], "housekept": []}
    for rep in range(opts.reps):
        with tempfile.TemporaryDirectory(prefix="bench-delta-log-") as tmp:
            if rep == 0:  # the figures by log size are already medians over reps
                opens.append(by_log_size(opts, rows, Path(tmp)))
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
    opens = Table(title="a checkpointed table by _delta_log entries: opened, and committed to")
    for column in (
        "log entries",
        "open ms",
        "floor ms (listdir)",
        "open / floor",
        "commit CPU ms",
    ):
        opens.add_column(column, justify="right")
    for row in results["open"]:
        opens.add_row(
            f"{row['log_entries']:,}",
            f"{row['open_ms']:,.1f}",
            f"{row['floor_ms']:,.1f}",
            f"{row['open_over_floor']:.1f}",
            f"{row['commit_cpu_ms']:,.1f}",
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
    add("--commits-per-size", type=int, default=25, help="commits timed per log size and rep")
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
