"""The scoring dataflow end to end: real broker, real sqlite MLflow registry, ONNX models.

Feature vectors are produced straight to a features topic (the feature flow has its own
tests). Models are the serving tests' tiny MLPs, registered with the fraud feature set's
names and definition version. Live tests run `skewless score run` as a subprocess and
watch its Prometheus endpoint to know when it has polled the registry.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from offline.reference import reference_bins
from schemas.codec import AvroCodec
from schemas.contracts import codec_for
from schemas.features import FeatureVector, feature_vector_schema
from schemas.features.fraud import FRAUD_FEATURES
from schemas.records import DeadLetter
from serving.drift import SCORE_SERIES, DriftConfig, DriftMetric
from serving.model_store import ModelStore
from serving.predictions import Prediction
from serving.watcher import RegistryWatcher
from skewless.endpoints import Endpoints
from streams.runner import run_dataflow
from streams.scoring import ScoringConfig, build_scoring_flow
from streams.scoring.alerts import RetrainDebouncer
from streams.sinks.dead_letter import DeadLetterTarget
from streams.sources import kafka_source
from tests.kafka_helpers import consume_all
from tests.serving.conftest import Registry, mlp_onnx, model_name, registry

__all__ = ["model_name", "registry"]  # fixtures shared with tests/serving

pytestmark = pytest.mark.integration

NAMES = list(FRAUD_FEATURES.feature_names)
D = len(NAMES)
HOUR = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00Z


def _vectors(n: int, *, seed: int, start: int = 0, span_ms: int = HOUR) -> list[FeatureVector]:
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 1.0, (n, D))
    return [
        FeatureVector(
            event_id=f"e{seed}-{start + i}",
            keys=(f"c{rng.integers(0, 200)}", f"m{i % 17}"),
            event_time=T0 + (start + i) * span_ms // max(n, 1),
            source_timestamp=1_700_000_000_000 + start + i,
            source_partition=0,
            source_offset=start + i,
            computed_at=1_700_000_000_000 + start + i,
            definition_version=FRAUD_FEATURES.version,
            late=False,
            values=tuple(float(v) for v in values[i]),
        )
        for i in range(n)
    ]


def _produce(
    kafka_config: dict[str, str], topic: str, vectors: list[FeatureVector], junk: int = 0
) -> None:
    codec = AvroCodec(feature_vector_schema(FRAUD_FEATURES))
    producer = Producer({**kafka_config, "enable.idempotence": True, "linger.ms": 5})
    for i, v in enumerate(vectors):
        producer.produce(
            topic, key=v.keys[0].encode(), value=codec.encode(v.to_avro(FRAUD_FEATURES))
        )
        if i < junk:
            producer.produce(topic, key=b"junk", value=b"\xc3\x01 not a vector")
        producer.poll(0)
    assert producer.flush(30) == 0


def _register(registry: Registry, name: str, seed: int, *, reference: bool = True) -> str:
    model = mlp_onnx(seed=seed, d=D)
    ref = None
    if reference:
        x = np.random.default_rng(99).normal(0.0, 1.0, (3_000, D))
        ref = reference_bins(x, _offline_scores(model, x), NAMES)
    tags = {"feature_names": json.dumps(NAMES), "definition_version": FRAUD_FEATURES.version}
    return registry.register(name, model, tags=tags, reference=ref)


def _offline_scores(model: bytes, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (out,) = session.run(["score"], {"features": np.asarray(x, dtype=np.float32)})
    return np.asarray(out).reshape(-1)


def _predictions(kafka_config: dict[str, str], topic: str) -> list[Prediction]:
    codec = codec_for("Prediction")
    return [
        Prediction.from_avro(codec.decode(m.value() or b""))
        for m in consume_all(kafka_config, topic)
    ]


def _run_bounded(
    registry: Registry,
    name: str,
    kafka_config: dict[str, str],
    topics: dict[str, str],
    drift: DriftConfig | None = None,
) -> None:
    watcher = RegistryWatcher(ModelStore(registry.uri, model_name=name))
    assert watcher.poll_once(), watcher.last_error
    config = ScoringConfig(
        feature_set=FRAUD_FEATURES,
        client_config=kafka_config,
        predictions_topic=topics["predictions"],
        drift_topic=topics["drift"],
        drift=drift or DriftConfig(window_ms=HOUR, min_count=100),
    )
    flow = build_scoring_flow(
        config,
        kafka_source(kafka_config, topics["features"], bounded=True),
        current=watcher.current,
        dead_letters=DeadLetterTarget(kafka_config, topics["dead"]),
    )
    run_dataflow(flow)


@pytest.fixture
def topics(make_topic: Callable[..., str]) -> dict[str, str]:
    return {
        "features": make_topic("fv", 4),
        "predictions": make_topic("pred", 4),
        "drift": make_topic("drift", 1),
        "dead": make_topic("dl", 1),
    }


def test_streaming_scores_equal_offline_onnxruntime_for_10k_events(
    registry: Registry, model_name: str, kafka_config: dict[str, str], topics: dict[str, str]
) -> None:
    version = _register(registry, model_name, seed=41)
    registry.alias(model_name, "champion", version)
    vectors = _vectors(10_000, seed=1, span_ms=5 * HOUR)
    _produce(kafka_config, topics["features"], vectors, junk=3)

    _run_bounded(registry, model_name, kafka_config, topics)

    messages = consume_all(kafka_config, topics["predictions"])
    codec = codec_for("Prediction")
    preds = [Prediction.from_avro(codec.decode(m.value() or b"")) for m in messages]
    assert sorted(p.event_id for p in preds) == sorted(v.event_id for v in vectors)
    assert all(
        dict(m.headers() or [])["event_id"].decode() == p.event_id
        for m, p in zip(messages, preds, strict=True)
    )
    assert all((m.key() or b"").decode() == p.card_id for m, p in zip(messages, preds, strict=True))

    by_id = {v.event_id: v for v in vectors}
    x = np.array([by_id[p.event_id].values for p in preds])
    offline = _offline_scores(mlp_onnx(seed=41, d=D), x)
    streamed = np.array([p.score for p in preds])
    assert np.max(np.abs(streamed - offline)) <= 1e-6
    for p in preds:
        v = by_id[p.event_id]
        assert (p.model_version, p.variant, p.served) == (version, "champion", True)
        assert (p.event_time, p.source_timestamp, p.card_id) == (
            v.event_time,
            v.source_timestamp,
            v.keys[0],
        )
        expected = "decline" if p.score >= 0.8 else "review" if p.score >= 0.5 else "approve"
        assert p.decision == expected

    dead = [
        DeadLetter.from_avro(codec_for("DeadLetter").decode(m.value() or b""))
        for m in consume_all(kafka_config, topics["dead"])
    ]
    assert len(dead) == 3
    assert all(d.source_topic == topics["features"] and d.reason for d in dead)

    drift_codec = codec_for("DriftMetric")
    metrics = [
        DriftMetric.from_avro(drift_codec.decode(m.value() or b""))
        for m in consume_all(kafka_config, topics["drift"])
    ]
    windows = Counter((m.window_start, m.count) for m in metrics)
    times = np.array([v.event_time for v in vectors])
    expected_windows = {
        (T0 + k * HOUR, int(np.sum((times >= T0 + k * HOUR) & (times < T0 + (k + 1) * HOUR))))
        for k in range(4)  # the fifth window is still open at the end of the stream
    }
    assert set(windows) == expected_windows
    assert set(windows.values()) == {D + 1}
    assert {m.feature for m in metrics} == {*NAMES, SCORE_SERIES}
    assert {m.level for m in metrics} == {"ok"}  # same distribution as the reference


def test_shadow_scores_every_event_once_served_by_the_champion_once_not_by_the_challenger(
    registry: Registry, model_name: str, kafka_config: dict[str, str], topics: dict[str, str]
) -> None:
    v1, v2 = _register(registry, model_name, seed=51), _register(registry, model_name, seed=52)
    registry.alias(model_name, "champion", v1)
    registry.alias(model_name, "challenger", v2)
    registry.rollout(model_name, "shadow")
    vectors = _vectors(2_000, seed=2)
    _produce(kafka_config, topics["features"], vectors)

    _run_bounded(registry, model_name, kafka_config, topics)

    per_event: dict[str, list[tuple[str, str, bool]]] = defaultdict(list)
    for p in _predictions(kafka_config, topics["predictions"]):
        per_event[p.event_id].append((p.variant, p.model_version, p.served))
    assert set(per_event) == {v.event_id for v in vectors}
    expected = [("challenger", v2, False), ("champion", v1, True)]
    assert all(sorted(rows) == expected for rows in per_event.values())


# --- live worker (subprocess) --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveWorker:
    """`skewless score run` in a subprocess, plus a reader of its predictions."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    consumer: Consumer
    served: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def metric(self, name: str) -> float | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def wait(self, what: str, ready: Callable[[], bool], timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if self.process.poll() is not None:
                pytest.fail(
                    f"worker exited ({self.process.returncode}) waiting for {what}:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}:\n{self.tail()}")
            time.sleep(0.05)

    def read(self) -> None:
        codec = codec_for("Prediction")
        for m in self.consumer.consume(1000, 0.1):
            if m.error() is None:
                p = Prediction.from_avro(codec.decode(m.value() or b""))
                if p.served:
                    self.served[p.event_id].append(p.model_version)

    def served_count(self) -> int:
        self.read()
        return len(self.served)

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


@pytest.fixture
def live_worker(
    registry: Registry,
    model_name: str,
    kafka_config: dict[str, str],
    services: Endpoints,
    topics: dict[str, str],
    tmp_path: Path,
) -> Iterator[LiveWorker]:
    """Start the worker lazily (after the test registered a champion)."""
    port = _free_port()
    env = {
        **os.environ,
        "SKEWLESS_CONFIG": str(tmp_path / "none.toml"),
        "SKEWLESS_KAFKA_BOOTSTRAP": kafka_config["bootstrap.servers"],
        "SKEWLESS_REDIS_URL": services.redis_url,
        "SKEWLESS_MLFLOW_URI": registry.uri,
        "SKEWLESS_STATE_DIR": str(tmp_path / "state"),
        "SKEWLESS_DATA_DIR": str(tmp_path / "data"),
        "SKEWLESS_TOPICS__FEATURES": topics["features"],
        "SKEWLESS_TOPICS__PREDICTIONS": topics["predictions"],
        "SKEWLESS_TOPICS__DRIFT": topics["drift"],
        "SKEWLESS_TOPICS__DEAD_LETTER": topics["dead"],
    }
    args = ["score", "run", "--poll-s", "0.2", "--metrics-port", str(port), "--name", model_name]
    log = tmp_path / "worker.log"
    consumer = Consumer(
        {**kafka_config, "group.id": f"t-{model_name}", "enable.auto.commit": False}
    )
    partitions = (
        consumer.list_topics(topics["predictions"], timeout=30)
        .topics[topics["predictions"]]
        .partitions
    )
    consumer.assign(
        [TopicPartition(topics["predictions"], p, OFFSET_BEGINNING) for p in partitions]
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "from skewless.cli import main; main()", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    worker = LiveWorker(process, port, log, consumer)
    try:
        worker.wait(
            "the metrics endpoint",
            lambda: worker.metric("skewless_scoring_model_generation") is not None,
        )
        yield worker
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        consumer.close()


def test_hot_reload_mid_stream_loses_nothing_and_serves_each_event_once(
    registry: Registry,
    model_name: str,
    kafka_config: dict[str, str],
    topics: dict[str, str],
    request: pytest.FixtureRequest,
) -> None:
    v1, v2 = _register(registry, model_name, seed=61), _register(registry, model_name, seed=62)
    registry.alias(model_name, "champion", v1)
    worker: LiveWorker = request.getfixturevalue("live_worker")
    first, second = _vectors(1_500, seed=3), _vectors(1_500, seed=3, start=1_500)

    _produce(kafka_config, topics["features"], first)
    worker.wait("the first half", lambda: worker.served_count() >= len(first))
    registry.alias(model_name, "champion", v2)  # promote while the worker runs
    worker.wait("the new champion", lambda: worker.metric("skewless_scoring_model_generation") == 2)
    _produce(kafka_config, topics["features"], second)
    worker.wait("the second half", lambda: worker.served_count() >= len(first) + len(second))

    worker.read()
    assert set(worker.served) == {v.event_id for v in first + second}  # none lost
    assert all(len(versions) == 1 for versions in worker.served.values())  # none twice
    assert {worker.served[v.event_id][0] for v in first} == {v1}
    assert {worker.served[v.event_id][0] for v in second} == {v2}


def test_a_tampered_or_pickled_version_never_serves_the_last_good_model_does(
    registry: Registry,
    model_name: str,
    kafka_config: dict[str, str],
    topics: dict[str, str],
    request: pytest.FixtureRequest,
) -> None:
    good = _register(registry, model_name, seed=71)
    registry.alias(model_name, "champion", good)
    worker: LiveWorker = request.getfixturevalue("live_worker")
    tampered, pickled = (
        _register(registry, model_name, seed=72),
        _register(registry, model_name, seed=73),
    )
    path = registry.artifact_dir(model_name, tampered) / "model.onnx"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    payload = b"\x80\x04" + b"\x95pickle-payload."  # a pickle's magic bytes; never unpickled
    (registry.artifact_dir(model_name, pickled) / "model.onnx").write_bytes(payload)
    registry.client.set_model_version_tag(
        model_name, pickled, "onnx_sha256", hashlib.sha256(payload).hexdigest()
    )

    produced: list[FeatureVector] = []
    for i, bad in enumerate((tampered, pickled)):
        registry.alias(model_name, "champion", bad)
        worker.wait(
            f"the refusal of v{bad}", lambda: worker.metric("skewless_scoring_registry_error") == 1
        )
        batch = _vectors(500, seed=10 + i)
        _produce(kafka_config, topics["features"], batch)
        produced += batch
        total = len(produced)
        worker.wait("the batch", lambda total=total: worker.served_count() >= total)
        registry.alias(model_name, "champion", good)
        worker.wait("a clean poll", lambda: worker.metric("skewless_scoring_registry_error") == 0)

    worker.read()
    assert set(worker.served) == {v.event_id for v in produced}
    assert {tuple(v) for v in worker.served.values()} == {(good,)}
    assert worker.metric("skewless_scoring_model_generation") == 1  # never swapped


def test_retrain_is_debounced_per_version_and_cooldown() -> None:
    now = [0.0]
    debounce = RetrainDebouncer(cooldown_s=60, clock=lambda: now[0])

    def metric(version: str, level: str = "alert") -> DriftMetric:
        return DriftMetric("m", version, "amount", 0, HOUR, 0.4, level, 1_000)  # type: ignore[arg-type]

    assert not debounce.should_retrain(metric("1", "warn"))
    assert debounce.should_retrain(metric("1"))
    assert not debounce.should_retrain(metric("1"))  # same version: once
    now[0] = 30
    assert not debounce.should_retrain(metric("2"))  # cooling down
    now[0] = 61
    assert debounce.should_retrain(metric("2"))
    assert not debounce.should_retrain(metric("1"))
