"""The demo's story: the steps in order, then a summary table and `--json` summary."""

from __future__ import annotations

import json
import shutil
import statistics
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer

from offline.registry import promote, set_rollout
from schemas.contracts import codec_for, registry_client
from skewless import wiring
from skewless.commands.features import summary as store_summary
from skewless.commands.models import print_model_card
from skewless.demo import batch, live
from skewless.demo.context import DemoContext
from skewless.demo.online import call_api
from skewless.demo.report import print_summary
from skewless.output import console, write_json
from skewless.report import render_report
from skewless.report.collect import collect_report_data
from skewless.services import embedded_services
from skewless.settings import load_settings
from streams.topic_reader import read_to_end

__all__ = ["run_demo"]

_LIVE_RATE = 1_000.0
_LIVE_EVENTS = 5_000


def _alerts(ctx: DemoContext, *, warm_ms: int, since_ms: int) -> dict[str, Any]:
    """Alert counts in the drifted period, before it, and while the windows filled.

    Until `warm_ms` the stream is younger than its longest window: every window feature
    is low against the reference (which spans the month), so PSI rightly alerts there.
    """
    codec = codec_for("DriftMetric", registry=registry_client(wiring.schema_registry(ctx.settings)))
    counts: dict[str, Any] = {
        "alerts": 0, "alerts_before_drift": 0, "alerts_while_warming_up": 0, "warnings": 0,
    }  # fmt: skip
    windows, features, before = set(), Counter[str](), Counter[str]()
    for message in read_to_end(ctx.kafka, ctx.settings.topics.drift):
        record = codec.decode(message.value() or b"")
        windows.add(record["window_start"])
        if record["level"] == "alert":
            start = record["window_start"]
            if start < warm_ms:
                counts["alerts_while_warming_up"] += 1
                continue
            drifted = start >= since_ms
            counts["alerts" if drifted else "alerts_before_drift"] += 1
            (features if drifted else before)[record["feature"]] += 1
        elif record["level"] == "warn":
            counts["warnings"] += 1
    counts["windows"] = len(windows)
    counts["alerting_features"] = dict(features.most_common())
    counts["alerting_features_before_drift"] = dict(before.most_common())
    return counts


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _live(ctx: DemoContext, mode: str, percent: float) -> live.LiveResult:
    set_rollout(ctx.settings.tracking_uri, mode=mode, canary_percent=percent)
    with live.live_workers(ctx):
        live.run_segment(ctx, events=300, rate=5_000)  # warm-up: both workers up and caught up
        return live.run_segment(ctx, events=_LIVE_EVENTS, rate=_LIVE_RATE)


def _story(ctx: DemoContext, events: int) -> dict[str, Any]:
    first = ctx.step(
        f"produce {events:,} transactions (a month)", lambda: batch.produce_history(ctx, events)
    )
    ctx.step("features into Redis, Delta and Kafka", lambda: batch.compute_features(ctx))
    ctx.step("labels into Delta", lambda: batch.ingest_labels(ctx))
    stores = ctx.step(
        "skew audit: Redis vs Delta", lambda: store_summary(ctx.settings, ctx.endpoints)
    )
    champion = ctx.step("validate, train and register the champion", lambda: batch.train(ctx))
    print_model_card(champion)

    drifted = events * 2 // 3
    second = ctx.step(
        f"produce {drifted:,} more, amounts drifting from a quarter in",
        lambda: batch.produce_history(ctx, drifted, drift_at=0.25),
    )
    ctx.step("features for the drifted period", lambda: batch.compute_features(ctx))
    ctx.step("labels for the drifted period", lambda: batch.ingest_labels(ctx))
    scoring = ctx.step(
        "stream-score every vector: predictions + PSI", lambda: batch.score_backlog(ctx)
    )
    span = second["last_event_time"] - second["first_event_time"]
    drift_start = second["first_event_time"] + span // 4
    longest = wiring.feature_set().max_window
    warm = first["first_event_time"] + longest // timedelta(milliseconds=1)
    alerts = _alerts(ctx, warm_ms=warm, since_ms=drift_start)
    console.print(
        f"  drift: {alerts['alerts']} alerts in the drifted period, "
        f"{alerts['alerts_before_drift']} before it, and {alerts['alerts_while_warming_up']} "
        f"in the stream's first {longest.days} days, while its windows filled"
    )

    candidate = ctx.step("retrain on drift: validate, train, gate", lambda: batch.train(ctx))
    print_model_card(candidate)
    has_challenger = candidate.alias == "challenger"
    shadow = ctx.step(
        "live: shadow the challenger (1,000 events/s)", lambda: _live(ctx, "shadow", 0)
    )
    canary = ctx.step("live: canary 10% (1,000 events/s)", lambda: _live(ctx, "canary", 10))
    if has_challenger:
        ctx.step(
            "promote the challenger (it passed the gates)",
            lambda: promote(ctx.settings.tracking_uri),
        )
        decision = "promoted"
    else:
        set_rollout(ctx.settings.tracking_uri, mode="champion", canary_percent=0)
        decision = "rolled_back"
        console.print("  challenger failed the gates: rolled back to the champion only")
    newest = [e for e in ctx.world.stream(5) if e.record.__class__.__name__ == "Transaction"]
    api = ctx.step("online API: lookups and scores", lambda: call_api(ctx, newest))
    final = ctx.step("final skew audit", lambda: store_summary(ctx.settings, ctx.endpoints))

    latency = shadow.latency_ms + canary.latency_ms
    result = {
        "events": final["events"],
        "skew_mismatches": final["skew_mismatches"],
        "model": {
            "roc_auc": champion.model.roc_auc,
            "pr_auc": champion.model.pr_auc,
            "baseline_pr_auc": champion.baseline.pr_auc,
            "recall_at_1pct_fpr": champion.model.recall_at_1pct_fpr,
            "version": champion.version,
        },
        "challenger": {
            "version": candidate.version,
            "pr_auc": candidate.model.pr_auc,
            "gates": "passed" if has_challenger else "failed",
        },
        "scoring": {
            "predictions_per_s": scoring["events_per_s"],
            "live_offered_per_s": _LIVE_RATE,
            "latency_ms": {"p50": _percentile(latency, 50), "p99": _percentile(latency, 99)},
            "shadow": {"served": shadow.served, "unserved": shadow.unserved},
            "canary": {"served": canary.served, "unserved": canary.unserved},
        },
        "drift": alerts,
        "rollout": {"decision": decision},
        "stores": {k: stores[k] for k in ("late_events", "dead_letters", "redis_entities")},
        "api": api,
        "produced": {"history": first, "drifted": second},
    }
    report_path = ctx.home / "report.html"
    data = collect_report_data(
        tracking_uri=ctx.settings.tracking_uri,
        model_name="skewless-fraud",
        client_config=ctx.kafka,
        drift_topic=ctx.settings.topics.drift,
        predictions_topic=ctx.settings.topics.predictions,
        schema_registry=wiring.schema_registry(ctx.settings),
        summary={k: result[k] for k in ("events", "skew_mismatches", "model", "drift", "rollout")},
        latency_window=(shadow.started_ms, canary.ended_ms + 60_000),
        latency_ms=latency,
    )
    result["report"] = str(ctx.step("report", lambda: render_report(data, report_path)).resolve())
    (ctx.home / "report-data.json").write_text(json.dumps(data.to_json()))
    return result


def run_demo(events: int, json_out: Path | None) -> None:
    """The whole story on embedded services; exits 1 if the skew audit finds a mismatch."""
    base = load_settings()
    home = base.state_dir / "demo"
    shutil.rmtree(home, ignore_errors=True)
    settings = load_settings(state_dir=home, data_dir=home / "data")
    with embedded_services(settings) as endpoints:
        ctx = DemoContext(settings, endpoints, home)
        result = _story(ctx, events)
    result["timings_s"] = ctx.timings
    print_summary(result)
    write_json(json_out, result)
    if result["skew_mismatches"]:
        raise typer.Exit(1)
