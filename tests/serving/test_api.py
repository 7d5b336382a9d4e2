"""The online API's contract against a real Redis and a real sqlite MLflow registry.

Feature lookup hit and miss, single and batch scoring (stored and assembled features,
cold start, shadow routing, hot reload), 413 and 422 with the field named, readiness
before a model and without Redis, metrics; and the skew test: the feature dataflow
writes Redis, and the API scores each card's newest event exactly as streaming did.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import redis
from confluent_kafka import Producer
from fastapi.testclient import TestClient

from schemas.contracts import codec_for
from schemas.features import CompiledFeatureSet, FeatureVector, LocalEngine
from schemas.features.fraud import FRAUD_FEATURES
from schemas.features.online import decode_hash, encode_hash, entity_key
from schemas.records import Transaction
from serving.api import ApiConfig, MicroBatcher, create_app
from serving.model_store import ModelStore
from serving.predictions import feature_matrix
from serving.watcher import RegistryWatcher
from skewless.endpoints import Endpoints
from streams.features.flow import build_feature_flow
from streams.runner import run_dataflow
from streams.sinks.feature_store import FeatureStoreConfig
from streams.sources import KafkaTransactions
from tests.factories import transactions
from tests.serving.conftest import Registry, mlp_onnx

pytestmark = pytest.mark.integration

FS = FRAUD_FEATURES
NAMES = list(FS.feature_names)
N_CARD, N_MERCHANT = len(FS.view("card").aggregations), len(FS.view("merchant").aggregations)
PREFIX = "t-api"


def register_fraud_model(registry: Registry, name: str, *, seed: int) -> str:
    """A fraud-width MLP registered with this feature definition's contract tags."""
    tags = {"feature_names": json.dumps(NAMES), "definition_version": FS.version}
    return registry.register(name, mlp_onnx(seed=seed, d=len(NAMES)), tags=tags)


def make_app(watcher: RegistryWatcher, client: redis.Redis, **limits: Any) -> TestClient:
    config = ApiConfig(feature_set=FS, redis_prefix=PREFIX, **limits)
    return TestClient(create_app(config, watcher=watcher, redis_client=client))


@dataclass
class Api:
    client: TestClient
    watcher: RegistryWatcher
    redis: redis.Redis


@pytest.fixture
def api(registry: Registry, model_name: str, clean_redis: redis.Redis) -> Iterator[Api]:
    registry.alias(model_name, "champion", register_fraud_model(registry, model_name, seed=61))
    watcher = RegistryWatcher(ModelStore(registry.uri, model_name=model_name), poll_interval_s=3600)
    limits = {"max_batch_transactions": 8, "max_body_bytes": 32 * 1024}
    with make_app(watcher, clean_redis, **limits) as client:
        yield Api(client, watcher, clean_redis)


def stored_vectors(client: redis.Redis, events: list[Transaction]) -> dict[str, FeatureVector]:
    """Compute `events` with the shared kernels and store each one's vector like the stream."""
    engine = LocalEngine(CompiledFeatureSet(FS))
    vectors: dict[str, FeatureVector] = {}
    for i, event in enumerate(events):
        values, late = engine.compute(event)
        vector = FeatureVector(
            event_id=event.event_id,
            keys=(event.card_id, event.merchant_id),
            event_time=event.event_time,
            source_timestamp=event.event_time + 5,
            source_partition=0,
            source_offset=i,
            computed_at=event.event_time + 9,
            definition_version=FS.version,
            late=late,
            values=values,
        )
        for entity, key in zip(("card", "merchant"), vector.keys, strict=True):
            fields = cast("Mapping[Any, Any]", encode_hash(vector))
            client.hset(entity_key(FS, entity, key, prefix=PREFIX), mapping=fields)
        vectors[event.event_id] = vector
    return vectors


def champion_score(api: Api, values: tuple[float, ...]) -> float:
    return float(api.watcher.current().champion.score(np.array([values]))[0])


def body(event: Transaction, **changes: Any) -> dict[str, Any]:
    return {**event.to_avro(), **changes}


def test_feature_lookup_hit_returns_the_stored_vector_and_its_freshness(api: Api) -> None:
    events = transactions(30, seed=1, cards=3, merchants=2)
    vectors = stored_vectors(api.redis, events)
    newest = next(e for e in reversed(events) if e.card_id == "c1")

    response = api.client.get("/v1/features/card/c1")

    assert response.status_code == 200
    got = response.json()
    vector = vectors[newest.event_id]
    assert (got["event_id"], got["event_time"]) == (newest.event_id, newest.event_time)
    assert got["definition_version"] == FS.version
    assert got["all_features"] == dict(zip(NAMES, vector.values, strict=True))
    card_view = FS.view("card").feature_names
    assert list(got["features"]) == list(card_view)
    assert got["features"]["card_txn_count_24h"] == got["all_features"]["card_txn_count_24h"]
    assert got["freshness"]["event_age_ms"] - got["freshness"]["computed_age_ms"] == 9


def test_feature_lookup_miss_and_unknown_entity_are_404_naming_them(api: Api) -> None:
    missing = api.client.get("/v1/features/merchant/nobody")
    assert missing.status_code == 404
    assert missing.json() | {"message": ""} == {
        "error": "not found", "entity": "merchant", "id": "nobody", "message": ""
    }  # fmt: skip

    unknown = api.client.get("/v1/features/device/d1")
    assert unknown.status_code == 404
    assert unknown.json()["valid_entities"] == ["card", "merchant"]
    assert "'device'" in unknown.json()["message"]


def test_scoring_a_stored_event_uses_its_vector_bit_for_bit(api: Api) -> None:
    events = transactions(40, seed=2, cards=4, merchants=3)
    vectors = stored_vectors(api.redis, events)
    newest = next(e for e in reversed(events) if e.card_id == "c2")

    response = api.client.post("/v1/score", json=body(newest))

    assert response.status_code == 200, response.text
    got = response.json()
    assert got["features_source"] == "stored"
    assert got["features_as_of"] == {"card": newest.event_id, "merchant": newest.event_id}
    assert got["score"] == champion_score(api, vectors[newest.event_id].values)
    assert (got["variant"], got["served"], got["unserved"]) == ("champion", True, None)
    model = api.watcher.current().champion
    assert (got["model_name"], got["model_version"]) == (model.name, model.version)
    assert got["decision"] in {"approve", "review", "decline"}


def test_a_new_event_gets_request_features_and_each_entitys_stored_view(api: Api) -> None:
    events = transactions(40, seed=3, cards=2, merchants=2)
    vectors = stored_vectors(api.redis, events)
    card = vectors[next(e for e in reversed(events) if e.card_id == "c0").event_id]
    merchant = vectors[next(e for e in reversed(events) if e.merchant_id == "m1").event_id]
    new = body(events[-1], event_id="new-1", card_id="c0", merchant_id="m1", amount=999.5)
    new["event_time"] = "2026-03-01T12:30:00+00:00"  # ISO-8601 is accepted too

    got = api.client.post("/v1/score", json=new).json()

    txn = Transaction.from_avro({**new, "event_time": 1_772_368_200_000})
    card_view = slice(len(NAMES) - N_CARD - N_MERCHANT, len(NAMES) - N_MERCHANT)
    expected = (
        CompiledFeatureSet(FS).request.compute(txn)
        + card.values[card_view]
        + merchant.values[len(NAMES) - N_MERCHANT :]
    )
    assert got["features_source"] == "assembled"
    assert got["features_as_of"] == {"card": card.event_id, "merchant": merchant.event_id}
    assert got["freshness"]["card"]["event_id"] == card.event_id
    assert got["score"] == champion_score(api, expected)


def test_an_unseen_entity_gets_the_kernels_first_event_values(api: Api) -> None:
    event = transactions(1, seed=4)[0]
    got = api.client.post("/v1/score", json=body(event, card_id="fresh", merchant_id="new")).json()

    engine = LocalEngine(CompiledFeatureSet(FS))  # the event as its entities' first event
    values, _ = engine.compute(
        Transaction.from_avro(body(event, card_id="fresh", merchant_id="new"))
    )
    assert got["features_as_of"] == {"card": None, "merchant": None}
    assert got["freshness"]["card"] == {
        "id": "fresh", "event_id": None, "event_time": None, "computed_at": None, "freshness": None
    }  # fmt: skip
    assert got["score"] == champion_score(api, values)


def test_batch_scores_in_order_like_single_calls_and_refuses_too_many(api: Api) -> None:
    events = transactions(8, seed=5, cards=3)
    batch = api.client.post("/v1/score:batch", json={"transactions": [body(e) for e in events]})
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [r["event_id"] for r in results] == [e.event_id for e in events]
    single = api.client.post("/v1/score", json=body(events[3])).json()
    assert abs(results[3]["score"] - single["score"]) <= 1e-6

    nine = api.client.post("/v1/score:batch", json={"transactions": [body(events[0])] * 9})
    assert nine.status_code == 413
    assert (nine.json()["limit"], nine.json()["got"]) == (8, 9)


def test_an_oversized_body_is_413_declared_or_streamed(api: Api) -> None:
    big = b'{"event_id": "' + b"x" * (40 * 1024) + b'"}'
    declared = api.client.post("/v1/score", content=big)
    assert declared.status_code == 413
    assert declared.json()["limit"] == 32 * 1024

    streamed = api.client.post("/v1/score", content=iter([big[:20_000], big[20_000:]]))
    assert streamed.status_code == 413


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({"amount": "12.5"}, "amount", "double"),
        ({"channel": "FAX"}, "channel", "one of ['POS', 'ONLINE', 'ATM', 'CONTACTLESS']"),
        ({"event_time": "2026-01-01T00:00:00"}, "event_time", "ISO-8601 timestamp"),
        ({"event_id": None}, "event_id", "string"),
        ({"surprise": 1}, "surprise", "only known fields"),
        ({"amount": 10**400}, "amount", "a value in range"),
    ],
)
def test_invalid_input_is_422_naming_the_field(
    api: Api, change: dict[str, Any], field: str, expected: str
) -> None:
    event = transactions(1, seed=6)[0]
    response = api.client.post("/v1/score", json=body(event, **change))
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["field"] == field
    assert problem["expected"].startswith(expected)

    batch = api.client.post("/v1/score:batch", json={"transactions": [body(event, **change)]})
    assert batch.json()["detail"][0]["field"] == f"transactions[0].{field}"


def test_malformed_json_missing_fields_and_unknown_routes_are_4xx(api: Api) -> None:
    assert api.client.post("/v1/score", content=b'{"amount": NaN}').status_code == 422
    missing = api.client.post("/v1/score", json={"event_id": "e"}).json()["detail"][0]
    assert (missing["field"], missing["got"]) == ("card_id", "nothing")
    assert api.client.post("/v1/score:batch", json={"transactions": []}).status_code == 422
    assert api.client.get("/v2/nothing").status_code == 404
    assert api.client.get("/v1/score").status_code == 405


def test_shadow_scores_the_challenger_unserved_and_a_promotion_hot_reloads(
    api: Api, registry: Registry, model_name: str
) -> None:
    event = transactions(1, seed=7)[0]
    before = api.client.post("/v1/score", json=body(event)).json()
    v2 = register_fraud_model(registry, model_name, seed=62)
    registry.alias(model_name, "challenger", v2)
    registry.rollout(model_name, "shadow")
    assert api.watcher.poll_once()

    shadow = api.client.post("/v1/score", json=body(event)).json()
    assert (shadow["variant"], shadow["score"]) == ("champion", before["score"])
    assert shadow["unserved"]["model_version"] == v2
    assert shadow["unserved"]["variant"] == "challenger"
    assert shadow["unserved"]["served"] is False

    registry.alias(model_name, "champion", v2)
    registry.rollout(model_name, "champion")
    assert api.watcher.poll_once()
    promoted = api.client.post("/v1/score", json=body(event)).json()
    assert promoted["model_version"] == v2
    assert promoted["score"] == shadow["unserved"]["score"]
    assert "skewless_api_model_generation 3.0" in api.client.get("/metrics").text


def test_readyz_is_503_until_a_model_loads(
    registry: Registry, model_name: str, clean_redis: redis.Redis
) -> None:
    watcher = RegistryWatcher(ModelStore(registry.uri, model_name=model_name), poll_interval_s=3600)
    version = register_fraud_model(registry, model_name, seed=63)  # registered, no alias yet
    with make_app(watcher, clean_redis) as client:
        assert client.get("/healthz").status_code == 200
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503
        assert any("champion" in r for r in not_ready.json()["reasons"])
        event = transactions(1, seed=8)[0]
        assert client.post("/v1/score", json=body(event)).status_code == 503

        registry.alias(model_name, "champion", version)
        assert watcher.poll_once()
        assert client.get("/readyz").json() == {"ready": True, "reasons": [], "model_generation": 1}
        assert client.post("/v1/score", json=body(event)).status_code == 200


def test_readyz_is_503_naming_redis_when_it_is_unreachable(api: Api) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = redis.Redis(port=port, socket_connect_timeout=0.5)
    with make_app(api.watcher, dead) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert any("Redis" in r and str(port) in r for r in response.json()["reasons"]), (
            response.json()
        )
        event = transactions(1, seed=9)[0]
        assert client.post("/v1/score", json=body(event)).status_code == 503


def test_metrics_count_requests_latency_batches_and_generation(api: Api) -> None:
    event = transactions(1, seed=10)[0]
    api.client.post("/v1/score", json=body(event))
    api.client.get("/v1/features/card/none")
    api.client.get("/no/such/route")
    text = api.client.get("/metrics").text
    assert 'skewless_api_requests_total{method="POST",route="/v1/score",status="200"} 1.0' in text
    route = "/v1/features/{entity}/{entity_id}"
    assert f'skewless_api_requests_total{{method="GET",route="{route}",status="404"}} 1.0' in text
    assert 'route="unmatched",status="404"' in text
    assert 'skewless_api_request_duration_seconds_count{route="/v1/score"} 1.0' in text
    assert "skewless_api_batch_size_count 1.0" in text
    assert 'skewless_api_scored_total{source="assembled",variant="champion"} 1.0' in text
    assert "skewless_api_model_generation 1.0" in text


def test_concurrent_submissions_share_one_batch() -> None:
    calls: list[list[int]] = []

    def process(items: list[int]) -> list[int]:
        calls.append(items)
        return [i * 10 for i in items]

    async def scenario() -> list[list[int]]:
        batcher: MicroBatcher[int, int] = MicroBatcher(process, max_size=4, max_wait_s=0.05)
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit([i]) for i in range(6)))
        finally:
            await batcher.stop()

    assert asyncio.run(scenario()) == [[i * 10] for i in range(6)]
    assert calls == [[0, 1, 2, 3], [4, 5]]  # full at 4, the rest after the bounded wait


def test_skew_the_api_scores_each_cards_newest_event_exactly_as_streaming(
    tmp_path: Path,
    api: Api,
    kafka_config: dict[str, str],
    make_topic: Callable[..., str],
    services: Endpoints,
) -> None:
    events = transactions(1_500, seed=21, cards=30, merchants=10)
    topic = make_topic("api-skew", 2)
    producer = Producer({**kafka_config, "enable.idempotence": True, "linger.ms": 5})
    codec = codec_for("Transaction")
    for event in events:
        producer.produce(topic, key=event.card_id.encode(), value=codec.encode(event.to_avro()))
    assert producer.flush(30) == 0
    stores = FeatureStoreConfig(FS, "api-skew", services.redis_url, PREFIX, None, None, None, None)
    source = KafkaTransactions(kafka_config, topic, bounded=True)
    run_dataflow(build_feature_flow(stores, source, dead_letters=None))

    cards = sorted({e.card_id for e in events})
    keys = [entity_key(FS, "card", c, prefix=PREFIX) for c in cards]
    vectors = [decode_hash(FS, cast("Mapping[bytes, bytes]", api.redis.hgetall(k))) for k in keys]
    streaming = api.watcher.current().champion.score(feature_matrix(vectors))
    by_id = {e.event_id: e for e in events}

    newest = [body(by_id[v.event_id]) for v in vectors]
    singles = [api.client.post("/v1/score", json=b).json() for b in newest]
    batch = api.client.post("/v1/score:batch", json={"transactions": newest[:8]}).json()

    assert all(r["features_source"] == "stored" for r in singles)
    api_scores = np.array([r["score"] for r in singles])
    assert np.max(np.abs(api_scores - streaming)) <= 1e-6, (api_scores, streaming)
    batch_scores = np.array([r["score"] for r in batch["results"]])
    assert np.max(np.abs(batch_scores - streaming[:8])) <= 1e-6
