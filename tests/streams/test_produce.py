"""Producing the world to a real broker: every event arrives once, and the CLI continues."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from schemas.contracts import codec_for
from schemas.records import Label, Transaction, to_millis
from skewless.cli import app
from skewless.endpoints import Endpoints
from streams.generator import ProduceError, World, WorldConfig
from streams.generator.produce import produce
from tests.kafka_helpers import consume_all


def test_undeliverable_messages_fail_loudly() -> None:
    config = WorldConfig(seed=1, cards=200, merchants=100)
    unreachable = {"bootstrap.servers": "127.0.0.1:9", "message.timeout.ms": "300"}
    with pytest.raises(ProduceError, match=r"20 message\(s\) failed delivery"):
        produce(
            World.fresh(config).stream(20),
            client_config=unreachable,
            transactions_topic="t",
            labels_topic="l",
            flush_timeout_s=10,
        )


@pytest.mark.integration
def test_produce_100k_events_and_read_back_exactly_100k_distinct_ids(
    kafka_config: dict[str, str], make_topic: Callable[..., str]
) -> None:
    transactions, labels = make_topic("transactions"), make_topic("labels")
    config = WorldConfig(seed=21, cards=5_000, merchants=800, events_per_day=20_000)
    report = produce(
        World.fresh(config).stream(100_000),
        client_config=kafka_config,
        transactions_topic=transactions,
        labels_topic=labels,
    )
    assert report.events == 100_000
    assert report.labels > 0

    txn_codec, label_codec = codec_for("Transaction"), codec_for("Label")
    messages = consume_all(kafka_config, transactions, timeout_s=120)
    records = [Transaction.from_avro(txn_codec.decode(m.value() or b"")) for m in messages]
    assert len(records) == 100_000
    assert len({r.event_id for r in records}) == 100_000
    assert all(m.key() == r.card_id.encode() for m, r in zip(messages, records, strict=True))

    label_messages = consume_all(kafka_config, labels, timeout_s=60)
    produced_labels = [
        Label.from_avro(label_codec.decode(m.value() or b"")) for m in label_messages
    ]
    assert len(produced_labels) == report.labels
    assert {lab.event_id for lab in produced_labels} <= {r.event_id for r in records}


@pytest.mark.integration
def test_live_mode_stamps_wall_clock_event_times_and_drops_labels(
    kafka_config: dict[str, str], make_topic: Callable[..., str]
) -> None:
    transactions, labels = make_topic("transactions"), make_topic("labels")
    config = WorldConfig(seed=2, cards=500, merchants=100, events_per_day=500)
    before = time.time_ns() // 1_000_000
    report = produce(
        World.fresh(config).stream(3_000),  # six simulated days: labels fall due
        client_config=kafka_config,
        transactions_topic=transactions,
        labels_topic=labels,
        live=True,
    )
    after = time.time_ns() // 1_000_000
    assert (report.events, report.labels) == (3_000, 0)
    codec = codec_for("Transaction")
    records = [codec.decode(m.value() or b"") for m in consume_all(kafka_config, transactions)]
    assert all(before <= to_millis(r["event_time"]) <= after for r in records)
    assert all(r["event_id"].startswith("live-") for r in records)
    assert len({r["event_id"] for r in records}) == 3_000
    assert consume_all(kafka_config, labels) == []


@pytest.mark.integration
def test_cli_continues_the_history_across_runs(
    kafka_config: dict[str, str],
    make_topic: Callable[..., str],
    services: Endpoints,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transactions, labels = make_topic("transactions"), make_topic("labels")
    monkeypatch.setenv("SKEWLESS_KAFKA_BOOTSTRAP", kafka_config["bootstrap.servers"])
    monkeypatch.setenv("SKEWLESS_REDIS_URL", services.redis_url)
    monkeypatch.setenv("SKEWLESS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("SKEWLESS_TOPICS__TRANSACTIONS", transactions)
    monkeypatch.setenv("SKEWLESS_TOPICS__LABELS", labels)
    runner = CliRunner()
    first = runner.invoke(app, ["produce", "--events", "4000", "--seed", "3", "--reset"])
    assert first.exit_code == 0, first.output
    figures = tmp_path / "run.json"
    second = runner.invoke(app, ["produce", "--events", "6000", "--json", str(figures)])
    assert second.exit_code == 0, second.output
    assert "events/s" in second.output
    assert json.loads(figures.read_text())["events"] == 6_000

    codec = codec_for("Transaction")
    got = [
        codec.decode(m.value() or b"")["event_id"] for m in consume_all(kafka_config, transactions)
    ]
    expected = World.fresh(WorldConfig(seed=3)).stream(10_000)
    assert sorted(got) == sorted(
        i.record.event_id for i in expected if isinstance(i.record, Transaction)
    )

    mismatch = runner.invoke(app, ["produce", "--events", "10", "--seed", "4"])
    assert mismatch.exit_code != 0
    assert isinstance(mismatch.exception, Exception)
    assert "--reset" in str(mismatch.exception)
