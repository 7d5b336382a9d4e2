"""Work for a worker thread while its source has nothing: a sink's due Delta commit.

Bytewax calls a sink partition only when items reach it, and snapshots only the partitions
written to in the epoch. A sink that commits less often than every epoch (the feature and
labels workers' Delta commits, `streams.sinks.commit_interval`) would keep the rows of
the last busy epoch uncommitted for as long as the stream stays quiet. So its partition
registers a callback here for the thread it runs on, and a source calls `run()` from each
poll that had nothing to hand out, on the same thread: the callback runs between steps,
as the partition's own methods do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["register", "run", "unregister"]

# By thread id, not `threading.local`: under `--workers 2`, a callback registered on the
# second worker's thread (a Rust thread, not Python's) was not in that thread's local
# dict at its next poll (seen here; the thread's Python state is not kept between calls).
_callbacks: dict[int, list[Callable[[], None]]] = {}
_lock = threading.Lock()


def register(callback: Callable[[], None]) -> None:
    """Call `callback` from this thread's idle source polls."""
    with _lock:
        _callbacks.setdefault(threading.get_ident(), []).append(callback)


def unregister(callback: Callable[[], None]) -> None:
    """Stop calling `callback` (registered on this thread); nothing if it was not."""
    with _lock:
        callbacks = _callbacks.get(threading.get_ident(), [])
        if callback in callbacks:
            callbacks.remove(callback)
        if not callbacks:
            _callbacks.pop(threading.get_ident(), None)


def run() -> None:
    """Call this thread's callbacks (a source polled and found nothing to hand out)."""
    callbacks = _callbacks.get(threading.get_ident())
    if callbacks:
        for callback in tuple(callbacks):
            callback()
