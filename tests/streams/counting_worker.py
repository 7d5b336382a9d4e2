"""A dataflow process for stop tests: `python -m tests.streams.counting_worker OUT RECOVERY`.

One source partition counts up (its snapshot is the next number), a step passes each on,
and a sink appends it to OUT as it is written; recovery state lives in RECOVERY. It
runs until it is signalled, through `run_dataflow`, as every worker runs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from streams import stop
from streams.runner import run_dataflow

_BATCH = 50


class _Counting(StatefulSourcePartition[int, int]):
    def __init__(self, start: int) -> None:
        self._next = start
        self._last = 0.0

    def next_batch(self) -> list[int]:
        if stop.requested():
            raise StopIteration
        now = time.monotonic()
        if now - self._last < 0.001:  # a batch per millisecond at most: a readable file
            return []
        self._last = now
        batch = list(range(self._next, self._next + _BATCH))
        self._next += _BATCH
        return batch

    def snapshot(self) -> int:
        return self._next


class _Source(FixedPartitionedSource[int, int]):
    def list_parts(self) -> list[str]:
        return ["only"]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _Counting:
        return _Counting(resume_state or 0)


class _Appending(StatelessSinkPartition[int]):
    def __init__(self, path: Path) -> None:
        self._file = path.open("a")

    def write_batch(self, items: list[int]) -> None:
        self._file.write("".join(f"{i}\n" for i in items))
        self._file.flush()

    def close(self) -> None:
        self._file.write("closed\n")
        self._file.close()


class _Sink(DynamicSink[int]):
    def __init__(self, path: Path) -> None:
        self._path = path

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Appending:
        return _Appending(self._path)


def main(out: str, recovery: str) -> None:
    flow = Dataflow("counting")
    numbers = op.input("in", flow, _Source())
    op.output("out", op.map("same", numbers, lambda n: n), _Sink(Path(out)))
    run_dataflow(flow, recovery_dir=Path(recovery))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
