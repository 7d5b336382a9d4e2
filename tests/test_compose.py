"""docker-compose.yaml is valid (no Docker engine here): structure, images, health, env."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yaml"


def test_compose_file_declares_the_production_services() -> None:
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert {"kafka", "redis", "schema-registry"} <= set(services)
    for name, service in services.items():
        assert ":" in service["image"], name
        assert not service["image"].endswith(":latest"), name
    kafka_env = services["kafka"]["environment"]
    roles = kafka_env["KAFKA_PROCESS_ROLES"].split(",")
    assert "broker" in roles
    assert "controller" in roles
    assert "ZOOKEEPER" not in " ".join(kafka_env), "KRaft mode: no ZooKeeper"
    assert services["redis"]["image"].startswith("redis:7")
    for dependency in services["schema-registry"]["depends_on"]:
        assert dependency in services
        assert "healthcheck" in services[dependency]
