"""MLflow tracking and the model registry: log a training run, register, gate, promote.

Every function takes the tracking URI as an argument (the registry lives in the same
store); nothing here reads the environment. Importing this module is cheap: mlflow, onnx
and torch are imported by the functions that need them.

Registry contract (the serving runtime relies on it exactly)
-----------------------------------------------------------
- Registered model `skewless-fraud` (parameter `name`). Aliases `champion` and
  `challenger`.
- `models:/<name>/<version>` and `models:/<name>@<alias>` download as a directory with
  `model.onnx` (a single file, no external data: input `features` float32 [batch, d],
  output `score` float32 [batch]) and the drift reference `extra_files/reference.json`
  (format in `offline.reference`; the same file is the run artifact
  `reference/reference.json`).
- Model version tags:
  `onnx_sha256` (hex sha256 of those `model.onnx` bytes, verified after registering by
  downloading the version), `decision_threshold` (decline, float as str),
  `review_threshold` (float as str), `definition_version`, `data_version` (JSON
  `{"features": n, "labels": m}`), `feature_names` (JSON list, the input column order),
  `run_id`, `reference_artifact` (`extra_files/reference.json`, relative to the model
  directory), `gate_status` (`passed` | `failed`) and `gate_report` (JSON).
- Registered-model tags: `rollout_mode` ∈ {`champion`, `shadow`, `canary`} (default
  `champion`) and `canary_percent` (default `"0"`) — set only when absent, owned by the
  operator afterwards; `promote` and `rollback` reset them to `champion`/`"0"` (there is
  no challenger left to route to). `previous_champion` (a version number) is written by
  `promote` and consumed by `rollback`.
- Metrics (model `test_*`, `baseline_*`, `champion_*`, `val_*`) are on the run.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offline.errors import OfflineError

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "DEFAULT_EXPERIMENT",
    "DEFAULT_MODEL_NAME",
    "ONNX_FILE",
    "REFERENCE_IN_MODEL",
    "AliasChange",
    "IntegrityError",
    "LoggedRun",
    "ModelVersionInfo",
    "RegistryError",
    "RunPayload",
    "assign_alias",
    "download_model",
    "find_alias",
    "get_version",
    "list_versions",
    "log_run",
    "promote",
    "register_version",
    "rollback",
    "set_rollout",
    "verify_version",
]

DEFAULT_MODEL_NAME = "skewless-fraud"
DEFAULT_EXPERIMENT = "skewless-fraud"
CHAMPION = "champion"
CHALLENGER = "challenger"
ONNX_FILE = "model.onnx"
REFERENCE_IN_MODEL = "extra_files/reference.json"
_ROLLOUT_DEFAULTS = {"rollout_mode": "champion", "canary_percent": "0"}


class RegistryError(OfflineError):
    """The tracking store or registry refused, or holds no such model, version or alias."""


class IntegrityError(RegistryError):
    """A stored `model.onnx` does not hash to its version's `onnx_sha256` tag."""


@dataclass(frozen=True, slots=True)
class RunPayload:
    """Everything one training run logs; `files` are `(artifact dir, local file)` pairs."""

    onnx_bytes: bytes
    feature_names: tuple[str, ...]
    reference_text: str
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    files: Sequence[tuple[str, Path]] = ()
    texts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoggedRun:
    """A logged run and its ONNX model (`model_uri` is what gets registered)."""

    run_id: str
    model_uri: str
    onnx_sha256: str


@dataclass(frozen=True, slots=True)
class ModelVersionInfo:
    """A registered version as `skewless models list|show` reports it."""

    name: str
    version: int
    aliases: tuple[str, ...]
    run_id: str
    tags: Mapping[str, str]
    metrics: Mapping[str, float]
    created_ms: int

    @property
    def onnx_sha256(self) -> str:
        return self.tags.get("onnx_sha256", "")

    def to_json(self) -> dict[str, Any]:
        tags = dict(self.tags)
        decoded: dict[str, Any] = {}
        for key in ("data_version", "feature_names", "gate_report"):
            if key in tags:
                decoded[key] = json.loads(tags.pop(key))
        return {
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "run_id": self.run_id,
            "onnx_sha256": self.onnx_sha256,
            "created_ms": self.created_ms,
            "metrics": dict(sorted(self.metrics.items())),
            **decoded,
            "tags": dict(sorted(tags.items())),
        }


@dataclass(frozen=True, slots=True)
class AliasChange:
    """What `promote` or `rollback` did to the `champion` alias."""

    name: str
    champion: int
    previous: int | None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


@contextmanager
def _fluent(tracking_uri: str) -> Iterator[Any]:
    """The fluent API (`log_model` needs it) pointed at `tracking_uri`, restored after."""
    import mlflow
    import mlflow.artifacts
    import mlflow.onnx

    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield mlflow
    finally:
        mlflow.set_tracking_uri(tracking)
        mlflow.set_registry_uri(registry)


def _experiment_id(client: Any, name: str, artifact_root: Path | None) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = artifact_root.resolve().as_uri() if artifact_root is not None else None
        return str(client.create_experiment(name, artifact_location=location))
    if experiment.lifecycle_stage != "active":
        msg = f"MLflow experiment {name!r} is deleted; restore it or choose another name"
        raise RegistryError(msg)
    return str(experiment.experiment_id)


def log_run(
    tracking_uri: str,
    payload: RunPayload,
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    artifact_root: Path | None = None,
    run_name: str | None = None,
) -> LoggedRun:
    """Log params, metrics, tags, the ONNX model (with its reference) and files as one run.

    `artifact_root` is where a new experiment stores artifacts (a local store needs one;
    a tracking server decides for itself when it is None).
    """
    import numpy as np
    import onnx
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    from offline.onnx_export import INPUT_NAME, OUTPUT_NAME

    client = _client(tracking_uri)
    experiment_id = _experiment_id(client, experiment, artifact_root)
    d = len(payload.feature_names)
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, d), INPUT_NAME)]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1,), OUTPUT_NAME)]),
    )
    with _fluent(tracking_uri) as mlflow, tempfile.TemporaryDirectory() as tmp:
        reference = Path(tmp) / "reference.json"
        reference.write_text(payload.reference_text)
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
            mlflow.log_params(dict(payload.params))
            mlflow.log_metrics(dict(payload.metrics))
            mlflow.set_tags(dict(payload.tags))
            info = mlflow.onnx.log_model(
                onnx.load_from_string(payload.onnx_bytes),
                name="model",
                signature=signature,
                save_as_external_data=False,
                extra_files=[str(reference)],
            )
            mlflow.log_text(payload.reference_text, "reference/reference.json")
            for artifact_dir, path in payload.files:
                mlflow.log_artifact(str(path), artifact_path=artifact_dir)
            for artifact_file, text in payload.texts.items():
                mlflow.log_text(text, artifact_file)
            run_id = str(run.info.run_id)
    return LoggedRun(run_id, str(info.model_uri), _sha256(payload.onnx_bytes))


def download_model(tracking_uri: str, uri: str, dst: Path) -> Path:
    """Download a `models:/...` URI into `dst`; the directory that holds `model.onnx`."""
    # `models:/` resolution reads the global registry URI whatever is passed: set it too.
    try:
        with _fluent(tracking_uri) as mlflow:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=uri,
                    dst_path=str(dst),
                    tracking_uri=tracking_uri,
                    registry_uri=tracking_uri,
                )
            )
    except Exception as exc:
        msg = f"could not download {uri!r} from {tracking_uri!r}: {exc}"
        raise RegistryError(msg) from exc
    if not (local / ONNX_FILE).is_file():
        msg = f"{uri!r} has no {ONNX_FILE}; files: {sorted(p.name for p in local.iterdir())}"
        raise RegistryError(msg)
    return local


def verify_version(tracking_uri: str, version: int, *, name: str = DEFAULT_MODEL_NAME) -> str:
    """Download a version and check it against the contract; returns its sha256.

    `IntegrityError` when `model.onnx` does not hash to the `onnx_sha256` tag, when ONNX
    external data files sit next to it, or when the reference file is missing.
    """
    info = _info(_client(tracking_uri), name, version)
    uri = f"models:/{name}/{version}"
    with tempfile.TemporaryDirectory() as tmp:
        local = download_model(tracking_uri, uri, Path(tmp))
        got = _sha256((local / ONNX_FILE).read_bytes())
        stray = sorted(p.name for p in local.iterdir() if p.name.startswith(f"{ONNX_FILE}."))
        has_reference = (local / REFERENCE_IN_MODEL).is_file()
    if got != info.onnx_sha256 or stray or not has_reference:
        msg = (
            f"{uri}: stored {ONNX_FILE} sha256 {got} (tag onnx_sha256 {info.onnx_sha256!r}); "
            f"external data files {stray} (expected none); "
            f"{REFERENCE_IN_MODEL} present: {has_reference} (expected True)"
        )
        raise IntegrityError(msg)
    return got


def register_version(
    tracking_uri: str,
    logged: LoggedRun,
    *,
    name: str = DEFAULT_MODEL_NAME,
    tags: Mapping[str, str],
) -> ModelVersionInfo:
    """Register the run's model with the contract's tags, then verify it by downloading.

    A version whose download does not hash to `onnx_sha256` is deleted again and raises
    `IntegrityError`.
    """
    client = _client(tracking_uri)
    version_tags = {
        **tags,
        "onnx_sha256": logged.onnx_sha256,
        "run_id": logged.run_id,
        "reference_artifact": REFERENCE_IN_MODEL,
    }
    with _fluent(tracking_uri) as mlflow:
        registered = mlflow.register_model(logged.model_uri, name, tags=version_tags)
    version = int(registered.version)
    current = client.get_registered_model(name).tags
    for key, value in _ROLLOUT_DEFAULTS.items():
        if key not in current:
            client.set_registered_model_tag(name, key, value)
    try:
        verify_version(tracking_uri, version, name=name)
    except IntegrityError:
        client.delete_model_version(name, str(version))
        raise
    return _info(client, name, version)


def _aliases(client: Any, name: str) -> dict[str, int]:
    try:
        model = client.get_registered_model(name)
    except Exception as exc:
        msg = f"registered model {name!r} not found: {exc}"
        raise RegistryError(msg) from exc
    return {alias: int(version) for alias, version in (model.aliases or {}).items()}


def _info(
    client: Any, name: str, version: int, aliases: Mapping[str, int] | None = None
) -> ModelVersionInfo:
    try:
        mv = client.get_model_version(name, str(version))
    except Exception as exc:
        msg = f"model {name!r} has no version {version}: {exc}"
        raise RegistryError(msg) from exc
    aliases = _aliases(client, name) if aliases is None else aliases
    metrics: dict[str, float] = {}
    if mv.run_id:
        metrics = dict(client.get_run(mv.run_id).data.metrics)
    return ModelVersionInfo(
        name=name,
        version=version,
        aliases=tuple(sorted(a for a, v in aliases.items() if v == version)),
        run_id=str(mv.run_id or ""),
        tags=dict(mv.tags or {}),
        metrics=metrics,
        created_ms=int(mv.creation_timestamp or 0),
    )


def list_versions(tracking_uri: str, name: str = DEFAULT_MODEL_NAME) -> list[ModelVersionInfo]:
    """Every version of `name`, newest first, with aliases, tags and run metrics."""
    client = _client(tracking_uri)
    aliases = _aliases(client, name)
    found = client.search_model_versions(f"name = '{name}'")
    versions = sorted((int(mv.version) for mv in found), reverse=True)
    return [_info(client, name, v, aliases) for v in versions]


def get_version(tracking_uri: str, ref: str, *, name: str = DEFAULT_MODEL_NAME) -> ModelVersionInfo:
    """One version by number (`"3"`) or alias (`"champion"`, `"@champion"`)."""
    client = _client(tracking_uri)
    aliases = _aliases(client, name)
    key = ref.removeprefix("@")
    if key.isdigit():
        return _info(client, name, int(key), aliases)
    if key not in aliases:
        msg = f"model {name!r} has no alias {key!r}; aliases: {aliases or 'none'}"
        raise RegistryError(msg)
    return _info(client, name, aliases[key], aliases)


def find_alias(
    tracking_uri: str, alias: str, *, name: str = DEFAULT_MODEL_NAME
) -> ModelVersionInfo | None:
    """The version `alias` points at; None when the model or the alias does not exist."""
    client = _client(tracking_uri)
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        return None
    aliases = _aliases(client, name)
    return _info(client, name, aliases[alias], aliases) if alias in aliases else None


def assign_alias(
    tracking_uri: str, version: int, alias: str, *, name: str = DEFAULT_MODEL_NAME
) -> None:
    """Point `alias` at `version` (moving it off any other version)."""
    _client(tracking_uri).set_registered_model_alias(name, alias, str(version))


def _reset_rollout(client: Any, name: str) -> None:
    for key, value in _ROLLOUT_DEFAULTS.items():
        client.set_registered_model_tag(name, key, value)


def set_rollout(
    tracking_uri: str, *, mode: str, canary_percent: float, name: str = DEFAULT_MODEL_NAME
) -> None:
    """Set how champion and challenger share traffic; scoring workers follow within a poll."""
    client = _client(tracking_uri)
    client.set_registered_model_tag(name, "rollout_mode", mode)
    client.set_registered_model_tag(name, "canary_percent", repr(float(canary_percent)))


def promote(tracking_uri: str, *, name: str = DEFAULT_MODEL_NAME) -> AliasChange:
    """Move `champion` to the current challenger; remember the old champion for rollback."""
    client = _client(tracking_uri)
    aliases = _aliases(client, name)
    if CHALLENGER not in aliases:
        msg = f"model {name!r} has no {CHALLENGER!r} to promote; aliases: {aliases or 'none'}"
        raise RegistryError(msg)
    new, previous = aliases[CHALLENGER], aliases.get(CHAMPION)
    if previous is not None:
        client.set_registered_model_tag(name, "previous_champion", str(previous))
    client.set_registered_model_alias(name, CHAMPION, str(new))
    client.delete_registered_model_alias(name, CHALLENGER)
    _reset_rollout(client, name)
    return AliasChange(name=name, champion=new, previous=previous)


def rollback(tracking_uri: str, *, name: str = DEFAULT_MODEL_NAME) -> AliasChange:
    """Move `champion` back to the version `promote` replaced (one step)."""
    client = _client(tracking_uri)
    aliases = _aliases(client, name)
    tags = client.get_registered_model(name).tags or {}
    if "previous_champion" not in tags:
        msg = (
            f"model {name!r} has no previous champion to roll back to (tag "
            f"'previous_champion' is unset; champion is {aliases.get(CHAMPION)})"
        )
        raise RegistryError(msg)
    target, current = int(tags["previous_champion"]), aliases.get(CHAMPION)
    _info(client, name, target, aliases)  # the version must still exist
    client.set_registered_model_alias(name, CHAMPION, str(target))
    client.delete_registered_model_tag(name, "previous_champion")
    if current is not None:
        client.set_registered_model_tag(name, "rolled_back_from", str(current))
    _reset_rollout(client, name)
    return AliasChange(name=name, champion=target, previous=current)
