"""`run_dataflow`: runs a flow to the end, leaves the GC settings as found, stops on a signal."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource

from streams.errors import StreamsError
from streams.runner import run_dataflow

ROOT = Path(__file__).resolve().parents[2]


def test_runs_to_the_end_and_restores_the_collector_settings() -> None:
    before = gc.get_threshold()
    seen: list[tuple[int, int]] = []
    flow = Dataflow("runner")
    items = op.input("in", flow, TestingSource(range(1_000), batch_size=64))
    doubled = op.map("double", items, lambda x: (x, 2 * x))
    op.output("out", doubled, TestingSink(seen))

    run_dataflow(flow)

    assert seen == [(x, 2 * x) for x in range(1_000)]
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_our_error_inside_a_step_comes_out_unwrapped_for_the_cli_to_print() -> None:
    def refuse(x: int) -> int:
        msg = f"item {x}: expected an even number"
        raise StreamsError(msg)

    flow = Dataflow("runner-error")
    items = op.input("in", flow, TestingSource([1]))
    op.output("out", op.map("refuse", items, refuse), TestingSink([]))

    with pytest.raises(StreamsError, match=r"^item 1: expected an even number$"):
        run_dataflow(flow)


def _counting_worker(out: Path, recovery: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.streams.counting_worker", str(out), str(recovery)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
    )


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _stop_once_written(proc: subprocess.Popen[str], out: Path, lines: int, signum: int) -> str:
    """Signal `proc` once `out` holds `lines` more lines; its stderr, after a clean exit."""
    target = len(_lines(out)) + lines
    deadline = time.monotonic() + 60
    while len(_lines(out)) < target:
        assert proc.poll() is None, f"worker ended early: {proc.communicate()[1]}"
        assert time.monotonic() < deadline, f"no {lines} lines within 60 s"
        time.sleep(0.02)  # polling interval of a deadline loop, not a wait for an outcome
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    return stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_drains_snapshots_and_closes_so_a_restart_replays_nothing(
    signum: int, tmp_path: Path
) -> None:
    out, recovery = tmp_path / "out.txt", tmp_path / "recovery"

    first = _stop_once_written(_counting_worker(out, recovery), out, 500, signum)
    second = _stop_once_written(_counting_worker(out, recovery), out, 500, signum)

    for stderr in (first, second):
        assert "stopping:" in stderr
        assert "panicked" not in stderr
        assert "Traceback" not in stderr
    lines = _lines(out)
    assert lines.count("closed") == 2, "the sink was not closed on each stop"
    numbers = [int(line) for line in lines if line != "closed"]
    # The stop closed and snapshotted the last epoch: the restart went on from there.
    assert numbers == list(range(len(numbers)))
