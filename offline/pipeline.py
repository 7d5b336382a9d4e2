"""Validate → train → export → parity → evaluate → log → register → gate, as one call.

`run_pipeline` builds the training set from pinned Delta versions and validates it (a
failed validation raises `ValidationFailed` carrying the report: nothing is trained);
`train_and_register` does the rest on a given training set. The CLI (`skewless train`),
the demo and retraining all call these, so every model gets the same lineage, metrics,
artifacts and gates.

Metrics are computed on the served artifact (onnxruntime scores of the exported bytes),
on the time-ordered test split; thresholds are chosen on the validation split. The
current champion, if any, is re-scored from its registered (sha256-verified) ONNX file on
the same test rows, so the gates compare like with like.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from offline.delta_reader import current_versions
from offline.errors import ValidationFailed
from offline.evaluate import (
    BASELINE_RULES,
    Metrics,
    Thresholds,
    choose_thresholds,
    evaluate,
    rules_baseline,
    save_curves,
)
from offline.gates import GateConfig, GateReport, run_gates
from offline.model_card import model_card_markdown
from offline.onnx_export import (
    ParityReport,
    check_parity,
    export_onnx,
    onnx_scores,
    onnx_session,
    onnx_sha256,
)
from offline.reference import reference_bins, reference_json
from offline.registry import (
    CHALLENGER,
    CHAMPION,
    DEFAULT_EXPERIMENT,
    DEFAULT_MODEL_NAME,
    ONNX_FILE,
    IntegrityError,
    ModelVersionInfo,
    RunPayload,
    assign_alias,
    download_model,
    find_alias,
    log_run,
    register_version,
)
from offline.tables import FEATURES, LABELS
from offline.train import TrainConfig, train_model
from offline.training_set import TrainingSet, build_training_set, data_end_ms
from offline.validation import ValidationConfig, validate_training_set
from offline.validation_report import ValidationReport
from schemas.features import FeatureSet
from schemas.features.fraud import FRAUD_FEATURES

__all__ = [
    "PipelineFailed",
    "PipelineReport",
    "ThresholdPolicy",
    "git_commit",
    "run_pipeline",
    "train_and_register",
]


class PipelineFailed(ValidationFailed):
    """Validation failed: `report` holds every check; nothing was trained."""

    def __init__(self, message: str, report: ValidationReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True, slots=True)
class ThresholdPolicy:
    """How decision thresholds are chosen on the validation split."""

    decline_precision: float = 0.8
    review_fpr: float = 0.01


@dataclass(frozen=True, slots=True)
class PipelineReport:
    """What one pipeline run produced, registered and decided; `card` is the model card."""

    name: str
    version: int
    alias: str | None
    run_id: str
    onnx_sha256: str
    model: Metrics
    baseline: Metrics
    champion: Metrics | None
    thresholds: Thresholds
    parity: ParityReport
    gates: GateReport
    card: Mapping[str, Any]
    validation: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "run_id": self.run_id,
            "onnx_sha256": self.onnx_sha256,
            **self.card,
            "validation": self.validation,
        }


def git_commit() -> str:
    """`git rev-parse HEAD` of the checkout this code runs from, else `"unknown"`."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"


def _champion_scores(
    tracking_uri: str, name: str, x: npt.NDArray[Any]
) -> tuple[ModelVersionInfo | None, npt.NDArray[np.float32] | None]:
    """The champion and its scores on `x` (None when its features differ from `x`'s)."""
    champion = find_alias(tracking_uri, CHAMPION, name=name)
    if champion is None:
        return None, None
    features = json.loads(champion.tags.get("feature_names", "[]"))
    if len(features) != x.shape[1]:
        return champion, None
    with tempfile.TemporaryDirectory() as tmp:
        local = download_model(tracking_uri, f"models:/{name}/{champion.version}", Path(tmp))
        data = (local / ONNX_FILE).read_bytes()
    if onnx_sha256(data) != champion.onnx_sha256:
        msg = (
            f"champion {name} v{champion.version}: {ONNX_FILE} sha256 {onnx_sha256(data)} "
            f"does not match its tag {champion.onnx_sha256}"
        )
        raise IntegrityError(msg)
    return champion, onnx_scores(data, x)


def _decision_on_test(
    scores: npt.NDArray[Any], y: npt.NDArray[Any], thresholds: Thresholds
) -> dict[str, float]:
    declined = scores >= thresholds.decision
    caught = float((declined & (y == 1)).sum())
    return {
        "precision": caught / max(float(declined.sum()), 1.0),
        "recall": caught / max(float((y == 1).sum()), 1.0),
        "decline_rate": float(declined.mean()),
        "review_rate": float(((scores >= thresholds.review) & ~declined).mean()),
    }


def _metrics(prefix: str, metrics: Metrics | None) -> dict[str, float]:
    if metrics is None:
        return {}
    return {f"{prefix}_{k}": float(v) for k, v in metrics.to_json().items()}


def train_and_register(
    ts: TrainingSet,
    *,
    tracking_uri: str,
    artifact_root: Path | None = None,
    config: TrainConfig | None = None,
    gates: GateConfig | None = None,
    policy: ThresholdPolicy | None = None,
    name: str = DEFAULT_MODEL_NAME,
    experiment: str = DEFAULT_EXPERIMENT,
) -> PipelineReport:
    """Train on `ts` (already validated), then export, evaluate, log, register and gate.

    `config`, `gates` and `policy` default to `TrainConfig()`, `GateConfig()` and
    `ThresholdPolicy()`.
    """
    config, gates, policy = (
        config or TrainConfig(),
        gates or GateConfig(),
        policy or ThresholdPolicy(),
    )
    names = ts.feature_names
    x_train, _ = ts.part("train")
    x_val, y_val = ts.part("val")
    x_test, y_test = ts.part("test")
    trained = train_model(ts, config=config)
    data = export_onnx(
        trained.model, names, metadata={"skewless.definition_version": ts.definition_version}
    )
    parity = check_parity(trained.model, data, x_test, tolerance=gates.max_parity_diff)
    session = onnx_session(data)
    test_scores = onnx_scores(session, x_test)
    model = evaluate(test_scores, y_test)
    baseline_scores = rules_baseline(x_test, names)
    baseline = evaluate(baseline_scores, y_test)
    thresholds = choose_thresholds(
        onnx_scores(session, x_val),
        y_val,
        decline_precision=policy.decline_precision,
        review_fpr=policy.review_fpr,
    )
    champ_info, champ_scores = _champion_scores(tracking_uri, name, x_test)
    champion = None if champ_scores is None else evaluate(champ_scores, y_test)
    report_gates = run_gates(
        model,
        baseline=baseline,
        parity=parity,
        champion=champion,
        champion_features=None
        if champ_info is None
        else json.loads(champ_info.tags.get("feature_names", "[]")),
        candidate_features=names,
        config=gates,
    )
    reference = reference_bins(x_train, onnx_scores(session, x_train), names)
    summary = ts.summary()
    lineage = {
        "git_commit": git_commit(),
        "data_version": ts.data_version.to_json(),
        "definition_version": ts.definition_version,
        "training_set_fingerprint": ts.fingerprint(),
    }
    training = {
        "best_epoch": trained.best_epoch,
        "epochs_run": len(trained.history),
        "pos_weight": trained.pos_weight,
        "monitor": trained.monitor,
        "config": config.to_params(),
    }
    card: dict[str, Any] = {
        "model": model.to_json(),
        "baseline": baseline.to_json(),
        "champion": None if champion is None else champion.to_json(),
        "champion_version": None if champ_info is None else champ_info.version,
        "thresholds": thresholds.to_json(),
        "decision_on_test": _decision_on_test(test_scores, y_test, thresholds),
        "parity": parity.to_json(),
        "gates": report_gates.to_json(),
        "training": training,
        "data": summary,
        "lineage": lineage,
        "baseline_rules": [rule.describe() for rule in BASELINE_RULES],
    }
    curves = {"model": test_scores, "rules baseline": baseline_scores}
    if champ_scores is not None and champ_info is not None:
        curves[f"champion v{champ_info.version}"] = champ_scores
    with tempfile.TemporaryDirectory() as tmp:
        paths = save_curves(y_test, curves, Path(tmp))
        logged = log_run(
            tracking_uri,
            RunPayload(
                onnx_bytes=data,
                feature_names=names,
                reference_text=reference_json(reference),
                params={**config.to_params(), **gates.to_params(), **_policy_params(policy)},
                metrics={
                    **_metrics("test", model),
                    **_metrics("baseline", baseline),
                    **_metrics("champion", champion),
                    "val_pr_auc": trained.history[trained.best_epoch - 1].val_pr_auc,
                    "parity_max_abs_diff": parity.max_abs_diff,
                    "decision_threshold": thresholds.decision,
                    "review_threshold": thresholds.review,
                    "best_epoch": float(trained.best_epoch),
                },
                tags={
                    **lineage,
                    **{f"rows_{k}": str(v) for k, v in summary["counts"].items()},
                    "cutoff_ms": str(ts.cutoff_ms),
                    "maturity_ms": str(ts.maturity_ms),
                    "gate_status": "passed" if report_gates.passed else "failed",
                },
                files=[("curves", paths[k]) for k in ("roc", "pr", "points")],
                texts={
                    "model_card.json": json.dumps(card, indent=2, sort_keys=True),
                    "model_card.md": model_card_markdown(card),
                },
            ),
            experiment=experiment,
            artifact_root=artifact_root,
        )
    version = register_version(
        tracking_uri,
        logged,
        name=name,
        tags={
            "decision_threshold": repr(thresholds.decision),
            "review_threshold": repr(thresholds.review),
            "definition_version": ts.definition_version,
            "data_version": ts.data_version.to_json(),
            "feature_names": json.dumps(list(names)),
            "gate_status": "passed" if report_gates.passed else "failed",
            "gate_report": json.dumps(report_gates.to_json(), sort_keys=True),
        },
    )
    alias = None
    if report_gates.passed:
        alias = CHALLENGER if report_gates.has_champion else CHAMPION
        assign_alias(tracking_uri, version.version, alias, name=name)
    return PipelineReport(
        name=name,
        version=version.version,
        alias=alias,
        run_id=logged.run_id,
        onnx_sha256=logged.onnx_sha256,
        model=model,
        baseline=baseline,
        champion=champion,
        thresholds=thresholds,
        parity=parity,
        gates=report_gates,
        card=card,
    )


def _policy_params(policy: ThresholdPolicy) -> dict[str, str]:
    return {
        "decline_precision": str(policy.decline_precision),
        "review_fpr": str(policy.review_fpr),
    }


def run_pipeline(
    delta_root: str,
    *,
    tracking_uri: str,
    artifact_root: Path | None = None,
    cutoff_ms: int | None = None,
    maturity: timedelta = timedelta(days=7),
    burn_in: timedelta | None = None,
    feature_set: FeatureSet = FRAUD_FEATURES,
    storage_options: Mapping[str, str] | None = None,
    validation: ValidationConfig | None = None,
    config: TrainConfig | None = None,
    gates: GateConfig | None = None,
    policy: ThresholdPolicy | None = None,
    name: str = DEFAULT_MODEL_NAME,
    experiment: str = DEFAULT_EXPERIMENT,
) -> PipelineReport:
    """Build the training set (cutoff: the data's newest time), validate it, then train.

    `burn_in` as in `build_training_set` (default: the definition's longest window).

    Raises `PipelineFailed` (a `ValidationFailed`) with the report when validation fails.
    """
    versions = current_versions(delta_root, (FEATURES, LABELS), storage_options=storage_options)
    if cutoff_ms is None:
        cutoff_ms = data_end_ms(delta_root, versions, storage_options=storage_options)
    ts = build_training_set(
        delta_root,
        cutoff_ms=cutoff_ms,
        maturity=maturity,
        feature_set=feature_set,
        versions=versions,
        storage_options=storage_options,
        burn_in=burn_in,
    )
    report = validate_training_set(ts, feature_set=feature_set, config=validation)
    if not report.ok:
        lines = "; ".join(check.message for check in report.failures)
        msg = f"{report.subject} failed {len(report.failures)} check(s), nothing trained: {lines}"
        raise PipelineFailed(msg, report)
    done = train_and_register(
        ts,
        tracking_uri=tracking_uri,
        artifact_root=artifact_root,
        config=config,
        gates=gates,
        policy=policy,
        name=name,
        experiment=experiment,
    )
    return replace(done, validation=report.to_dict())
