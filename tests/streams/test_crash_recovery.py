"""Kill -9 the feature worker mid-stream, twice, and restart it: the stores stay exact.

And stop it with SIGTERM instead: it drains and snapshots, so a restart replays nothing.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute
import pytest
import redis
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from schemas.features.fraud import FRAUD_FEATURES
from schemas.features.online import decode_hash
from schemas.records import Transaction
from skewless.endpoints import Endpoints
from streams.audit import audit_skew
from streams.delta_tables import FEATURES, table_uri
from streams.topic_reader import read_to_end
from tests.factories import produce_transactions, transactions
from tests.workers import stop_once_seen

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = 100_000
ROOT = Path(__file__).resolve().parents[2]


def _rows(delta_root: Path) -> int:
    try:
        table = DeltaTable(table_uri(str(delta_root), FEATURES))
    except TableNotFoundError:
        return 0
    actions = pa.table(table.get_add_actions(flatten=True))
    return int(pa.compute.sum(actions.column("num_records")).as_py() or 0)


def _worker(args: dict[str, object], *, stderr: int | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.streams.crash_worker", json.dumps(args)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=stderr,
    )


def _kill_when(
    proc: subprocess.Popen[bytes],
    delta_root: Path,
    rows: int,
    timeout_s: float,
    signum: int = signal.SIGKILL,
) -> str:
    """Signal the worker once Delta holds at least `rows` rows; its stderr if piped."""
    deadline = time.monotonic() + timeout_s
    while _rows(delta_root) < rows:
        assert proc.poll() is None, "worker ended before the kill point"
        assert time.monotonic() < deadline, f"no {rows} rows within {timeout_s}s"
        time.sleep(0.05)  # polling interval of a deadline loop, not a wait for an outcome
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    return stderr.decode() if stderr else ""


def _assert_each_event_once(delta_root: Path, events: int) -> None:
    """The Delta features table holds `events` rows, each of a distinct event."""
    table = DeltaTable(table_uri(str(delta_root), FEATURES)).to_pyarrow_table(columns=["event_id"])
    ids = table.column("event_id").to_pylist()
    assert len(ids) == events, "duplicates or losses in the Delta features table"
    assert len(set(ids)) == events


def _online_cards(client: redis.Redis, prefix: str) -> dict[str, tuple[str, tuple[float, ...]]]:
    """Per card: the event id and the card and request features of its online vector."""
    names = FRAUD_FEATURES.feature_names
    card_feats = [i for i, n in enumerate(names) if not n.startswith("merchant_")]
    out = {}
    for key in client.scan_iter(match=f"{prefix}:fraud:card:*", count=5000):
        vector = decode_hash(FRAUD_FEATURES, client.hgetall(key))
        out[key.decode().rsplit(":", 1)[1]] = (
            vector.event_id,
            tuple(vector.values[i] for i in card_feats),
        )
    return out


@pytest.fixture
def worker_args(
    tmp_path: Path,
    kafka_config: dict[str, str],
    make_topic: Callable[..., str],
    services: Endpoints,
) -> Callable[..., dict[str, object]]:
    """Factory: a crash worker's arguments, reading `topic`, writing stores of its own `name`."""

    def make(
        topic: str, name: str, *, recovery: bool, workers: int = 1, commit_seconds: float = 2.5
    ) -> dict[str, object]:
        return {
            "kafka_config": kafka_config,
            "redis_url": services.redis_url,
            "prefix": name,
            "delta_root": str(tmp_path / name),
            "topic": topic,
            "features_topic": make_topic(f"fv-{name}", 4),
            "dead_topic": make_topic(f"dl-{name}", 1),
            "recovery_dir": str(tmp_path / f"recovery-{name}") if recovery else None,
            "workers": workers,
            # Delta commits every 2.5 s (SKEWLESS_DELTA_COMMIT_SECONDS): the epochs in
            # between only log their rows.
            "commit_seconds": commit_seconds,
        }

    return make


def _produced(
    kafka_config: dict[str, str], make_topic: Callable[..., str], events: int, *, seed: int
) -> tuple[str, list[Transaction]]:
    """A fresh 4-partition topic holding `events` transactions of 3,000 cards; both."""
    topic = make_topic("tx", 4)
    stream = transactions(events, seed=seed, cards=3_000, merchants=300)
    produce_transactions(kafka_config, topic, stream)
    return topic, stream


@pytest.mark.parametrize(
    ("workers", "events"),
    # Two workers share the state log and each has a sink partition. Fewer events: at
    # 100,000 that case took 462 s here against 68 s for one worker.
    [(1, EVENTS), (2, EVENTS // 4)],
)
def test_kill_nine_twice_then_restart_gives_exactly_once_stores(
    workers: int,
    events: int,
    tmp_path: Path,
    kafka_config: dict[str, str],
    make_topic: Callable[..., str],
    clean_redis: redis.Redis,
    worker_args: Callable[..., dict[str, object]],
) -> None:
    topic, _ = _produced(kafka_config, make_topic, events, seed=21)
    crashed = worker_args(topic, "crashed", recovery=True, workers=workers)
    rng = random.Random(7)
    for fraction in sorted(rng.uniform(0.1, 0.8) for _ in range(2)):
        _kill_when(_worker(crashed), tmp_path / "crashed", int(events * fraction), timeout_s=300)
    final = _worker(crashed)
    assert final.wait(600) == 0

    clean = worker_args(topic, "clean", recovery=False, workers=workers)
    assert _worker(clean).wait(600) == 0

    _assert_each_event_once(tmp_path / "crashed", events)

    for name in ("crashed", "clean"):
        report = audit_skew(
            clean_redis, FRAUD_FEATURES, prefix=name, delta_root=str(tmp_path / name)
        )
        assert report.ok, (name, report.mismatches[:5])
    assert _online_cards(clean_redis, "crashed") == _online_cards(clean_redis, "clean")


def test_kill_nine_without_recovery_then_restart_gives_every_row_once(
    tmp_path: Path,
    kafka_config: dict[str, str],
    make_topic: Callable[..., str],
    clean_redis: redis.Redis,
    worker_args: Callable[..., dict[str, object]],
) -> None:
    # Without recovery the sink keeps deferred rows buffered, not logged: a restart reads
    # the topic from its start and skips what the tables hold.
    events = EVENTS // 5
    topic, _ = _produced(kafka_config, make_topic, events, seed=24)
    args = worker_args(topic, "norecovery", recovery=False)
    _kill_when(_worker(args), tmp_path / "norecovery", events // 3, timeout_s=300)
    assert _worker(args).wait(600) == 0
    _assert_each_event_once(tmp_path / "norecovery", events)
    report = audit_skew(
        clean_redis, FRAUD_FEATURES, prefix="norecovery", delta_root=str(tmp_path / "norecovery")
    )
    assert report.ok, report.mismatches[:5]


@pytest.mark.parametrize(
    ("recovery", "workers"),
    # Two workers: the sink partition on the thread without the source commits from the
    # heartbeat's polls (`streams.heartbeat`).
    [(True, 1), (False, 1), (True, 2)],
    ids=["recovery", "no-recovery", "two-workers"],
)
def test_a_deferred_delta_commit_lands_while_the_stream_is_quiet(
    recovery: bool,
    workers: int,
    tmp_path: Path,
    kafka_config: dict[str, str],
    make_topic: Callable[..., str],
    worker_args: Callable[..., dict[str, object]],
) -> None:
    # A tailing worker reads a burst in its first epoch, whose snapshot defers the commit;
    # then nothing comes, so Bytewax snapshots the sink no more (`streams.idle`).
    events = 300
    topic, _ = _produced(kafka_config, make_topic, events, seed=23)
    args = worker_args(topic, "quiet", recovery=recovery, workers=workers, commit_seconds=3)
    args["bounded"] = False
    worker = _worker(args, stderr=subprocess.PIPE)
    stderr = stop_once_seen(worker, lambda: _rows(tmp_path / "quiet"), events, what="rows")
    assert worker.returncode == 0, stderr
    assert _rows(tmp_path / "quiet") == events


def test_sigterm_drains_and_snapshots_so_a_restart_replays_nothing(
    tmp_path: Path,
    kafka_config: dict[str, str],
    make_topic: Callable[..., str],
    clean_redis: redis.Redis,
    worker_args: Callable[..., dict[str, object]],
) -> None:
    events = EVENTS // 2  # the stop lands mid-stream on a machine 2.5x as fast as this too
    topic, stream = _produced(kafka_config, make_topic, events, seed=22)
    # Committing every epoch: the stop is timed by the rows Delta holds.
    args = worker_args(topic, "stopped", recovery=True, commit_seconds=0)
    features_topic = str(args["features_topic"])

    stopped = _worker(args, stderr=subprocess.PIPE)
    stderr = _kill_when(
        stopped, tmp_path / "stopped", events // 5, timeout_s=300, signum=signal.SIGTERM
    )
    assert stopped.returncode == 0, stderr
    assert "panicked" not in stderr
    assert "Traceback" not in stderr
    # Drained: every vector computed before the stop is in Delta and on the topic.
    written = _rows(tmp_path / "stopped")
    assert events // 5 <= written < events
    assert sum(1 for _ in read_to_end(kafka_config, features_topic)) == written

    assert _worker(args).wait(600) == 0

    table = DeltaTable(table_uri(str(tmp_path / "stopped"), FEATURES)).to_pyarrow_table(
        columns=["event_id"]
    )
    assert sorted(table.column("event_id").to_pylist()) == sorted(e.event_id for e in stream)
    on_topic = [
        dict(m.headers() or [])["event_id"] for m in read_to_end(kafka_config, features_topic)
    ]
    assert len(on_topic) == events, "the restart replayed (or lost) vectors on the topic"
    assert len(set(on_topic)) == events
    report = audit_skew(
        clean_redis, FRAUD_FEATURES, prefix="stopped", delta_root=str(tmp_path / "stopped")
    )
    assert report.ok, report.mismatches[:5]
