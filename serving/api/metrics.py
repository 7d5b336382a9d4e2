"""Prometheus metrics of the HTTP API, in a registry of its own (one per app).

- `skewless_api_requests_total{route,method,status}`: requests, by route template (an
  unmatched path counts as route `unmatched`, so arbitrary paths cannot explode labels);
- `skewless_api_request_duration_seconds{route}`: latency histogram;
- `skewless_api_batch_size`: transactions per onnxruntime micro-batch;
- `skewless_api_batch_duration_seconds`: lookup + assembly + scoring time per batch;
- `skewless_api_scored_total{variant,source}`: served scores by variant and feature source;
- `skewless_api_model_generation`: how many model sets the registry watcher swapped in.

`MetricsMiddleware` is a plain ASGI middleware (no per-request task or body copy).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_TYPE", "ApiMetrics", "MetricsMiddleware"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ApiMetrics:
    """The API's collectors; `generation` reads the watcher's model generation at scrape time."""

    def __init__(self, *, generation: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "skewless_api_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "skewless_api_request_duration_seconds",
            "HTTP request latency by route template, from first byte in to last byte out.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "skewless_api_batch_size",
            "Transactions scored per micro-batch (one onnxruntime call per variant).",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "skewless_api_batch_duration_seconds",
            "Wall seconds per micro-batch: Redis lookup, feature assembly, scoring.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.scored = Counter(
            "skewless_api_scored",
            "Served scores by variant and feature source (stored or assembled).",
            ["variant", "source"],
            registry=self.registry,
        )
        self.generation = Gauge(
            "skewless_api_model_generation",
            "Model sets swapped in by the registry watcher (0: none loaded yet).",
            registry=self.registry,
        )
        self.generation.set_function(generation)

    def observe_batch(self, size: int, seconds: float) -> None:
        """Record one micro-batch (the batcher's `on_batch` callback)."""
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def count_scored(self, served: Iterable[tuple[str, str]]) -> None:
        """Count served scores, one `(variant, source)` pair each."""
        for variant, source in served:
            self.scored.labels(variant, source).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every collector."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template and status."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server error handler answers if nothing else does

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None)
            if template is None:  # FastAPI's own routes (/openapi.json, /docs) set no route
                template = scope.get("path", UNMATCHED) if status not in (404, 405) else UNMATCHED
            method = scope.get("method", "")
            method = method if method in _METHODS else "OTHER"
            self.metrics.requests.labels(template, method, str(status)).inc()
            self.metrics.latency.labels(template).observe(time.perf_counter() - started)
