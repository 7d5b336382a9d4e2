"""`skewless score run`, `skewless models rollout`, `skewless retrain --on-drift`.

`score run` scores the features topic with the registry's champion (and challenger, by
the rollout mode), hot-reloading models as aliases and rollout tags change. `models
rollout` sets those tags (it is added to the `models` group of `skewless.commands.models`).
`retrain --on-drift` follows the drift topic and, on an alert, validates, trains and
gates a new model with `offline.pipeline.run_pipeline` — once per alerting version and
cooldown.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from schemas.errors import SkewlessError
from serving.drift import DriftConfig
from serving.model_store import DEFAULT_MODEL_NAME, ModelStore
from serving.routing import RolloutConfig, RolloutMode
from serving.watcher import RegistryWatcher
from skewless import wiring
from skewless.endpoints import kafka_config, resolve_endpoints
from skewless.output import console, write_json
from skewless.settings import Settings, SettingsError, load_settings
from streams.runner import run_dataflow
from streams.scoring.alerts import DriftFollower, RetrainDebouncer
from streams.scoring.flow import ScoringConfig, build_scoring_flow
from streams.scoring.metrics import ScoringMetrics
from streams.sources import kafka_source

__all__ = ["register"]

score_app = typer.Typer(help="Streaming scoring: predictions and drift from the features topic.")

_Json = Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON here.")]
_Name = Annotated[str, typer.Option("--name", help="Registered model name.")]


def _duration_ms(value: str, option: str) -> int:
    from skewless.commands.offline_data import parse_duration

    return int(parse_duration(value, option=option).total_seconds() * 1000)


def _summary(metrics: ScoringMetrics, watcher: RegistryWatcher, seconds: float) -> dict[str, Any]:
    def value(name: str, **labels: str) -> float:
        return metrics.sample(name, labels) or 0.0

    events = int(value("skewless_scoring_events_total"))
    latency_n = value("skewless_scoring_e2e_latency_ms_count")
    return {
        "events": events,
        "predictions_champion": int(
            value("skewless_scoring_predictions_total", variant="champion")
        ),
        "predictions_challenger": int(
            value("skewless_scoring_predictions_total", variant="challenger")
        ),
        "dead_letters": int(value("skewless_scoring_dead_letters_total")),
        "drift_metrics": {
            level: int(value("skewless_scoring_drift_metrics_total", level=level))
            for level in ("ok", "warn", "alert")
        },
        "mean_latency_ms": value("skewless_scoring_e2e_latency_ms_sum") / latency_n
        if latency_n
        else None,
        "model_generation": watcher.generation,
        "last_model_error": None if watcher.last_error is None else str(watcher.last_error),
        "seconds": seconds,
        "events_per_s": events / seconds if seconds > 0 else 0.0,
    }


@score_app.command("run")
def score_run(
    until_end: Annotated[
        bool, typer.Option("--until-end", help="Stop at the topic's current end.")
    ] = False,
    metrics_port: Annotated[
        int, typer.Option("--metrics-port", min=0, help="Prometheus port (0: off).")
    ] = 0,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Interface for the Prometheus endpoint.")
    ] = "127.0.0.1",
    poll_s: Annotated[float, typer.Option("--poll-s", min=0.1, help="Registry poll, s.")] = 5.0,
    drift_window: Annotated[
        str, typer.Option("--drift-window", help="Tumbling drift window of event time.")
    ] = "1h",
    drift_lateness: Annotated[
        str, typer.Option("--drift-lateness", help="How long a window waits for late events.")
    ] = "0s",
    drift_min_count: Annotated[
        int, typer.Option("--drift-min-count", min=1, help="Fewer events: no metrics.")
    ] = 500,
    warn: Annotated[float, typer.Option("--warn", help="PSI warn level.")] = 0.1,
    alert: Annotated[float, typer.Option("--alert", help="PSI alert level.")] = 0.25,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Max records per scored micro-batch.")
    ] = 500,
    wait_model_s: Annotated[
        float, typer.Option("--wait-model-s", help="How long to wait for a first model.")
    ] = 60.0,
    recovery: Annotated[bool, typer.Option(help="Snapshot state; resume where it stopped.")] = True,
    name: _Name = DEFAULT_MODEL_NAME,
    json_out: _Json = None,
) -> None:
    """Score the features topic into predictions and drift metrics (tails unless --until-end)."""
    settings = load_settings()
    endpoints = resolve_endpoints(settings)
    client = kafka_config(settings, endpoints)
    drift = DriftConfig(
        window_ms=_duration_ms(drift_window, "--drift-window"),
        lateness_ms=_duration_ms(drift_lateness, "--drift-lateness"),
        warn=warn,
        alert=alert,
        min_count=drift_min_count,
    )
    watcher = RegistryWatcher(
        ModelStore(settings.tracking_uri, model_name=name), poll_interval_s=poll_s
    )
    watcher.start()
    try:
        model_set = watcher.wait_ready(wait_model_s)
        console.print(
            f"serving {name}: champion v{model_set.champion.version}, "
            f"challenger {'v' + model_set.challenger.version if model_set.challenger else 'none'}, "
            f"mode {model_set.effective_mode}"
        )
        metrics = ScoringMetrics()
        metrics.follow(lambda: watcher.generation, lambda: watcher.last_error is not None)
        metrics.serve(metrics_port, addr=metrics_host)
        config = ScoringConfig(
            feature_set=wiring.feature_set(),
            client_config=client,
            predictions_topic=settings.topics.predictions,
            drift_topic=settings.topics.drift,
            drift=drift,
            schema_registry=wiring.schema_registry(settings),
        )
        flow = build_scoring_flow(
            config,
            kafka_source(
                client, settings.topics.features, bounded=until_end, batch_size=batch_size
            ),
            current=watcher.current,
            dead_letters=wiring.dead_letter_target(settings, endpoints),
            metrics=metrics,
        )
        started = time.perf_counter()
        run_dataflow(
            flow, recovery_dir=wiring.recovery_dir(settings, "scoring") if recovery else None
        )
        figures = _summary(metrics, watcher, time.perf_counter() - started)
    finally:
        watcher.stop()
    console.print(
        f"scored {figures['events']:,} events ({figures['events_per_s']:,.0f}/s): "
        f"{figures['predictions_champion']:,} champion and "
        f"{figures['predictions_challenger']:,} challenger predictions, "
        f"{figures['dead_letters']:,} dead letters, drift {figures['drift_metrics']}"
    )
    write_json(json_out, figures)


def rollout_command(
    mode: Annotated[str, typer.Argument(help="champion | shadow | canary")],
    percent: Annotated[
        float | None, typer.Option("--percent", help="Canary: share of cards on the challenger.")
    ] = None,
    name: _Name = DEFAULT_MODEL_NAME,
) -> None:
    """Set how champion and challenger share traffic (scoring workers follow within a poll)."""
    if mode == "canary" and percent is None:
        msg = "models rollout canary: --percent is required (share of cards, 0-100)"
        raise SettingsError(msg)
    try:
        config = RolloutConfig(mode=_mode(mode), canary_percent=percent or 0.0)
    except SkewlessError as exc:
        msg = f"models rollout: {exc}"
        raise SettingsError(msg) from exc
    from mlflow import MlflowClient

    from offline.registry import set_rollout

    uri = load_settings().tracking_uri
    set_rollout(uri, mode=config.mode, canary_percent=config.canary_percent, name=name)
    aliases = MlflowClient(tracking_uri=uri, registry_uri=uri).get_registered_model(name).aliases
    note = (
        ""
        if "challenger" in (aliases or {}) or mode == "champion"
        else " (no challenger yet: champion only)"
    )
    console.print(f"{name}: rollout {config.mode} {config.canary_percent:g}%{note}")


def _mode(mode: str) -> RolloutMode:
    if mode not in ("champion", "shadow", "canary"):
        msg = f"rollout mode: expected champion, shadow or canary, got {mode!r}"
        raise SettingsError(msg)
    return mode  # type: ignore[return-value]


def retrain_command(
    on_drift: Annotated[bool, typer.Option("--on-drift", help="Retrain on drift alerts.")] = False,
    max_events: Annotated[
        int | None, typer.Option("--max-events", min=1, help="Stop after N drift records.")
    ] = None,
    until_end: Annotated[
        bool, typer.Option("--until-end", help="Stop at the topic's end.")
    ] = False,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Read the drift topic from its start.")
    ] = False,
    cooldown: Annotated[str, typer.Option(help="At most one retrain per this long.")] = "1h",
    once: Annotated[bool, typer.Option("--once", help="Exit after the first retrain.")] = False,
    name: _Name = DEFAULT_MODEL_NAME,
    json_out: _Json = None,
) -> None:
    """Follow the drift topic; on an alert validate, train and gate a new model."""
    if not on_drift:
        msg = "retrain: only --on-drift is supported (use `skewless train` for a manual run)"
        raise SettingsError(msg)
    settings = load_settings()
    endpoints = resolve_endpoints(settings)
    debounce = RetrainDebouncer(cooldown_s=_duration_ms(cooldown, "--cooldown") / 1000)
    follower = DriftFollower(
        kafka_config(settings, endpoints),
        settings.topics.drift,
        from_beginning=from_beginning,
        until_end=until_end,
        schema_registry=wiring.schema_registry(settings),
    )
    outcomes: list[dict[str, Any]] = []
    try:
        for metric in follower:
            if debounce.should_retrain(metric):
                console.print(
                    f"[red]drift alert[/] {metric.model_name} v{metric.model_version} "
                    f"{metric.feature} psi {metric.psi:.3f} (window from {metric.window_start} ms)"
                )
                outcomes.append(_retrain(settings, name, metric.model_version))
                if once:
                    break
            if max_events is not None and follower.read >= max_events:
                break
    finally:
        follower.close()
    console.print(f"read {follower.read:,} drift records, {len(outcomes)} retrain(s)")
    write_json(
        json_out,
        {"drift_records": follower.read, "skipped": follower.skipped, "retrains": outcomes},
    )


def _retrain(settings: Settings, name: str, drifted_version: str) -> dict[str, Any]:
    try:
        from offline.pipeline import PipelineFailed, run_pipeline
    except ImportError as exc:
        msg = (
            f"retrain needs the training extra ({exc.name} is missing): "
            "pip install 'skewless[train]'"
        )
        raise SettingsError(msg) from exc
    artifact_root = None
    if settings.mlflow_uri is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        artifact_root = (settings.data_dir / "mlartifacts").resolve()
    try:
        report = run_pipeline(
            settings.delta_root,
            tracking_uri=settings.tracking_uri,
            artifact_root=artifact_root,
            storage_options=settings.delta_storage_options or None,
            name=name,
        )
    except PipelineFailed as exc:
        console.print(f"[red]validation failed, nothing trained:[/] {exc}")
        return {"drifted_version": drifted_version, "trained": False, "reason": str(exc)}
    gates = "passed" if report.gates.passed else "failed"
    console.print(
        f"trained {report.name} v{report.version}: gates {gates}, "
        f"alias {report.alias or 'none'}, test PR-AUC {report.model.pr_auc:.4f}"
    )
    return {
        "drifted_version": drifted_version,
        "trained": True,
        "version": report.version,
        "alias": report.alias,
        "gates_passed": report.gates.passed,
    }


def register(app: typer.Typer) -> None:
    app.add_typer(score_app, name="score")
    app.command("retrain")(retrain_command)
    from skewless.commands.models import models_app

    models_app.command("rollout")(rollout_command)
