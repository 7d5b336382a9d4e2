"""Collect a report's data from the real stores: MLflow registry, drift and predictions topics."""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from offline.registry import ModelVersionInfo, list_versions
from schemas.contracts import codec_for, registry_client
from serving.predictions import prediction_decoder
from skewless.report.data import Curve, ModelCard, PsiPoint, ReportData
from streams.topic_reader import read_to_end

__all__ = ["collect_report_data"]

_MAX_SCORES = 20_000
_MAX_CURVES = 3
_LINEAGE_TAGS = ("data_version", "definition_version", "onnx_sha256", "run_id", "gate_status")


_RUN_LINEAGE_TAGS = ("git_commit", "training_set_fingerprint", "cutoff_ms", "maturity_ms")


def _card(info: ModelVersionInfo, run_tags: Mapping[str, str]) -> ModelCard:
    lineage = {k: info.tags[k] for k in _LINEAGE_TAGS if k in info.tags}
    lineage.update({k: run_tags[k] for k in _RUN_LINEAGE_TAGS if k in run_tags})
    metrics = {k: float(v) for k, v in info.metrics.items() if k.startswith(("test_", "baseline_"))}
    return ModelCard(info.name, str(info.version), list(info.aliases), metrics, lineage)


def _run_tags(tracking_uri: str, run_id: str) -> dict[str, str]:
    from mlflow import MlflowClient

    try:
        return dict(MlflowClient(tracking_uri=tracking_uri).get_run(run_id).data.tags)
    except Exception:
        return {}


def _curves(tracking_uri: str, info: ModelVersionInfo, label: str) -> list[Curve]:
    """The version's evaluation curves; the baseline's under its own label."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=info.run_id,
                artifact_path="curves/curves.json",
                dst_path=tmp,
                tracking_uri=tracking_uri,
            )
        except Exception:
            return []
        points = json.loads(Path(path).read_text())
    curves = []
    for p in points:
        if p["label"] == "model":
            curves.append(Curve(**{**p, "label": label}))
        elif p["label"] == "rules baseline":
            curves.append(Curve(**p))
    return curves


def _models(tracking_uri: str, name: str) -> tuple[list[ModelCard], list[Curve]]:
    """Cards of every version; curves of the newest few (each on its own test split)."""
    versions = list_versions(tracking_uri, name)
    cards = [_card(v, _run_tags(tracking_uri, v.run_id)) for v in versions]
    curves: list[Curve] = []
    baseline: Curve | None = None
    for info in sorted(versions, key=lambda v: v.version, reverse=True)[:_MAX_CURVES]:
        role = "/".join(info.aliases) or "retired"
        for curve in _curves(tracking_uri, info, f"v{info.version} ({role})"):
            if curve.label != "rules baseline":
                curves.append(curve)
            elif baseline is None:  # the newest run's baseline, on the newest test split
                baseline = curve
    return cards, curves + ([baseline] if baseline else [])


def _drift(
    client_config: Mapping[str, str], topic: str, registry: Mapping[str, str] | None
) -> list[PsiPoint]:
    codec = codec_for("DriftMetric", registry=registry_client(registry))
    points = []
    for message in read_to_end(client_config, topic):
        record = codec.decode(message.value() or b"")
        points.append(
            PsiPoint(
                window_start=int(record["window_start"]),
                feature=str(record["feature"]),
                psi=float(record["psi"]),
                level=str(record["level"]),
                model_version=str(record["model_version"]),
            )
        )
    return points


def _predictions(
    client_config: Mapping[str, str], topic: str, registry: Mapping[str, str] | None
) -> tuple[dict[str, list[float]], list[tuple[int, float]], list[tuple[int, float]]]:
    """Scores per variant, (produced ms, latency ms) of served predictions, throughput."""
    decode = prediction_decoder(registry)
    scores: dict[str, list[float]] = {}
    latency: list[tuple[int, float]] = []
    per_second: Counter[int] = Counter()
    for message in read_to_end(client_config, topic):
        prediction = decode(message.value() or b"")
        label = f"{prediction.variant} v{prediction.model_version}"
        bucket = scores.setdefault(label, [])
        if len(bucket) < _MAX_SCORES:
            bucket.append(prediction.score)
        produced_ms = message.timestamp()[1]
        if prediction.served:
            latency.append((produced_ms, float(produced_ms - prediction.source_timestamp)))
            per_second[produced_ms // 1000] += 1
    throughput = [(second, float(n)) for second, n in sorted(per_second.items())]
    return scores, latency, throughput


def collect_report_data(
    *,
    tracking_uri: str,
    model_name: str,
    client_config: Mapping[str, str] | None,
    drift_topic: str,
    predictions_topic: str,
    summary: dict[str, Any] | None = None,
    latency_window: tuple[int, int] | None = None,
    latency_ms: list[float] | None = None,
    schema_registry: Mapping[str, str] | None = None,
) -> ReportData:
    """Everything the report shows, read from the registry and the topics.

    `latency_window` (epoch ms, inclusive) limits latency and throughput to predictions
    produced while events were being produced live (a backlog's latency means nothing);
    `latency_ms`, when the caller measured exactly which events were live, replaces it.
    """
    cards, curves = _models(tracking_uri, model_name)
    data = ReportData(
        generated_at=int(time.time()), models=cards, curves=curves, summary=summary or {}
    )
    if client_config is not None:
        data.psi = _drift(client_config, drift_topic, schema_registry)
        scores, latency, throughput = _predictions(
            client_config, predictions_topic, schema_registry
        )
        data.scores = scores
        if latency_window is not None:
            lo, hi = latency_window
            latency = [(t, v) for t, v in latency if lo <= t <= hi]
            throughput = [(s, r) for s, r in throughput if lo // 1000 <= s <= hi // 1000]
        data.latency_ms = latency_ms if latency_ms is not None else [v for _, v in latency]
        data.throughput = throughput
    return data
