"""Spawn, check and stop the server processes skewless runs (Linux: reads `/proc`).

A pid is only ever signalled after its `/proc/<pid>/cmdline` still names the binary we
started, so a recycled pid belonging to something else is never touched.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from skewless.services.errors import ServiceError
from skewless.services.state import ServiceName, ServiceRecord

__all__ = [
    "free_port",
    "is_running",
    "launch",
    "log_tail",
    "spawn",
    "stop_process",
    "wait_ready",
]

_POLL_S = 0.05
_PORT_ATTEMPTS = 3
# Processes this interpreter spawned, kept so they can be reaped (not left as zombies).
_children: dict[int, subprocess.Popen[bytes]] = {}


class _ExitedEarlyError(ServiceError):
    """The process died before answering (often: its port was taken meanwhile)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(argv: Sequence[str], *, log_path: Path, cwd: Path) -> int:
    """Start `argv` in its own session (it outlives this process), output to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        try:
            child = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            msg = f"cannot start {argv[0]!r}: {exc}"
            raise ServiceError(msg) from exc
    _children[child.pid] = child
    return child.pid


def _reaped(pid: int) -> bool:
    child = _children.get(pid)
    if child is None or child.poll() is None:
        return False
    del _children[pid]
    return True


def _alive(pid: int) -> bool:
    if _reaped(pid):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[0]
    return state not in {"Z", "X"}


def _cmdline_matches(pid: int, binary: str) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
    except (OSError, UnicodeDecodeError):
        return False
    # redis-server rewrites its title to "<binary> <host:port>", hence the prefix check.
    return argv0 == binary or argv0.startswith(f"{binary} ")


def is_running(pid: int, *, binary: str) -> bool:
    """Whether `pid` is alive and is still the process that runs `binary`.

    A child of this interpreter that is not yet reaped cannot have had its pid reused, so
    its cmdline is not consulted (right after a vfork-based spawn it can read as empty).
    """
    if pid in _children:
        return _alive(pid)
    return _alive(pid) and _cmdline_matches(pid, binary)


def _wait_dead(pid: int, *, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)
    return True


def stop_process(
    pid: int,
    *,
    binary: str,
    timeout_s: float = 10,
    first_signal: signal.Signals = signal.SIGTERM,
) -> bool:
    """Signal `pid`, SIGKILL it after `timeout_s`; False if it was not running `binary`."""
    if not is_running(pid, binary=binary):
        _reaped(pid)
        return False
    for sig, wait_s in ((first_signal, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        if _wait_dead(pid, timeout_s=wait_s):
            return True
    msg = f"process {pid} ({binary}) survived SIGTERM and SIGKILL"
    raise ServiceError(msg)


def log_tail(path: Path, *, lines: int = 15) -> str:
    """The last `lines` lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {str(path)!r}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def wait_ready(
    ready: Callable[[], bool],
    *,
    pid: int,
    binary: str,
    what: str,
    log_path: Path,
    timeout_s: float,
) -> None:
    """Poll `ready()` until it holds; `ServiceError` if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if not _alive(pid):
            msg = f"{what} (pid {pid}) exited during startup; log {str(log_path)!r}:\n"
            raise _ExitedEarlyError(msg + log_tail(log_path))
        if ready():
            return
        if time.monotonic() >= deadline:
            stop_process(pid, binary=binary)
            msg = (
                f"{what} (pid {pid}) did not answer within {timeout_s:g}s; log {str(log_path)!r}:\n"
            )
            raise ServiceError(msg + log_tail(log_path))
        time.sleep(_POLL_S)


def launch(
    name: ServiceName,
    *,
    binary: Path,
    argv_for: Callable[[int], list[str]],
    address_for: Callable[[int], str],
    ready: Callable[[str], bool],
    state_dir: Path,
    timeout_s: float,
) -> ServiceRecord:
    """Start `binary` on a free loopback port and wait until `ready(address)` holds.

    Retries on a fresh port when the process exits before answering, since another
    process may grab the free port between choosing it and the server binding it.
    """
    log_path = state_dir / "logs" / f"{name}.log"
    for attempt in range(1, _PORT_ATTEMPTS + 1):
        port = free_port()
        address = address_for(port)
        pid = spawn([str(binary), *argv_for(port)], log_path=log_path, cwd=state_dir)
        try:
            wait_ready(
                functools.partial(ready, address),
                pid=pid,
                binary=str(binary),
                what=f"{name} ({binary.name} on port {port})",
                log_path=log_path,
                timeout_s=timeout_s,
            )
        except _ExitedEarlyError:
            if attempt == _PORT_ATTEMPTS:
                raise
            continue
        return ServiceRecord(
            name=name, pid=pid, port=port, address=address, binary=str(binary), log=str(log_path)
        )
    msg = f"unreachable: {name} start loop ended without result"
    raise AssertionError(msg)
