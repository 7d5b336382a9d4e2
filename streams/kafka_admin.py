"""Kafka administration: wait for a broker to answer, create topics with explicit configs.

Takes plain librdkafka option dicts (no skewless settings). Topics are always created with
their configs spelled out, because some brokers (Tansu) report empty configs otherwise.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from schemas.errors import SkewlessError

if TYPE_CHECKING:
    from confluent_kafka.admin._metadata import ClusterMetadata

__all__ = ["KafkaAdminError", "TopicSpec", "create_topics", "wait_for_broker"]

_log = logging.getLogger(__name__)
_log.addHandler(logging.NullHandler())
_POLL_S = 0.05


class KafkaAdminError(SkewlessError):
    """A broker did not answer, or a topic could not be created."""


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create: name, partition count, replication and topic-level configs."""

    name: str
    partitions: int
    replication_factor: int = 1
    config: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not self.name:
            msg = "topic name must not be empty"
            raise KafkaAdminError(msg)
        if self.partitions < 1 or self.replication_factor < 1:
            msg = (
                f"topic {self.name!r}: expected partitions >= 1 and replication_factor >= 1, "
                f"got partitions={self.partitions}, replication_factor={self.replication_factor}"
            )
            raise KafkaAdminError(msg)


def _admin(client_config: Mapping[str, str]) -> AdminClient:
    config: dict[str, Any] = {"logger": _log, **client_config}
    return AdminClient(config)


def _bootstrap(client_config: Mapping[str, str]) -> str:
    return client_config.get("bootstrap.servers", "<no bootstrap.servers>")


def _metadata(admin: AdminClient, *, timeout_s: float) -> ClusterMetadata:
    metadata = admin.list_topics(timeout=max(timeout_s, 0.01))
    if not metadata.brokers:
        msg = "metadata lists no brokers"
        raise KafkaAdminError(msg)
    return metadata


def wait_for_broker(client_config: Mapping[str, str], *, timeout_s: float) -> None:
    """Return once a metadata request succeeds; `KafkaAdminError` after `timeout_s`."""
    admin = _admin(client_config)
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        try:
            _metadata(admin, timeout_s=min(remaining, 1.0))
        except (KafkaException, KafkaAdminError) as exc:
            if time.monotonic() >= deadline:
                msg = (
                    f"Kafka broker at {_bootstrap(client_config)!r} did not answer a metadata "
                    f"request within {timeout_s:g}s: {exc}"
                )
                raise KafkaAdminError(msg) from exc
            time.sleep(_POLL_S)
        else:
            return


def _is_already_exists(exc: KafkaException) -> bool:
    error = exc.args[0] if exc.args else None
    return isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS


def _missing_partitions(
    metadata: ClusterMetadata, specs: Sequence[TopicSpec], created: set[str]
) -> list[str]:
    missing = []
    for spec in specs:
        topic = metadata.topics.get(spec.name)
        if topic is None or topic.error is not None:
            missing.append(f"{spec.name!r} (not in metadata)")
            continue
        wanted = spec.partitions if spec.name in created else 1
        if len(topic.partitions) < wanted:
            missing.append(f"{spec.name!r} ({len(topic.partitions)}/{wanted} partitions)")
    return missing


def create_topics(
    client_config: Mapping[str, str], specs: Sequence[TopicSpec], *, timeout_s: float = 30
) -> list[str]:
    """Create `specs`, returning the names created; existing topics are left as they are.

    Returns once the cluster metadata shows every partition of every created topic (and
    every existing one), so producers can use them immediately.
    """
    if not specs:
        return []
    admin = _admin(client_config)
    deadline = time.monotonic() + timeout_s
    new_topics = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=spec.replication_factor,
            config=dict(spec.config),
        )
        for spec in specs
    ]
    futures = admin.create_topics(new_topics, request_timeout=timeout_s)
    created: set[str] = set()
    for spec in specs:
        try:
            futures[spec.name].result(timeout=max(deadline - time.monotonic(), 0.01))
        except KafkaException as exc:
            if _is_already_exists(exc):
                continue
            msg = (
                f"could not create topic {spec.name!r} (partitions={spec.partitions}, "
                f"replication_factor={spec.replication_factor}) on "
                f"{_bootstrap(client_config)!r}: {exc}"
            )
            raise KafkaAdminError(msg) from exc
        except TimeoutError as exc:
            msg = f"creating topic {spec.name!r} took longer than {timeout_s:g}s"
            raise KafkaAdminError(msg) from exc
        created.add(spec.name)
    _wait_for_partitions(admin, specs, created, deadline=deadline, timeout_s=timeout_s)
    return [spec.name for spec in specs if spec.name in created]


def _wait_for_partitions(
    admin: AdminClient,
    specs: Sequence[TopicSpec],
    created: set[str],
    *,
    deadline: float,
    timeout_s: float,
) -> None:
    missing: list[str] = [repr(spec.name) for spec in specs]
    while True:
        remaining = deadline - time.monotonic()
        try:
            missing = _missing_partitions(
                _metadata(admin, timeout_s=min(max(remaining, 0.01), 1.0)), specs, created
            )
        except (KafkaException, KafkaAdminError) as exc:
            missing = [f"metadata request failed: {exc}"]
        if not missing:
            return
        if time.monotonic() >= deadline:
            msg = (
                f"topics not visible in metadata within {timeout_s:g}s: expected all "
                f"partitions, still missing {', '.join(missing)}"
            )
            raise KafkaAdminError(msg)
        time.sleep(_POLL_S)
