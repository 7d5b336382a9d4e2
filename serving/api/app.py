"""The online HTTP API: feature lookup and synchronous scoring, as an ASGI app factory.

Routes (OpenAPI at `/openapi.json`, docs at `/docs`):

- `GET /v1/features/{entity}/{entity_id}`: the entity's online vector (its newest
  processed event's), with freshness; 404 when there is none or the entity is unknown.
- `POST /v1/score`: one transaction (the Avro `Transaction` contract as JSON) → the
  served score. If the transaction is the event whose vector is stored, that vector is
  scored bit for bit; otherwise request features come from the transaction and view
  features from each entity's stored vector (cold-start values when it has none); see
  `serving.api.assemble` and docs/online.md.
- `POST /v1/score:batch`: `{"transactions": [...]}`, up to `max_batch_transactions`.
- `GET /healthz` (the process is up), `GET /readyz` (Redis answers and a model is loaded
  that scores this feature definition; 503 with the reasons otherwise), `GET /metrics`.

Concurrent score requests are coalesced by a `MicroBatcher` into one Redis round trip and
one onnxruntime call per variant; each batch uses `watcher.current()`, so a model the
watcher hot-swaps serves from the next batch on. The app's lifespan starts the watcher's
polling thread and the batcher, and stops both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from schemas.records import Transaction
from serving.api.batcher import MicroBatcher
from serving.api.config import ApiConfig
from serving.api.handlers import error_response, install_error_handlers
from serving.api.limits import BodyLimitMiddleware
from serving.api.lookup import OnlineStore
from serving.api.metrics import CONTENT_TYPE, ApiMetrics, MetricsMiddleware
from serving.api.schemas import (
    BatchScoreResponse,
    FeatureResponse,
    NotFoundBody,
    ReadyBody,
    ScoreResponse,
    TooLargeBody,
    UnavailableBody,
    ValidationErrorBody,
    batch_json_schema,
    transaction_json_schema,
)
from serving.api.scoring import Scorer, freshness, now_ms
from serving.api.validation import parse_batch, parse_json, parse_transaction
from serving.errors import ServingError
from serving.watcher import RegistryWatcher

__all__ = ["create_app"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": TooLargeBody, "description": "Body or batch over its limit"},
    422: {"model": ValidationErrorBody, "description": "Does not fit the Transaction contract"},
    503: {"model": UnavailableBody, "description": "No model loaded, or Redis unreachable"},
}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def create_app(
    config: ApiConfig, *, watcher: RegistryWatcher, redis_client: redis.Redis
) -> FastAPI:
    """The API over `redis_client` (sync, bytes responses) and `watcher`'s models."""
    fs = config.feature_set
    store = OnlineStore(redis_client, fs, prefix=config.redis_prefix)
    scorer = Scorer(fs, store, watcher)
    metrics = ApiMetrics(generation=lambda: watcher.generation)

    def score_batch(txns: list[Transaction]) -> list[ScoreResponse]:
        results = scorer.score(txns)
        metrics.count_scored((r.variant, r.features_source) for r in results)
        return results

    batcher: MicroBatcher[Transaction, ScoreResponse] = MicroBatcher(
        score_batch,
        max_size=config.batch_max_size,
        max_wait_s=config.batch_max_wait_ms / 1000.0,
        on_batch=metrics.observe_batch,
        name="score-batcher",
    )
    names = fs.feature_names
    views = {v.entity.name: v for v in fs.views}  # an entity's view, by entity name
    starts = {e: names.index(v.feature_names[0]) for e, v in views.items()}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(watcher.start)  # first registry poll, off the event loop
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()
            await run_in_threadpool(watcher.stop)

    app = FastAPI(
        title="skewless online API",
        version="1",
        summary="Online feature lookup and synchronous fraud scoring.",
        lifespan=lifespan,
    )
    install_error_handlers(app)

    @app.get("/healthz", tags=["ops"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Redis answers and a model for this feature definition is loaded",
        response_model=ReadyBody,
        responses={503: {"model": ReadyBody, "description": "Not ready, with the reasons"}},
    )
    async def readyz() -> JSONResponse:
        reasons: list[str] = []
        try:
            await asyncio.wait_for(run_in_threadpool(store.ping), config.ready_timeout_s)
        except TimeoutError:
            timeout = config.ready_timeout_s
            reasons.append(f"online store: Redis at {store.address} gave no PING in {timeout}s")
        except ServingError as exc:
            reasons.append(str(exc))
        try:
            scorer.check(watcher.current())
        except ServingError as exc:
            reasons.append(f"model: {exc}")
        body = ReadyBody(ready=not reasons, reasons=reasons, model_generation=watcher.generation)
        return JSONResponse(body.model_dump(), status_code=503 if reasons else 200)

    @app.get(
        "/metrics",
        tags=["ops"],
        summary="Prometheus metrics (text exposition)",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
    )
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get(
        "/v1/features/{entity}/{entity_id}",
        tags=["features"],
        summary="The online vector of an entity (its newest processed event's)",
        response_model=FeatureResponse,
        responses={
            404: {"model": NotFoundBody, "description": "No vector, or unknown entity"},
            503: _ERRORS[503],
        },
        description=f"`entity` is one of {sorted(views)}.",
    )
    def features(entity: str, entity_id: str) -> FeatureResponse | JSONResponse:
        vector = store.get(entity, entity_id)
        if vector is None:
            message = f"no online vector for {entity} {entity_id!r} (never seen, or expired)"
            return error_response(404, "not found", message, entity=entity, id=entity_id)
        view, start, values = views[entity], starts[entity], vector.values
        return FeatureResponse(
            entity=entity,
            id=entity_id,
            event_id=vector.event_id,
            event_time=vector.event_time,
            computed_at=vector.computed_at,
            source_timestamp=vector.source_timestamp,
            definition_version=vector.definition_version,
            late=vector.late,
            features=dict(zip(view.feature_names, values[start:], strict=False)),
            all_features=dict(zip(names, values, strict=True)),
            freshness=freshness(vector, now_ms()),
        )

    @app.post(
        "/v1/score",
        tags=["scoring"],
        summary="Score one transaction",
        response_model=ScoreResponse,
        responses=_ERRORS,
        openapi_extra=_json_body(transaction_json_schema()),
    )
    async def score(request: Request) -> ScoreResponse:
        txn = parse_transaction(parse_json(await request.body()))
        (result,) = await batcher.submit([txn])
        return result

    @app.post(
        "/v1/score:batch",
        tags=["scoring"],
        summary=f"Score up to {config.max_batch_transactions} transactions",
        response_model=BatchScoreResponse,
        responses=_ERRORS,
        openapi_extra=_json_body(batch_json_schema(config.max_batch_transactions)),
    )
    async def score_many(request: Request) -> BatchScoreResponse:
        body = parse_json(await request.body())
        txns = parse_batch(body, limit=config.max_batch_transactions)
        return BatchScoreResponse(results=await batcher.submit(txns))

    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
