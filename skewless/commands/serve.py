"""`skewless serve`: the online HTTP API (feature lookup and synchronous scoring) on uvicorn.

Redis comes from the settings or `skewless up` (like every command), the model registry
from `Settings.tracking_uri`; the registry watcher follows the `champion`/`challenger`
aliases and rollout tags of `--model-name`, hot-reloading like the streaming workers.

With `--workers N > 1` uvicorn starts N processes; each builds its own app (Redis client,
watcher, batcher) from the same settings and these options, passed down in the
environment variable `_SKEWLESS_SERVE_OPTIONS`.
"""

from __future__ import annotations

import os
from typing import Annotated

import redis
import typer
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from serving.api import ApiConfig, create_app
from serving.model_store import DEFAULT_MODEL_NAME, ModelStore
from serving.watcher import RegistryWatcher
from skewless import wiring
from skewless.endpoints import resolve_address
from skewless.output import console
from skewless.settings import load_settings, redact_url

__all__ = ["ServeOptions", "app_factory", "build_app", "register"]

_OPTIONS_ENV = "_SKEWLESS_SERVE_OPTIONS"


class ServeOptions(BaseModel):
    """What `skewless serve` was asked for, beyond the settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_name: str = DEFAULT_MODEL_NAME
    poll_interval_s: float = 10.0
    max_batch_transactions: int = 256
    max_body_bytes: int = 1 << 20
    batch_wait_ms: float = 2.0


def build_app(options: ServeOptions) -> FastAPI:
    """The API wired to this deployment's Redis, registry and feature definition."""
    settings = load_settings()
    client = redis.Redis.from_url(
        wiring.redis_url(settings, resolve_address(settings, "redis")),
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
    )
    store = ModelStore(settings.tracking_uri, model_name=options.model_name)
    watcher = RegistryWatcher(store, poll_interval_s=options.poll_interval_s)
    config = ApiConfig(
        feature_set=wiring.feature_set(),
        redis_prefix=wiring.REDIS_PREFIX,
        max_batch_transactions=options.max_batch_transactions,
        max_body_bytes=options.max_body_bytes,
        batch_max_wait_ms=options.batch_wait_ms,
    )
    return create_app(config, watcher=watcher, redis_client=client)


def app_factory() -> FastAPI:
    """uvicorn's factory in each worker process (`--workers > 1`)."""
    return build_app(ServeOptions.model_validate_json(os.environ[_OPTIONS_ENV]))


def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes.")] = 1,
    model_name: Annotated[str, typer.Option(help="Registered model to serve.")] = (
        DEFAULT_MODEL_NAME
    ),
    poll_interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between registry polls (hot reload).")
    ] = 10.0,
    max_batch: Annotated[
        int, typer.Option(min=1, help="Most transactions per /v1/score:batch request.")
    ] = 256,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Largest request body.")] = 1 << 20,
    batch_wait_ms: Annotated[
        float, typer.Option(min=0.0, help="Longest a score waits for its micro-batch to fill.")
    ] = 2.0,
) -> None:
    """Serve online feature lookup and scoring over HTTP (OpenAPI at /docs)."""
    options = ServeOptions(
        model_name=model_name,
        poll_interval_s=poll_interval,
        max_batch_transactions=max_batch,
        max_body_bytes=max_body_bytes,
        batch_wait_ms=batch_wait_ms,
    )
    settings = load_settings()
    redis_at = resolve_address(settings, "redis")  # fail here, before uvicorn, if unknown
    console.print(
        f"serving {model_name!r} from {redact_url(settings.tracking_uri)} with Redis at "
        f"{redact_url(redis_at)} on http://{host}:{port} ({workers} worker(s))"
    )
    if workers == 1:
        uvicorn.run(build_app(options), host=host, port=port, log_level="info")
        return
    os.environ[_OPTIONS_ENV] = options.model_dump_json()
    uvicorn.run(
        "skewless.commands.serve:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


def register(app: typer.Typer) -> None:
    """Attach `skewless serve` to `app`."""
    app.command("serve")(serve_command)
