"""Run a dataflow in this process: workers, epochs, recovery, and a clean stop on a signal.

The first SIGTERM or SIGINT ends the sources at their next poll and lets the flow drain,
snapshot and close its sinks (`streams.stop`); a second stops at once.

While a dataflow runs, the cyclic garbage collector is tuned for a streaming worker: a few
objects per event die young against a large long-lived heap (window state), and with
CPython's default thresholds (a young collection every 700 net allocations, an old one
every 100 of those) the collector keeps re-scanning that heap. Freezing what exists at
start and collecting young objects every 50,000 allocations measured 14.0k -> 16.3k
events/s on the feature worker; there are almost no cycles to find.
"""

from __future__ import annotations

import gc
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from bytewax._bytewax import cli_main
from bytewax.dataflow import Dataflow
from bytewax.errors import BytewaxRuntimeError
from bytewax.recovery import RecoveryConfig, init_db_dir

from schemas.errors import SkewlessError
from streams import state_log, stop

__all__ = ["run_dataflow"]

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

E = TypeVar("E", bound=BaseException)


def run_dataflow(
    flow: Dataflow,
    *,
    workers: int = 1,
    recovery_dir: Path | None = None,
    epoch_interval: timedelta = timedelta(seconds=1),
) -> None:
    """Run `flow` until its sources end, or end early on SIGTERM/SIGINT (`streams.stop`).

    With `recovery_dir`, state is snapshotted every epoch and a restart resumes from the
    last complete epoch (the directory is initialised on first use). Steps that log their
    state (`streams.state_log`) keep it in the same directory.
    """
    recovery = None
    if recovery_dir is not None:
        if not any(recovery_dir.glob("part-*.sqlite3")):
            recovery_dir.mkdir(parents=True, exist_ok=True)
            init_db_dir(recovery_dir, 1)  # type: ignore[no-untyped-call]
        recovery = RecoveryConfig(str(recovery_dir))  # type: ignore[no-untyped-call]
    stop.clear()
    previous = {signum: signal.signal(signum, stop.on_signal) for signum in _STOP_SIGNALS}
    try:
        with _streaming_gc(), state_log.opened(recovery_dir):
            cli_main(  # type: ignore[no-untyped-call]
                flow,
                workers_per_process=workers,
                epoch_interval=epoch_interval,
                recovery_config=recovery,
            )
    except KeyboardInterrupt:  # a second signal: stopped at once, from the last snapshot
        return
    except BytewaxRuntimeError as exc:
        # A second signal that lands inside a Python step arrives wrapped; still a stop.
        if _in_chain(exc, KeyboardInterrupt) is not None:
            return
        ours = _in_chain(exc, SkewlessError)
        if ours is not None:  # says what to do: the CLI prints it, without Bytewax's wrapping
            raise ours from None
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def _streaming_gc(young_threshold: int = 50_000) -> Iterator[None]:
    """GC thresholds for a streaming worker (see the module docstring), restored after."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, previous[1], previous[2])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def _in_chain(exc: BaseException, kind: type[E]) -> E | None:
    """The first exception of `kind` in the chain of causes of `exc`."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
