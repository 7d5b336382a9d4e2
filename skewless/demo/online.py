"""The demo's online calls: the HTTP API in-process over the same Redis and registry."""

from __future__ import annotations

from typing import Any

import redis

from serving.api.app import create_app
from serving.api.config import ApiConfig
from skewless import wiring
from skewless.demo.batch import watcher
from skewless.demo.context import DemoContext
from streams.generator import Emitted

__all__ = ["call_api"]


def call_api(ctx: DemoContext, newest: list[Emitted]) -> dict[str, Any]:
    """Look up a card's features and score a few transactions through HTTP semantics."""
    from fastapi.testclient import TestClient

    client = redis.Redis.from_url(wiring.redis_url(ctx.settings, ctx.endpoints))
    models = watcher(ctx)
    models.poll_once()
    app = create_app(
        ApiConfig(feature_set=wiring.feature_set(), redis_prefix=wiring.REDIS_PREFIX),
        watcher=models,
        redis_client=client,
    )
    calls: list[dict[str, Any]] = []
    with TestClient(app) as http:
        ready = http.get("/readyz")
        calls.append({"call": "GET /readyz", "status": ready.status_code})
        for item in newest[:3]:
            txn = item.record.to_avro()
            card = txn["card_id"]
            lookup = http.get(f"/v1/features/card/{card}")
            calls.append({"call": f"GET /v1/features/card/{card}", "status": lookup.status_code})
            scored = http.post("/v1/score", json=txn)
            body = scored.json()
            calls.append(
                {
                    "call": f"POST /v1/score ({txn['event_id']})",
                    "status": scored.status_code,
                    "score": body.get("score"),
                    "decision": body.get("decision"),
                    "variant": body.get("variant"),
                    "features_source": body.get("features_source"),
                }
            )
        bad = http.post("/v1/score", json={"event_id": "x", "amount": "lots"})
        calls.append({"call": "POST /v1/score (invalid)", "status": bad.status_code})
    return {"calls": calls}
