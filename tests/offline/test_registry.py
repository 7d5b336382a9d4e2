"""MLflow tracking and registry on a real sqlite store: contract tags, gates, aliases, CLI.

One store per module: v1 (good, becomes champion), v2 (trained on shuffled labels,
blocked by the gates), v3 (good, another seed, becomes challenger).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from offline import registry
from offline.pipeline import PipelineFailed, PipelineReport, run_pipeline, train_and_register
from offline.tables import FEATURES, LABELS, table_uri
from offline.train import TrainConfig
from offline.training_set import TrainingSet
from skewless.cli import app
from tests.offline.delta_factory import LabelRow, append_features, append_labels
from tests.offline.synthetic import synthetic_training_set

NAME = registry.DEFAULT_MODEL_NAME
CONFIG = TrainConfig(epochs=4)


@dataclass(frozen=True)
class Store:
    uri: str
    artifacts: Path


@dataclass(frozen=True)
class History:
    ts: TrainingSet
    champion: PipelineReport
    blocked: PipelineReport
    challenger: PipelineReport


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("mlflow")
    return Store(uri=f"sqlite:///{root}/mlflow.db", artifacts=root / "artifacts")


def _shuffled_history(ts: TrainingSet) -> TrainingSet:
    """Train/val labels shuffled (no signal left); the test split is untouched."""
    y = ts.y.copy()
    seen = ~ts.mask("test")
    y[seen] = np.random.default_rng(0).permutation(y[seen])
    return dataclasses.replace(ts, y=y)


@pytest.fixture(scope="module")
def history(store: Store) -> History:
    ts = synthetic_training_set(3_000, seed=5)

    def register(data: TrainingSet, config: TrainConfig) -> PipelineReport:
        return train_and_register(
            data, tracking_uri=store.uri, artifact_root=store.artifacts, config=config
        )

    return History(
        ts=ts,
        champion=register(ts, CONFIG),
        blocked=register(_shuffled_history(ts), CONFIG),
        challenger=register(ts, dataclasses.replace(CONFIG, seed=11)),
    )


def test_first_model_becomes_champion_with_the_contract_tags(
    store: Store, history: History
) -> None:
    assert (history.champion.version, history.champion.alias) == (1, registry.CHAMPION)
    info = registry.get_version(store.uri, "champion")
    tags = info.tags
    assert info.version == 1
    assert info.aliases == ("champion",)
    assert tags["onnx_sha256"] == history.champion.onnx_sha256
    assert float(tags["decision_threshold"]) == history.champion.thresholds.decision
    assert float(tags["review_threshold"]) == history.champion.thresholds.review
    assert float(tags["review_threshold"]) <= float(tags["decision_threshold"])
    assert tags["definition_version"] == history.ts.definition_version
    assert json.loads(tags["data_version"]) == {"features": 8, "labels": 1}
    assert json.loads(tags["feature_names"]) == list(history.ts.feature_names)
    assert tags["run_id"] == history.champion.run_id
    assert tags["reference_artifact"] == "extra_files/reference.json"
    assert tags["gate_status"] == "passed"
    model_tags = MlflowClient(store.uri, store.uri).get_registered_model(NAME).tags
    assert model_tags["rollout_mode"] == "champion"
    assert model_tags["canary_percent"] == "0"


def test_the_sha256_tag_matches_the_downloaded_model_onnx(
    store: Store, history: History, tmp_path: Path
) -> None:
    local = registry.download_model(store.uri, f"models:/{NAME}@champion", tmp_path)
    data = (local / "model.onnx").read_bytes()
    assert hashlib.sha256(data).hexdigest() == history.champion.onnx_sha256
    assert not list(local.glob("model.onnx.*"))  # no external data files
    reference = json.loads((local / registry.REFERENCE_IN_MODEL).read_text())
    assert set(reference["features"]) == set(history.ts.feature_names)
    assert reference["score"]["edges"][-1] == float("inf")
    assert registry.verify_version(store.uri, 1) == history.champion.onnx_sha256


def test_the_run_carries_params_metrics_lineage_and_artifacts(
    store: Store, history: History
) -> None:
    client = MlflowClient(store.uri, store.uri)
    run = client.get_run(history.champion.run_id)
    assert run.data.params["seed"] == "7"
    assert run.data.params["hidden"] == "[64, 32]"
    metrics = run.data.metrics
    assert metrics["test_pr_auc"] == pytest.approx(history.champion.model.pr_auc)
    assert metrics["baseline_pr_auc"] == pytest.approx(history.champion.baseline.pr_auc)
    assert metrics["parity_max_abs_diff"] <= 1e-5
    tags = run.data.tags
    assert tags["git_commit"] == "unknown" or len(tags["git_commit"]) == 40
    assert json.loads(tags["data_version"]) == {"features": 8, "labels": 1}
    assert tags["definition_version"] == history.ts.definition_version
    assert tags["training_set_fingerprint"] == history.ts.fingerprint()
    assert [tags[f"rows_{s}"] for s in ("train", "val", "test")] == ["2100", "450", "450"]
    listed = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"reference", "curves", "model_card.json", "model_card.md"} <= listed
    curves = {a.path for a in client.list_artifacts(run.info.run_id, "curves")}
    assert curves == {"curves/roc.png", "curves/pr.png", "curves/curves.json"}
    card = json.loads(
        Path(client.download_artifacts(run.info.run_id, "model_card.json")).read_text()
    )
    assert card["model"]["pr_auc"] == pytest.approx(history.champion.model.pr_auc)
    assert card["lineage"]["training_set_fingerprint"] == history.ts.fingerprint()


def test_a_worse_candidate_is_registered_but_gets_no_alias(store: Store, history: History) -> None:
    blocked = history.blocked
    assert blocked.version == 2
    assert blocked.alias is None
    assert blocked.champion is not None
    assert blocked.champion.pr_auc == pytest.approx(history.champion.model.pr_auc)
    failed = {f.gate: f for f in blocked.gates.failures}
    assert "pr_auc_vs_champion" in failed
    assert failed["pr_auc_vs_champion"].got == f"{blocked.model.pr_auc:.4f}"
    assert f"champion {history.champion.model.pr_auc:.4f}" in failed["pr_auc_vs_champion"].expected
    info = registry.get_version(store.uri, "2")
    assert info.aliases == ()
    assert info.tags["gate_status"] == "failed"
    assert "pr_auc_vs_champion" in info.tags["gate_report"]


def test_a_passing_candidate_becomes_challenger(store: Store, history: History) -> None:
    assert (history.challenger.version, history.challenger.alias) == (3, registry.CHALLENGER)
    assert history.challenger.gates.passed
    assert history.challenger.gates.has_champion
    assert registry.get_version(store.uri, "@challenger").version == 3


def test_list_and_show_report_aliases_sha_data_version_and_metrics(
    store: Store, history: History, tmp_path: Path
) -> None:
    versions = registry.list_versions(store.uri)
    assert [(v.version, v.aliases) for v in versions] == [
        (3, ("challenger",)),
        (2, ()),
        (1, ("champion",)),
    ]
    runner = CliRunner()
    env = {"SKEWLESS_MLFLOW_URI": store.uri}
    out = tmp_path / "list.json"
    result = runner.invoke(app, ["models", "list", "--json", str(out)], env=env)
    assert result.exit_code == 0, result.output
    listed = json.loads(out.read_text())["versions"]
    assert listed[2]["aliases"] == ["champion"]
    assert listed[2]["onnx_sha256"] == history.champion.onnx_sha256
    assert listed[2]["data_version"] == {"features": 8, "labels": 1}
    assert listed[2]["metrics"]["test_pr_auc"] == pytest.approx(history.champion.model.pr_auc)
    result = runner.invoke(app, ["models", "show", "champion", "--json", "-"], env=env)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["version"], shown["aliases"]) == (1, ["champion"])
    assert shown["feature_names"] == list(history.ts.feature_names)


def test_promote_and_rollback_move_the_aliases(store: Store, history: History) -> None:
    client = MlflowClient(store.uri, store.uri)
    change = registry.promote(store.uri)
    assert (change.champion, change.previous) == (3, 1)
    model = client.get_registered_model(NAME)
    assert {k: int(v) for k, v in model.aliases.items()} == {"champion": 3}
    assert model.tags["previous_champion"] == "1"
    with pytest.raises(registry.RegistryError, match=r"no 'challenger' to promote"):
        registry.promote(store.uri)
    change = registry.rollback(store.uri)
    assert (change.champion, change.previous) == (1, 3)
    model = client.get_registered_model(NAME)
    assert {k: int(v) for k, v in model.aliases.items()} == {"champion": 1}
    assert "previous_champion" not in model.tags
    with pytest.raises(registry.RegistryError, match=r"no previous champion"):
        registry.rollback(store.uri)
    registry.assign_alias(store.uri, 3, registry.CHALLENGER)  # as the fixture left it


def test_a_tampered_model_file_fails_verification(store: Store, history: History) -> None:
    stored = [
        p
        for p in store.artifacts.rglob("model.onnx")
        if hashlib.sha256(p.read_bytes()).hexdigest() == history.blocked.onnx_sha256
    ]
    assert stored
    original = stored[0].read_bytes()
    try:
        stored[0].write_bytes(original + b"\x00")
        with pytest.raises(registry.IntegrityError, match=r"models:/skewless-fraud/2: stored"):
            registry.verify_version(store.uri, 2)
    finally:
        stored[0].write_bytes(original)


@pytest.fixture
def delta_root(tmp_path: Path) -> Path:
    """Delta features and labels written from the synthetic set (labels a day later)."""
    ts = synthetic_training_set(2_000, seed=6)
    root = tmp_path / "delta"
    times = [int(t) for t in ts.event_time]
    ids = [str(e) for e in ts.event_id]
    append_features(Path(table_uri(str(root), FEATURES)), times, ids=ids, values=ts.x)
    rows = [
        LabelRow(ids[i], True, times[i] + 86_400_000, source_offset=k)
        for k, i in enumerate(np.flatnonzero(ts.y == 1))
    ]
    append_labels(Path(table_uri(str(root), LABELS)), rows)
    return root


def test_run_pipeline_from_delta_validates_then_registers(store: Store, delta_root: Path) -> None:
    report = run_pipeline(
        str(delta_root),
        tracking_uri=store.uri,
        artifact_root=store.artifacts,
        config=CONFIG,
        name="pipeline-e2e",
        experiment="pipeline-e2e",
    )
    assert (report.version, report.alias) == (1, "champion")
    assert report.validation is not None
    assert report.validation["ok"]
    assert report.model.pr_auc > report.baseline.pr_auc * 0.8
    assert registry.verify_version(store.uri, 1, name="pipeline-e2e") == report.onnx_sha256


def test_failed_validation_trains_nothing(store: Store, delta_root: Path) -> None:
    cutoff = 1_700_000_000_000 + 3 * 86_400_000  # 7d maturity leaves no matured rows
    with pytest.raises(PipelineFailed, match=r"nothing trained") as caught:
        run_pipeline(
            str(delta_root),
            tracking_uri=store.uri,
            artifact_root=store.artifacts,
            cutoff_ms=cutoff,
            config=CONFIG,
            name="never-trained",
            experiment="never-trained",
        )
    assert not caught.value.report.ok
    assert registry.find_alias(store.uri, "champion", name="never-trained") is None
    assert MlflowClient(store.uri, store.uri).get_experiment_by_name("never-trained") is None
