"""Drive a tailing worker process in a test: wait for what it should show, then stop it."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable

import pytest

__all__ = ["stop_once_seen"]


def stop_once_seen(
    worker: subprocess.Popen[bytes],
    seen: Callable[[], int],
    want: int,
    *,
    what: str,
    timeout_s: float = 60,
) -> str:
    """Wait until `seen()` reaches `want`, then SIGTERM the worker; its stderr (piped).

    Fails with the worker's stderr if it ends first, and with how many `what` it showed if
    the deadline passes first. The caller asserts the exit code.
    """
    try:
        deadline = time.monotonic() + timeout_s
        while seen() < want:
            if worker.poll() is not None:
                pytest.fail(f"the tailing worker ended: {worker.communicate()[1].decode()}")
            assert time.monotonic() < deadline, f"{seen()} {what} after {timeout_s:g} s"
            time.sleep(0.05)  # polling interval of a deadline loop, not a wait for an outcome
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=60)
    return stderr.decode()
