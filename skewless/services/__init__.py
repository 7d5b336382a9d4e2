"""Embedded services: a Kafka-protocol broker (Tansu) and Redis, started on loopback.

`start_services` / `stop_services` / `service_status` back `skewless up|down|status`;
`embedded_services` is the context manager for demos and tests. Where the services are
for everything else: `skewless.endpoints.resolve_endpoints`.
"""

from __future__ import annotations

from skewless.services.errors import ServiceError
from skewless.services.lifecycle import (
    embedded_services,
    service_status,
    start_services,
    stop_services,
    topic_specs,
)
from skewless.services.state import Endpoints

__all__ = [
    "Endpoints",
    "ServiceError",
    "embedded_services",
    "service_status",
    "start_services",
    "stop_services",
    "topic_specs",
]
