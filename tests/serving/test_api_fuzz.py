"""Property-based fuzzing of the online API: no input, valid or not, gets a 5xx.

Two fuzzers against the app in-process, with a real Redis and a registered model, so the
success paths run too (a 503 would count as a failure):

- schemathesis generates positive and negative cases from the app's own OpenAPI spec
  and checks no server error, documented status codes and content types, and response
  bodies against their documented schemas;
- hypothesis throws arbitrary JSON (`st.recursive`), near-miss transactions and
  arbitrary paths and methods at the routes.

Each test prints its figures (examples run, statuses seen, 5xx count).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import redis
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from schemas.features.fraud import FRAUD_FEATURES
from serving.api import ApiConfig, create_app
from serving.model_store import ModelStore
from serving.watcher import RegistryWatcher
from tests.factories import transactions
from tests.serving.conftest import Registry
from tests.serving.test_api import PREFIX, register_fraud_model, stored_vectors

pytestmark = pytest.mark.integration

EXAMPLES = 400  # per generation mode (schemathesis) and per strategy (hypothesis)
_FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def fuzz_app(registry: Registry, model_name: str, clean_redis: redis.Redis) -> FastAPI:
    """The app with a champion loaded and a few cards' vectors in Redis."""
    registry.alias(model_name, "champion", register_fraud_model(registry, model_name, seed=71))
    stored_vectors(clean_redis, transactions(50, seed=31, cards=5, merchants=3))
    watcher = RegistryWatcher(ModelStore(registry.uri, model_name=model_name), poll_interval_s=3600)
    config = ApiConfig(feature_set=FRAUD_FEATURES, redis_prefix=PREFIX, max_batch_transactions=16)
    return create_app(config, watcher=watcher, redis_client=clean_redis)


@pytest.fixture
def client(fuzz_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(fuzz_app) as test_client:
        yield test_client


def _report(name: str, statuses: Counter[int], capsys: pytest.CaptureFixture[str]) -> None:
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    with capsys.disabled():
        print(
            f"\n{name}: {sum(statuses.values())} examples, 5xx: {server_errors}, "
            f"statuses {dict(sorted(statuses.items()))}"
        )


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_finds_no_server_error_and_responses_match_the_spec(
    fuzz_app: FastAPI, mode: GenerationMode, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    statuses: Counter[int] = Counter()

    @_FUZZ
    @given(case=schema.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call()
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    finally:
        shutdown_lifespans()
    _report(f"schemathesis {mode.value}", statuses, capsys)
    assert not [s for s in statuses if s >= 500]
    assert sum(statuses.values()) >= EXAMPLES // 2


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=25,
)
_BASE = transactions(1, seed=32)[0].to_avro()
_NEAR_MISS = st.builds(
    lambda drop, changes: {**{k: v for k, v in _BASE.items() if k not in drop}, **changes},
    st.sets(st.sampled_from(sorted(_BASE)), max_size=2),
    st.dictionaries(st.sampled_from([*sorted(_BASE), "extra"]), _JSON, max_size=3),
)
_RAW = st.binary(max_size=200) | st.text(max_size=200).map(str.encode)


@_FUZZ
@given(data=st.data())
def _throw_json(client: TestClient, statuses: Counter[int], data: st.DataObject) -> None:
    route = data.draw(st.sampled_from(["/v1/score", "/v1/score:batch"]))
    kind = data.draw(st.sampled_from(["json", "near-miss", "batch", "raw"]))
    if kind == "raw":
        response = client.post(route, content=data.draw(_RAW))
    else:
        document: Any = data.draw(_JSON if kind == "json" else _NEAR_MISS)
        if kind == "batch":
            document = {"transactions": data.draw(st.lists(_NEAR_MISS, max_size=20))}
        response = client.post(route, content=json.dumps(document).encode())
    statuses[response.status_code] += 1
    assert response.status_code < 500, (route, response.text)
    assert response.headers["content-type"].startswith("application/json")


# Any characters, percent-encoded as a client would send them (%2F, %00, %F0%9F... too).
_SEGMENT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20).map(
    lambda s: quote(s, safe="")
)


@_FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    segments=st.lists(_SEGMENT, max_size=5),
    prefix=st.sampled_from(["", "/v1", "/v1/features", "/v1/features/card", "/v1/score"]),
)
def _throw_paths(
    client: TestClient, statuses: Counter[int], method: str, segments: list[str], prefix: str
) -> None:
    path = prefix + "".join("/" + s for s in segments)
    response = client.request(method, path)
    statuses[response.status_code] += 1
    assert response.status_code < 500, (method, path, response.text)


def test_arbitrary_json_bodies_never_get_a_5xx(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    statuses: Counter[int] = Counter()
    _throw_json(client, statuses)
    _report("hypothesis JSON bodies", statuses, capsys)
    assert statuses[200] > 0  # some near misses are valid transactions, and score
    assert not [s for s in statuses if s >= 500]


def test_arbitrary_paths_and_methods_never_get_a_5xx(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    statuses: Counter[int] = Counter()
    _throw_paths(client, statuses)
    _report("hypothesis paths", statuses, capsys)
    assert not [s for s in statuses if s >= 500]
