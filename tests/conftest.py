"""Session fixtures: real services for integration tests.

`services` starts a fresh embedded broker and Redis in a temporary state directory, or
uses the ones the environment names (`SKEWLESS_KAFKA_BOOTSTRAP`, `SKEWLESS_REDIS_URL`).
Point `SKEWLESS_REDIS_URL` only at a disposable database: `clean_redis` flushes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from skewless.endpoints import Endpoints
from skewless.endpoints import kafka_config as endpoint_kafka_config
from skewless.native import stale_modules
from skewless.services import embedded_services
from skewless.settings import Settings, load_settings
from streams.kafka_admin import TopicSpec, create_topics

__all__ = [
    "clean_redis",
    "kafka_config",
    "make_topic",
    "redis_client",
    "services",
    "services_settings",
]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test compiled modules older than their source (see setup.py)."""
    stale = stale_modules()
    if stale:
        pytest.exit(
            f"compiled modules older than their source: {', '.join(stale)}; "
            "run `make install` to rebuild them",
            returncode=2,
        )


TOPIC_CONFIG = {"retention.ms": str(24 * 3600 * 1000), "cleanup.policy": "delete"}


@pytest.fixture(scope="session")
def services_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings from the environment, with a private state directory for this session."""
    return load_settings(state_dir=tmp_path_factory.mktemp("skewless-state"))


@pytest.fixture(scope="session")
def services(services_settings: Settings) -> Iterator[Endpoints]:
    """A running broker and Redis for the session; stops only what it started."""
    with embedded_services(services_settings) as endpoints:
        yield endpoints


@pytest.fixture(scope="session")
def kafka_config(services_settings: Settings, services: Endpoints) -> dict[str, str]:
    """librdkafka options for the session's broker."""
    return endpoint_kafka_config(services_settings, services)


@pytest.fixture(scope="session")
def redis_client(services_settings: Settings, services: Endpoints) -> Iterator[redis.Redis]:
    """A client on the session's Redis (not flushed; use `clean_redis` for that)."""
    password = services_settings.redis_password
    client = redis.Redis.from_url(
        services.redis_url, password=password.get_secret_value() if password else None
    )
    yield client
    client.close()


@pytest.fixture
def clean_redis(redis_client: redis.Redis) -> redis.Redis:
    """The session's Redis client, its database flushed before the test."""
    redis_client.flushdb()
    return redis_client


@pytest.fixture
def make_topic(kafka_config: dict[str, str]) -> Callable[..., str]:
    """Factory: `make_topic(prefix="t", partitions=4)` creates a fresh topic, returns its name."""

    def make(prefix: str = "t", partitions: int = 4) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        create_topics(kafka_config, [TopicSpec(name, partitions, 1, TOPIC_CONFIG)])
        return name

    return make
