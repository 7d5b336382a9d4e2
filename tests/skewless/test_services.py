"""`skewless up|down|status` and the services API, with real broker and Redis processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource

from skewless.endpoints import Endpoints, kafka_config, resolve_endpoints
from skewless.services import (
    ServiceError,
    embedded_services,
    service_status,
    start_services,
    stop_services,
)
from skewless.services.broker import tansu_binary
from skewless.services.state import state_path
from skewless.settings import Settings

STATUS_KEYS = {"kafka", "redis", "schema_registry", "mlflow", "delta"}


def _embedded_settings(state_dir: Path) -> Settings:
    """Settings that start everything, whatever the environment configures."""
    return Settings(state_dir=state_dir, kafka_bootstrap=None, redis_url=None)


def _process_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in {"Z", "X"}


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("skewless")), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _cli_env(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKEWLESS_")}
    return {**env, "SKEWLESS_STATE_DIR": str(state_dir), "COLUMNS": "200", **extra}


@pytest.mark.integration
def test_up_status_down_leaves_nothing_running(tmp_path: Path) -> None:
    settings = _embedded_settings(tmp_path)

    endpoints = start_services(settings)
    status = service_status(settings)
    pids = [status["kafka"]["pid"], status["redis"]["pid"]]

    assert endpoints.kafka_managed
    assert endpoints.redis_managed
    assert status["kafka"]["running"]
    assert status["redis"]["running"]
    assert status["kafka"]["bootstrap"] == endpoints.kafka_bootstrap
    assert redis.Redis.from_url(endpoints.redis_url).ping()
    topics = AdminClient({**kafka_config(settings, endpoints)}).list_topics(timeout=10).topics
    for name in settings.topics.all_names():
        assert len(topics[name].partitions) == settings.topics.partitions
    assert resolve_endpoints(settings) == endpoints

    assert start_services(settings) == endpoints  # idempotent: same processes, same ports
    assert [service_status(settings)[n]["pid"] for n in ("kafka", "redis")] == pids

    assert sorted(stop_services(settings)) == ["kafka", "redis"]
    assert all(_process_gone(pid) for pid in pids)
    assert not state_path(tmp_path).exists()
    assert stop_services(settings) == []


@pytest.mark.integration
def test_topics_are_created_with_explicit_configs(
    services_settings: Settings, services: Endpoints
) -> None:
    admin = AdminClient({**kafka_config(services_settings, services)})
    resource = ConfigResource(ConfigResource.Type.TOPIC, services_settings.topics.transactions)

    entries = admin.describe_configs([resource])[resource].result(timeout=10)

    assert entries["retention.ms"].value == str(services_settings.topics.retention_ms)
    assert entries["cleanup.policy"].value == "delete"


def _write_state(state_dir: Path, pid: int) -> None:
    record = {
        "name": "kafka",
        "pid": pid,
        "port": 1,
        "address": "127.0.0.1:1",
        "binary": str(tansu_binary()),
        "log": str(state_dir / "logs" / "kafka.log"),
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    state_path(state_dir).write_text(json.dumps({"version": 1, "services": {"kafka": record}}))


def test_stale_state_file_is_reported_and_cleaned(tmp_path: Path) -> None:
    finished = subprocess.Popen(["true"])
    finished.wait()  # reaped: its pid is dead
    _write_state(tmp_path, finished.pid)

    kafka = service_status(_embedded_settings(tmp_path))["kafka"]

    assert kafka == {
        "bootstrap": "127.0.0.1:1",
        "managed": True,
        "running": False,
        "stale": True,
        "pid": finished.pid,
        "log": str(tmp_path / "logs" / "kafka.log"),
    }
    assert not state_path(tmp_path).exists()


def test_recycled_pid_running_something_else_is_never_signalled(tmp_path: Path) -> None:
    _write_state(tmp_path, os.getpid())  # alive, but not the broker binary

    assert stop_services(_embedded_settings(tmp_path)) == []
    assert not state_path(tmp_path).exists()


def test_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    state_path(tmp_path).write_text("{not json")

    with pytest.raises(ServiceError, match=r"services\.json.*delete it"):
        service_status(_embedded_settings(tmp_path))


def test_resolve_without_anything_running_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match=r"SKEWLESS_KAFKA_BOOTSTRAP.*skewless up") as info:
        resolve_endpoints(_embedded_settings(tmp_path))
    assert "SKEWLESS_REDIS_URL" in str(info.value)


@pytest.mark.integration
def test_user_configured_services_are_used_not_started(tmp_path: Path, services: Endpoints) -> None:
    settings = Settings(
        state_dir=tmp_path, kafka_bootstrap=services.kafka_bootstrap, redis_url=services.redis_url
    )

    with embedded_services(settings) as endpoints:
        status = service_status(settings)

    assert endpoints == Endpoints(services.kafka_bootstrap, services.redis_url, False, False)
    for name in ("kafka", "redis"):
        assert status[name]["managed"] is False
        assert status[name]["running"] is True
        assert status[name]["pid"] is None
    assert not state_path(tmp_path).exists()
    assert stop_services(settings) == []


def test_status_redacts_passwords(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path,
        kafka_bootstrap="127.0.0.1:1",
        redis_url="redis://:hunter2@127.0.0.1:1/0",
        mlflow_uri="http://user:hunter2@mlflow:5000",
    )

    status = service_status(settings, timeout_s=0.2)

    assert status["redis"]["url"] == "redis://:***@127.0.0.1:1/0"
    assert "hunter2" not in json.dumps(status)


def _status_json(state_dir: Path, **extra: str) -> dict[str, Any]:
    result = _cli("status", "--json", env=_cli_env(state_dir, **extra))
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.mark.integration
def test_cli_status_json_reports_configured_services(tmp_path: Path, services: Endpoints) -> None:
    report = _status_json(
        tmp_path,
        SKEWLESS_KAFKA_BOOTSTRAP=services.kafka_bootstrap,
        SKEWLESS_REDIS_URL=services.redis_url,
    )

    assert report.keys() >= STATUS_KEYS
    assert report["kafka"] | {"log": None} == {
        "bootstrap": services.kafka_bootstrap,
        "managed": False,
        "running": True,
        "pid": None,
        "log": None,
        "stale": False,
    }
    assert report["redis"]["url"] == services.redis_url
    assert report["redis"]["managed"] is False
    assert set(report["mlflow"]) == {"uri"}
    assert set(report["delta"]) == {"root"}


@pytest.mark.integration
def test_cli_up_survives_the_cli_and_down_stops_it(tmp_path: Path) -> None:
    env = _cli_env(tmp_path)

    up = _cli("up", env=env)
    report = _status_json(tmp_path)
    pids = [report["kafka"]["pid"], report["redis"]["pid"]]
    down = _cli("down", env=env)

    assert up.returncode == 0, up.stderr
    assert report["kafka"]["running"]
    assert report["redis"]["running"]
    assert report["kafka"]["managed"]
    assert report["redis"]["managed"]
    assert down.returncode == 0, down.stderr
    assert "stopped: kafka, redis" in down.stdout
    assert all(_process_gone(pid) for pid in pids)


def test_cli_user_mistake_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    result = _cli("status", env=_cli_env(tmp_path, SKEWLESS_REDIS_URL="http://nope"))

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "redis://" in result.stderr
