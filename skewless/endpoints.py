"""Where the Kafka broker and Redis are: configured values first, else what `skewless up` ran.

Every command that talks to the services starts here::

    endpoints = resolve_endpoints(settings)
    producer = Producer(kafka_config(settings, endpoints))
"""

from __future__ import annotations

from skewless.services import Endpoints, ServiceError
from skewless.services.processes import is_running
from skewless.services.state import ServiceName, read_state, state_path
from skewless.settings import Settings

__all__ = ["Endpoints", "kafka_config", "resolve_address", "resolve_endpoints"]

_HOW = {
    "kafka": ("Kafka broker", "SKEWLESS_KAFKA_BOOTSTRAP"),
    "redis": ("Redis", "SKEWLESS_REDIS_URL"),
}


def _resolve(settings: Settings, names: tuple[ServiceName, ...]) -> dict[ServiceName, str]:
    configured: dict[ServiceName, str | None] = {
        "kafka": settings.kafka_bootstrap,
        "redis": settings.redis_url,
    }
    addresses: dict[ServiceName, str] = {}
    missing: list[str] = []
    state_dir = settings.state_dir.resolve()
    records = read_state(state_dir) if any(configured[n] is None for n in names) else {}
    for name in names:
        value = configured[name]
        record = records.get(name)
        if value is not None:
            addresses[name] = value
        elif record is not None and is_running(record.pid, binary=record.binary):
            addresses[name] = record.address
        else:
            label, env = _HOW[name]
            missing.append(f"no {label} (set {env}, or start one with `skewless up`)")
    if missing:
        msg = (
            f"{'; '.join(missing)}; looked in the state file "
            f"{str(state_path(state_dir))!r} for running embedded services"
        )
        raise ServiceError(msg)
    return addresses


def resolve_endpoints(settings: Settings) -> Endpoints:
    """The endpoints to use; `ServiceError` naming the fix when one is neither set nor up.

    Checks that a recorded embedded service's process is alive, not that it answers.
    """
    addresses = _resolve(settings, ("kafka", "redis"))
    return Endpoints(
        kafka_bootstrap=addresses["kafka"],
        redis_url=addresses["redis"],
        kafka_managed=settings.kafka_bootstrap is None,
        redis_managed=settings.redis_url is None,
    )


def resolve_address(settings: Settings, name: ServiceName) -> str:
    """One service's address, for commands that need only that one (serving needs Redis)."""
    return _resolve(settings, (name,))[name]


def kafka_config(settings: Settings, endpoints: Endpoints) -> dict[str, str]:
    """librdkafka options for `endpoints`' broker, with the configured pass-through options."""
    return settings.kafka_client_config(endpoints.kafka_bootstrap)
