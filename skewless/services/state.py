"""The state file: which embedded services `skewless up` started, where, and their pids.

Lives at `<state_dir>/services.json`; written atomically, guarded by an advisory lock
(`<state_dir>/services.lock`) so concurrent `up`/`down` runs do not interleave.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, get_args

from skewless.services.errors import ServiceError

__all__ = [
    "Endpoints",
    "ServiceName",
    "ServiceRecord",
    "locked",
    "read_state",
    "state_path",
    "write_state",
]

ServiceName = Literal["kafka", "redis"]
_VERSION = 1


@dataclass(frozen=True)
class Endpoints:
    """Where the Kafka broker and Redis are, and whether skewless started them."""

    kafka_bootstrap: str
    redis_url: str
    kafka_managed: bool
    redis_managed: bool


@dataclass(frozen=True)
class ServiceRecord:
    """One service `skewless up` started: its pid, binary (for pid-reuse checks) and address.

    `address` is a Kafka bootstrap (`host:port`) or a Redis URL.
    """

    name: ServiceName
    pid: int
    port: int
    address: str
    binary: str
    log: str


def state_path(state_dir: Path) -> Path:
    """The state file inside `state_dir`."""
    return state_dir / "services.json"


@contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """Hold the state directory's advisory lock (creating the directory if needed)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / "services.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_state(state_dir: Path) -> dict[ServiceName, ServiceRecord]:
    """The recorded services (empty when there is no state file)."""
    path = state_path(state_dir)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        msg = (
            f"cannot read the state file {str(path)!r}: {exc}; check that no tansu or "
            "redis-server started by skewless is running, then delete it"
        )
        raise ServiceError(msg) from exc
    records: dict[ServiceName, ServiceRecord] = {}
    try:
        services = raw["services"]
        for name in get_args(ServiceName):
            if name in services:
                records[name] = ServiceRecord(**services[name])
    except (KeyError, TypeError) as exc:
        msg = (
            f"state file {str(path)!r} does not have the expected layout "
            f'{{"version": {_VERSION}, "services": {{name: record}}}}: {exc!r}'
        )
        raise ServiceError(msg) from exc
    return records


def write_state(state_dir: Path, records: Mapping[ServiceName, ServiceRecord]) -> None:
    """Replace the state file with `records` atomically; remove it when there are none."""
    path = state_path(state_dir)
    if not records:
        path.unlink(missing_ok=True)
        return
    state_dir.mkdir(parents=True, exist_ok=True)
    body = {"version": _VERSION, "services": {n: asdict(r) for n, r in records.items()}}
    tmp = path.with_suffix(f".tmp.{os.getpid()}")
    tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
