"""Start, stop and report the embedded services behind `skewless up|down|status`.

A service the user configured (`SKEWLESS_KAFKA_BOOTSTRAP`, `SKEWLESS_REDIS_URL`) is used
as is and never started or stopped (`managed: false`). Otherwise skewless starts one on
loopback, records it in the state file, and only ever stops what it recorded.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skewless.services.broker import broker_answers, start_broker
from skewless.services.errors import ServiceError
from skewless.services.processes import is_running, stop_process
from skewless.services.redis_server import redis_answers, start_redis
from skewless.services.state import (
    Endpoints,
    ServiceName,
    ServiceRecord,
    locked,
    read_state,
    state_path,
    write_state,
)
from skewless.settings import Settings, redact_url
from streams.kafka_admin import TopicSpec, create_topics

__all__ = [
    "embedded_services",
    "service_status",
    "start_services",
    "stop_services",
    "topic_specs",
]


@dataclass(frozen=True)
class _Kind:
    """How to find, check and start one kind of service."""

    name: ServiceName
    label: str
    env: str
    address_key: str
    configured: str | None
    answers: Callable[[str, float], bool]
    start: Callable[[Path, float], ServiceRecord]


# Measured: Tansu drains client connections for 5 s on SIGTERM but exits at once on SIGINT
# (memory storage: nothing to flush). Redis shuts down promptly on SIGTERM.
_STOP_SIGNALS: dict[ServiceName, signal.Signals] = {
    "kafka": signal.SIGINT,
    "redis": signal.SIGTERM,
}


def _kinds(settings: Settings) -> tuple[_Kind, _Kind]:
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    kafka = _Kind(
        name="kafka",
        label="Kafka broker",
        env="SKEWLESS_KAFKA_BOOTSTRAP",
        address_key="bootstrap",
        configured=settings.kafka_bootstrap,
        answers=lambda address, timeout_s: broker_answers(
            settings.kafka_client_config(address), timeout_s=timeout_s
        ),
        start=lambda state_dir, timeout_s: start_broker(
            state_dir=state_dir,
            client_config_for=settings.kafka_client_config,
            timeout_s=timeout_s,
        ),
    )
    redis = _Kind(
        name="redis",
        label="Redis",
        env="SKEWLESS_REDIS_URL",
        address_key="url",
        configured=settings.redis_url,
        answers=lambda address, timeout_s: redis_answers(
            address, password=password, timeout_s=timeout_s
        ),
        start=lambda state_dir, timeout_s: start_redis(
            state_dir=state_dir, password=password, timeout_s=timeout_s
        ),
    )
    return kafka, redis


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The application topics with explicit `retention.ms` and `cleanup.policy` configs."""
    topics = settings.topics
    config = {"retention.ms": str(topics.retention_ms), "cleanup.policy": "delete"}
    return [
        TopicSpec(name, topics.partitions, topics.replication_factor, config)
        for name in topics.all_names()
    ]


def _ensure(
    kind: _Kind,
    records: dict[ServiceName, ServiceRecord],
    *,
    state_dir: Path,
    timeout_s: float,
) -> tuple[str, ServiceRecord | None]:
    """The address of a running `kind`, and its record if this call started it."""
    if kind.configured is not None:
        if not kind.answers(kind.configured, timeout_s):
            msg = (
                f"the configured {kind.label} {kind.env}={redact_url(kind.configured)!r} "
                f"did not answer within {timeout_s:g}s"
            )
            raise ServiceError(msg)
        return kind.configured, None
    record = records.get(kind.name)
    if record is not None and is_running(record.pid, binary=record.binary):
        if kind.answers(record.address, timeout_s):
            return record.address, None
        msg = (
            f"the embedded {kind.label} (pid {record.pid}, {record.address}) is running but "
            f"did not answer within {timeout_s:g}s; see {record.log!r}, then run "
            "`skewless down` and `skewless up`"
        )
        raise ServiceError(msg)
    record = kind.start(state_dir, timeout_s)
    return record.address, record


def _start(settings: Settings, *, timeout_s: float, started: list[ServiceName]) -> Endpoints:
    state_dir = settings.state_dir.resolve()
    addresses: dict[ServiceName, str] = {}
    with locked(state_dir):
        records = read_state(state_dir)
        for kind in _kinds(settings):
            address, new = _ensure(kind, records, state_dir=state_dir, timeout_s=timeout_s)
            addresses[kind.name] = address
            if new is not None:
                records[kind.name] = new
                started.append(kind.name)
                write_state(state_dir, records)
    bootstrap = addresses["kafka"]
    create_topics(
        settings.kafka_client_config(bootstrap), topic_specs(settings), timeout_s=timeout_s
    )
    return Endpoints(
        kafka_bootstrap=bootstrap,
        redis_url=addresses["redis"],
        kafka_managed=settings.kafka_bootstrap is None,
        redis_managed=settings.redis_url is None,
    )


def _stop(settings: Settings, names: Sequence[ServiceName], *, timeout_s: float) -> list[str]:
    state_dir = settings.state_dir.resolve()
    stopped: list[str] = []
    with locked(state_dir):
        records = read_state(state_dir)
        try:
            for name in names:
                record = records.get(name)
                if record is None:
                    continue
                if stop_process(
                    record.pid,
                    binary=record.binary,
                    timeout_s=timeout_s,
                    first_signal=_STOP_SIGNALS[name],
                ):
                    stopped.append(name)
                del records[name]
        finally:
            write_state(state_dir, records)
    return stopped


def _started_or_rolled_back(
    settings: Settings, *, timeout_s: float
) -> tuple[Endpoints, list[ServiceName]]:
    started: list[ServiceName] = []
    try:
        endpoints = _start(settings, timeout_s=timeout_s, started=started)
    except BaseException:
        _stop(settings, started, timeout_s=10)
        raise
    return endpoints, started


def start_services(settings: Settings, *, timeout_s: float = 30) -> Endpoints:
    """Start whatever is neither configured nor already running, create the topics.

    Idempotent. If anything fails, what this call started is stopped again.
    """
    endpoints, _ = _started_or_rolled_back(settings, timeout_s=timeout_s)
    return endpoints


def stop_services(settings: Settings, *, timeout_s: float = 10) -> list[str]:
    """Stop every service recorded in the state file; the names of those that were running."""
    return _stop(settings, ("kafka", "redis"), timeout_s=timeout_s)


@contextmanager
def embedded_services(settings: Settings, *, timeout_s: float = 30) -> Iterator[Endpoints]:
    """Services for the duration of a block; on exit stops only what it started."""
    endpoints, started = _started_or_rolled_back(settings, timeout_s=timeout_s)
    try:
        yield endpoints
    finally:
        _stop(settings, started, timeout_s=10)


def _service_entry(
    kind: _Kind, records: dict[ServiceName, ServiceRecord], *, timeout_s: float
) -> dict[str, Any]:
    entry: dict[str, Any] = {"managed": kind.configured is None, "pid": None, "log": None}
    entry["stale"] = False
    if kind.configured is not None:
        entry[kind.address_key] = redact_url(kind.configured)
        entry["running"] = kind.answers(kind.configured, timeout_s)
        return entry
    record = records.get(kind.name)
    entry[kind.address_key] = None if record is None else redact_url(record.address)
    if record is None:
        entry["running"] = False
        return entry
    entry.update(pid=record.pid, log=record.log)
    if is_running(record.pid, binary=record.binary):
        entry["running"] = kind.answers(record.address, timeout_s)
    else:
        entry.update(running=False, stale=True)
        del records[kind.name]
    return entry


def service_status(settings: Settings, *, timeout_s: float = 2) -> dict[str, Any]:
    """What runs where, as JSON-ready data; stale state-file entries are reported and removed.

    Keys: `kafka` (`bootstrap`), `redis` (`url`), each with `managed`, `running`, `pid`,
    `log`, `stale`; `schema_registry`, `mlflow`, `delta`, `state_file`. Passwords redacted.
    """
    state_dir = settings.state_dir.resolve()
    status: dict[str, Any] = {}
    with locked(state_dir):
        records = read_state(state_dir)
        before = len(records)
        for kind in _kinds(settings):
            status[kind.name] = _service_entry(kind, records, timeout_s=timeout_s)
        if len(records) != before:
            write_state(state_dir, records)
    registry = settings.schema_registry_url
    status["schema_registry"] = {
        "url": None if registry is None else redact_url(registry),
        "framing": "avro-single-object" if registry is None else "confluent",
    }
    status["mlflow"] = {"uri": redact_url(settings.tracking_uri)}
    status["delta"] = {"root": redact_url(settings.delta_root)}
    status["state_file"] = str(state_path(state_dir))
    return status
