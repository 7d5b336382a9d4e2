"""Run every benchmark script in `benchmarks/` (`make bench`) and summarise them.

A benchmark is any `benchmarks/*.py` not starting with `_` (helpers) other than this file.
Each runs as a subprocess with this interpreter, the repository root on `PYTHONPATH`, and
its own output streamed through; extra arguments after `--` go to every benchmark. The exit
code is non-zero if any benchmark failed.

    python benchmarks/run_all.py                # all of them
    python benchmarks/run_all.py features       # only those named
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"


@dataclass(frozen=True)
class Outcome:
    """How one benchmark script ended."""

    name: str
    exit_code: int
    seconds: float
    result: Path | None


def discover(only: Sequence[str] = ()) -> list[Path]:
    """The benchmark scripts, by name; only those in `only` when it is given."""
    scripts = sorted(
        path
        for path in BENCH_DIR.glob("*.py")
        if not path.name.startswith("_") and path.name != Path(__file__).name
    )
    if only:
        unknown = sorted(set(only) - {p.stem for p in scripts})
        if unknown:
            names = [p.stem for p in scripts]
            raise SystemExit(f"unknown benchmarks {unknown!r}; expected some of {names!r}")
        scripts = [p for p in scripts if p.stem in only]
    return scripts


def run(script: Path, extra: Sequence[str]) -> Outcome:
    """Run one benchmark to completion with this interpreter."""
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": pythonpath}
    print(f"\n=== {script.stem} ===", flush=True)
    started_wall, start = time.time(), time.perf_counter()
    code = subprocess.run([sys.executable, str(script), *extra], cwd=ROOT, env=env).returncode
    seconds = time.perf_counter() - start
    result = RESULTS_DIR / f"{script.stem}.json"
    written = result.exists() and result.stat().st_mtime >= started_wall
    return Outcome(script.stem, code, seconds, result if written else None)


def summary(outcomes: Sequence[Outcome]) -> Table:
    """One row per benchmark: status, wall time and where its results went."""
    table = Table(title="benchmarks")
    table.add_column("benchmark")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    table.add_column("results")
    for o in outcomes:
        status = "ok" if o.exit_code == 0 else f"failed ({o.exit_code})"
        where = str(o.result.relative_to(ROOT)) if o.result else "-"
        table.add_row(o.name, status, f"{o.seconds:.1f}", where)
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the summary; 1 if any failed."""
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="benchmark names (default: all)")
    args = parser.parse_args(argv[:split])
    extra = argv[split + 1 :]
    scripts = discover(args.only)
    if not scripts:
        print(f"no benchmark scripts in {BENCH_DIR}")
        return 1
    outcomes = [run(script, extra) for script in scripts]
    Console().print(summary(outcomes))
    return 0 if all(o.exit_code == 0 for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
