"""Online path: feature lookup latency against a raw Redis floor, and HTTP scoring at a rate.

Setup: the fraud vectors of `--events` synthetic transactions (computed by the shared
kernels, stored in the online layout under a private key prefix) in the benchmark's
Redis, and a fraud-shaped ONNX MLP (the serving tests' model helper) registered as
champion in a temporary sqlite MLflow store. The API runs under uvicorn in a subprocess
(this file with `--serve`), one worker, on loopback.

(a) lookup of a card's vector, one call at a time, `--lookups` per repetition:
    - floor: raw redis-py `HGETALL` of the same key, interleaved call by call with
    - in-process: `serving.api.OnlineStore.get` (HGETALL + decode), target p99 <= 2x floor;
    - HTTP: `GET /v1/features/card/{id}` over a keep-alive connection.
(b) `POST /v1/score` at a fixed offered rate (`--rate` req/s for `--seconds`), open loop
    from an asyncio client (requests are sent on schedule whatever the responses do; the
    latency of a request counts from its scheduled send time). Half the transactions are
    a card's newest stored event (stored features), half new events (assembled).

Every figure is the median over `--reps` repetitions.

    python benchmarks/online.py [--reps 5 --rate 200 --seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import httpx2 as httpx
import redis
from _common import BenchServices, bench_services, delete_prefix, median, percentile, write_result
from mlflow import MlflowClient

from schemas.features import CompiledFeatureSet, FeatureVector, LocalEngine
from schemas.features.fraud import FRAUD_FEATURES
from schemas.features.online import encode_hash, entity_key
from schemas.records import Transaction
from serving.api import ApiConfig, OnlineStore, create_app
from serving.model_store import ModelStore
from serving.watcher import RegistryWatcher

BENCH_DIR = Path(__file__).resolve().parent
FS = FRAUD_FEATURES
MODEL = "skewless-fraud"


def populate(client: redis.Redis, prefix: str, events: int) -> list[Transaction]:
    """Store the vectors of `events` transactions; the events, in order."""
    if str(BENCH_DIR.parent) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR.parent))
    from tests.factories import transactions

    txns = transactions(events, seed=5, cards=max(1, events // 10), merchants=50)
    engine = LocalEngine(CompiledFeatureSet(FS))
    pipe = client.pipeline(transaction=False)
    for i, txn in enumerate(txns):
        values, late = engine.compute(txn)
        now = time.time_ns() // 1_000_000
        vector = FeatureVector(
            txn.event_id, (txn.card_id, txn.merchant_id), txn.event_time, now, 0, i, now,
            FS.version, late, values,
        )  # fmt: skip
        fields = cast("dict[Any, Any]", encode_hash(vector))
        for entity, key in zip(("card", "merchant"), vector.keys, strict=True):
            pipe.hset(entity_key(FS, entity, key, prefix=prefix), mapping=fields)
        if len(pipe) >= 2000:
            pipe.execute()
    pipe.execute()
    return txns


def register_model(root: Path) -> str:
    """A sqlite MLflow store with a fraud-shaped champion; its URI."""
    if str(BENCH_DIR.parent) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR.parent))
    from tests.serving.conftest import Registry, mlp_onnx

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("bench", artifact_location=(root / "art").as_uri())
    registry = Registry(uri=uri, client=client, experiment_id=experiment, root=root)
    names = list(FS.feature_names)
    tags = {"feature_names": json.dumps(names), "definition_version": FS.version}
    registry.alias(
        MODEL, "champion", registry.register(MODEL, mlp_onnx(seed=1, d=len(names)), tags=tags)
    )
    return uri


def lookup_rep(
    services: BenchServices, http: httpx.Client, prefix: str, cards: Sequence[str], n: int
) -> dict[str, dict[str, float]]:
    """p50/p99 milliseconds of raw HGETALL, in-process lookup and HTTP lookup."""
    client = services.redis_client()
    store = OnlineStore(client, FS, prefix=prefix)
    rng = random.Random(n)
    raw: list[float] = []
    local: list[float] = []
    over_http: list[float] = []
    clock = time.perf_counter
    for _ in range(n):  # interleaved call by call: both see the same Redis, cache and load
        card = rng.choice(cards)
        key = entity_key(FS, "card", card, prefix=prefix)
        start = clock()
        client.hgetall(key)
        raw.append(clock() - start)
        start = clock()
        store.get("card", card)
        local.append(clock() - start)
    for _ in range(n):
        card = rng.choice(cards)
        start = clock()
        http.get(f"/v1/features/card/{card}")
        over_http.append(clock() - start)
    client.close()
    return {name: _ms(values) for name, values in
            (("raw_hgetall", raw), ("in_process", local), ("http", over_http))}  # fmt: skip


def _ms(seconds: Sequence[float]) -> dict[str, float]:
    return {"p50_ms": percentile(seconds, 50) * 1e3, "p99_ms": percentile(seconds, 99) * 1e3}


async def _paced(url: str, bodies: Sequence[bytes], rate: float) -> tuple[list[float], int]:
    """Send `bodies` at `rate`/s open loop; latencies from scheduled send, and the failures."""
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=5.0) as client:

        async def one(body: bytes, due: float) -> None:
            nonlocal failures
            try:
                response = await client.post("/v1/score", content=body, headers=headers)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - due)
            else:
                failures += 1

        tasks = []
        start = time.perf_counter()
        for i, body in enumerate(bodies):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body, due)))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30.0)
    return latencies, failures


def score_bodies(txns: Sequence[Transaction], n: int, seed: int) -> list[bytes]:
    """Half newest stored events of their cards, half new events on known cards."""
    newest = {t.card_id: t for t in txns}
    stored = list(newest.values())
    rng = random.Random(seed)
    bodies = []
    for i in range(n):
        txn = rng.choice(stored).to_avro()
        if i % 2:
            txn |= {"event_id": f"new-{seed}-{i}", "amount": round(rng.uniform(1, 900), 2)}
        bodies.append(json.dumps(txn).encode())
    return bodies


def batch_sizes(http: httpx.Client) -> tuple[float, float]:
    """(count, sum) of the API's batch size histogram."""
    text = http.get("/metrics").text
    count = re.search(r"^skewless_api_batch_size_count (\S+)$", text, re.M)
    total = re.search(r"^skewless_api_batch_size_sum (\S+)$", text, re.M)
    return (float(count[1]) if count else 0.0, float(total[1]) if total else 0.0)


def wait_ready(http: httpx.Client, server: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"API server exited with code {server.returncode}")
        try:
            if http.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"API not ready after {timeout_s}s")


def serve(args: argparse.Namespace) -> None:
    """`--serve`: the API on uvicorn, for the benchmark's subprocess."""
    import uvicorn

    client = redis.Redis.from_url(args.redis_url, password=args.redis_password or None)
    watcher = RegistryWatcher(ModelStore(args.tracking_uri, model_name=MODEL), poll_interval_s=60)
    config = ApiConfig(
        feature_set=FS, redis_prefix=args.prefix, batch_max_wait_ms=float(args.batch_wait_ms)
    )
    app = create_app(config, watcher=watcher, redis_client=client)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    with bench_services() as services, tempfile.TemporaryDirectory() as tmp:
        prefix = f"bench-online-{uuid.uuid4().hex[:8]}"
        client = services.redis_client()
        txns = populate(client, prefix, args.events)
        cards = sorted({t.card_id for t in txns})
        uri = register_model(Path(tmp))
        port = _free_port()
        cmd = [sys.executable, __file__, "--serve", "--port", str(port), "--prefix", prefix,
               "--redis-url", services.redis_url, "--tracking-uri", uri,
               "--redis-password", services.redis_password or "",
               "--batch-wait-ms", str(args.batch_wait_ms)]  # fmt: skip
        server = subprocess.Popen(cmd)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=5.0) as http:
                wait_ready(http, server, 60.0)
                lookups = [
                    lookup_rep(services, http, prefix, cards, args.lookups)
                    for _ in range(args.reps)
                ]
                scores = []
                for rep in range(args.reps):
                    bodies = score_bodies(txns, int(args.rate * args.seconds), seed=rep)
                    before = batch_sizes(http)
                    latencies, failures = asyncio.run(_paced(base, bodies, args.rate))
                    after = batch_sizes(http)
                    batches = after[0] - before[0]
                    scores.append({
                        **_ms(latencies), "failures": failures, "sent": len(bodies),
                        "mean_batch": (after[1] - before[1]) / batches if batches else 0.0,
                    })  # fmt: skip
        finally:
            server.terminate()
            server.wait(30)
            delete_prefix(client, prefix)
            client.close()
    figures: dict[str, Any] = {"lookup": {}, "score_http": {}}
    for name in ("raw_hgetall", "in_process", "http"):
        figures["lookup"][name] = {
            q: median([rep[name][q] for rep in lookups]) for q in ("p50_ms", "p99_ms")
        }
    floor = figures["lookup"]["raw_hgetall"]
    for name in ("in_process", "http"):
        row = figures["lookup"][name]
        row["p50_vs_floor"] = row["p50_ms"] / floor["p50_ms"]
        row["p99_vs_floor"] = row["p99_ms"] / floor["p99_ms"]
    figures["score_http"] = {
        q: median([rep[q] for rep in scores]) for q in ("p50_ms", "p99_ms", "mean_batch")
    }
    figures["score_http"]["failures"] = sum(rep["failures"] for rep in scores)
    figures["score_http"]["sent"] = sum(rep["sent"] for rep in scores)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch-wait-ms", type=float, default=2.0, help="API micro-batch wait")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--port", "--prefix", "--redis-url", "--tracking-uri", "--redis-password"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        args.port = int(args.port)
        serve(args)
        return
    figures = run(args)
    lookup, score = figures["lookup"], figures["score_http"]
    for name, row in lookup.items():
        ratio = f"  ({row['p99_vs_floor']:.2f}x floor p99)" if "p99_vs_floor" in row else ""
        print(f"lookup {name:12s} p50 {row['p50_ms']:.3f} ms  p99 {row['p99_ms']:.3f} ms{ratio}")
    print(
        f"score over HTTP at {args.rate:.0f}/s: p50 {score['p50_ms']:.2f} ms  p99 "
        f"{score['p99_ms']:.2f} ms  mean batch {score['mean_batch']:.2f}  failures "
        f"{score['failures']}/{score['sent']}"
    )
    parameters = {k: v for k, v in vars(args).items() if k in
                  ("reps", "events", "lookups", "rate", "seconds", "batch_wait_ms")}  # fmt: skip
    path = write_result("online", {"parameters": parameters, **figures})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
