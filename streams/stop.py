"""Asking a running dataflow to stop: the first SIGTERM or Ctrl-C ends its sources.

A signal handler that raises lands in whatever Python code Bytewax is running (a source's
poll, a sink's write): Bytewax then stops by panicking, which prints a Rust panic message
on every stop and drops the epoch in progress (a restart replays it from the last
snapshot). `streams.runner.run_dataflow` installs `on_signal` instead: the sources
(`streams.kafka_source`, `streams.sources`) see `requested()` at their next poll and end
as a bounded source ends at the end of its log; the records in flight go through every
step, the last epoch closes and is snapshotted, and the sinks flush and close. A second
signal stops at once the old way, for a sink that cannot finish (its store is down).
"""

from __future__ import annotations

import sys
import threading
from types import FrameType

__all__ = ["clear", "on_signal", "requested"]

_requested = threading.Event()


def requested() -> bool:
    """Whether the running dataflow has been asked to stop: sources end when it is."""
    return _requested.is_set()


def clear() -> None:
    """Forget an earlier request (a new dataflow starts)."""
    _requested.clear()


def on_signal(signum: int, frame: FrameType | None) -> None:
    """Signal handler: the first asks the sources to end, the second stops at once."""
    if _requested.is_set():
        raise KeyboardInterrupt
    _requested.set()
    print(
        "stopping: the sources end at their next poll, the records in flight are written "
        "and snapshotted (signal again to stop at once)",
        file=sys.stderr,
        flush=True,
    )
