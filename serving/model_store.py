"""Resolve and load models from the MLflow registry, verified before any session exists.

The registry contract (written by `offline/registry.py`):

- registered model `skewless-fraud` (configurable), aliases `champion` and `challenger`;
- registered-model tags `rollout_mode` (champion | shadow | canary) and `canary_percent`;
- each version logged with `mlflow.onnx.log_model(..., name="model",
  save_as_external_data=False)` and tagged `onnx_sha256` (hex sha256 of `model.onnx`),
  `decision_threshold`, `review_threshold`, `feature_names` (JSON list),
  `definition_version`, `data_version` (JSON), `run_id`, and `reference_artifact`.

The drift reference is the first of: the `reference_artifact` path inside the model
directory (`offline.registry` logs `extra_files/reference.json`), `reference.json` or
`extra_files/reference.json` in it, else `reference_artifact` as an artifact path of the
version's run.

The store talks to the registry through `MlflowClient` with the URIs it is given; it never
reads the environment or MLflow's global state. Artifacts are downloaded to a temporary
directory that is removed once the verified bytes are in memory.

A model without a reference (and no `reference_artifact` tag) has `reference == {}`; a
declared reference that cannot be found or read is an error.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from serving.errors import ModelNotFound, ServingError
from serving.integrity import read_verified
from serving.routing import RolloutConfig
from serving.runtime import LoadedModel, Thresholds

__all__ = [
    "DEFAULT_MODEL_NAME",
    "MODEL_FILE",
    "REFERENCE_FILE",
    "ModelStore",
    "ModelVersionInfo",
    "RegistryState",
]

DEFAULT_MODEL_NAME = "skewless-fraud"
MODEL_FILE = "model.onnx"
REFERENCE_FILE = "reference.json"
_NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"


@dataclass(frozen=True, slots=True)
class RegistryState:
    """What the registry says should serve: alias → version, and the rollout tags."""

    aliases: Mapping[str, str]
    rollout: RolloutConfig


@dataclass(frozen=True, slots=True)
class ModelVersionInfo:
    """One registry model version: where its artifact is and its tags."""

    name: str
    version: str
    alias: str | None
    run_id: str
    download_uri: str
    tags: Mapping[str, str] = field(default_factory=dict)


class ModelStore:
    """The registry of one registered model, read through an explicit tracking URI."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        registry_uri: str | None = None,
        model_name: str = DEFAULT_MODEL_NAME,
        download_dir: Path | None = None,
        intra_op_threads: int = 1,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.model_name = model_name
        self._download_dir = download_dir
        self._intra_op_threads = intra_op_threads
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=self.registry_uri)

    def state(self) -> RegistryState:
        """The registered model's aliases and rollout configuration, in one registry call."""
        model = self._call(lambda: self._client.get_registered_model(self.model_name), "")
        aliases = {str(alias): str(version) for alias, version in (model.aliases or {}).items()}
        return RegistryState(aliases=aliases, rollout=RolloutConfig.from_tags(model.tags or {}))

    def resolve(self, alias_or_version: str) -> ModelVersionInfo:
        """The version an alias points at (or a version given as digits) and its tags."""
        if alias_or_version.isdigit():
            return self.version_info(alias_or_version)
        aliases = self.state().aliases
        if alias_or_version not in aliases:
            msg = (
                f"registered model {self.model_name!r} has no alias {alias_or_version!r}; "
                f"aliases: {sorted(aliases)}"
            )
            raise ModelNotFound(msg)
        return self.version_info(aliases[alias_or_version], alias=alias_or_version)

    def version_info(self, version: str, *, alias: str | None = None) -> ModelVersionInfo:
        """One version's tags and artifact location."""
        where = f" version {version!r}"
        mv = self._call(lambda: self._client.get_model_version(self.model_name, version), where)
        uri = self._call(
            lambda: self._client.get_model_version_download_uri(self.model_name, version), where
        )
        tags = {str(k): str(v) for k, v in (mv.tags or {}).items()}
        return ModelVersionInfo(
            name=self.model_name,
            version=str(mv.version),
            alias=alias,
            run_id=tags.get("run_id") or str(mv.run_id or ""),
            download_uri=str(uri),
            tags=tags,
        )

    def load(self, alias_or_version: str) -> LoadedModel:
        """Resolve, download, verify and open a model (see `load_info`)."""
        return self.load_info(self.resolve(alias_or_version))

    def load_info(self, info: ModelVersionInfo) -> LoadedModel:
        """Download `info`'s artifact, verify `model.onnx`, and build its session.

        Raises `ModelIntegrityError` when verification fails (nothing is executed) and
        `ServingError` for unusable tags or an unreadable artifact.
        """
        where = f"model {info.name!r} version {info.version!r}"
        feature_names = _feature_names(info.tags, where)
        thresholds = _thresholds(info.tags, where)
        with tempfile.TemporaryDirectory(prefix="skewless-model-", dir=self._download_dir) as tmp:
            root = self._download(info, Path(tmp) / "model")
            verified = read_verified(
                root / MODEL_FILE,
                expected_sha256=info.tags.get("onnx_sha256"),
                model=info.name,
                version=info.version,
            )
            reference = self._reference(info, root, Path(tmp) / "reference")
        return LoadedModel(
            verified,
            feature_names=feature_names,
            thresholds=thresholds,
            alias=info.alias,
            reference=reference,
            definition_version=info.tags.get("definition_version", ""),
            data_version=_json_object(info.tags, "data_version", where),
            run_id=info.run_id,
            intra_op_threads=self._intra_op_threads,
        )

    def _call(self, fetch: Callable[[], Any], where: str) -> Any:
        """`fetch()` with MLflow errors wrapped: `ModelNotFound` or `ServingError`."""
        try:
            return fetch()
        except MlflowException as exc:
            msg = f"registered model {self.model_name!r}{where} at {self.registry_uri!r}: {exc}"
            if exc.error_code == _NOT_FOUND:
                raise ModelNotFound(msg) from exc
            raise ServingError(msg) from exc

    def _download(self, info: ModelVersionInfo, dst: Path) -> Path:
        dst.mkdir(parents=True)
        try:
            # Imported here: `mlflow.artifacts` pulls in the artifact repositories.
            from mlflow.artifacts import download_artifacts

            path = download_artifacts(
                artifact_uri=info.download_uri,
                dst_path=str(dst),
                tracking_uri=self.tracking_uri,
                registry_uri=self.registry_uri,
            )
        except (MlflowException, OSError) as exc:
            msg = (
                f"model {info.name!r} version {info.version!r}: cannot download its artifact "
                f"from {info.download_uri!r}: {exc}"
            )
            raise ServingError(msg) from exc
        return Path(path)

    def _reference(self, info: ModelVersionInfo, root: Path, dst: Path) -> dict[str, Any]:
        where = f"model {info.name!r} version {info.version!r}"
        declared = info.tags.get("reference_artifact", "").strip()
        path = _reference_in_model(root, declared)
        if path is None and not declared:
            return {}
        if path is None:
            dst.mkdir(parents=True)
            try:
                path = Path(self._client.download_artifacts(info.run_id, declared, str(dst)))
            except (MlflowException, OSError) as exc:
                msg = (
                    f"{where}: tag reference_artifact {declared!r} is neither in the model "
                    f"directory nor a readable artifact of run {info.run_id!r}: {exc}"
                )
                raise ServingError(msg) from exc
        try:
            reference = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            msg = f"{where}: drift reference {path.name!r} is not readable JSON: {exc}"
            raise ServingError(msg) from exc
        if not isinstance(reference, dict):
            kind = type(reference).__name__
            msg = f"{where}: drift reference should be a JSON object, got {kind}"
            raise ServingError(msg)
        return reference


def _reference_in_model(root: Path, declared: str) -> Path | None:
    """The reference file inside the model directory: the declared path, else a known one.

    A declared path that would leave the model directory is not looked up here.
    """
    base = root.resolve()
    candidates = [declared] if declared else []
    candidates += [REFERENCE_FILE, f"extra_files/{REFERENCE_FILE}"]
    for relative in candidates:
        path = (base / relative).resolve()
        if path.is_relative_to(base) and path.is_file():
            return path
    return None


def _thresholds(tags: Mapping[str, str], where: str) -> Thresholds:
    values: dict[str, float] = {}
    for key in ("review_threshold", "decision_threshold"):
        raw = tags.get(key)
        if raw is None:
            msg = f"{where}: missing tag {key!r}; tags: {sorted(tags)}"
            raise ServingError(msg)
        try:
            values[key] = float(raw)
        except ValueError as exc:
            msg = f"{where}: tag {key!r} should be a number, got {raw!r}"
            raise ServingError(msg) from exc
    try:
        return Thresholds(review=values["review_threshold"], decline=values["decision_threshold"])
    except ServingError as exc:
        msg = f"{where}: tags review_threshold/decision_threshold: {exc}"
        raise ServingError(msg) from exc


def _feature_names(tags: Mapping[str, str], where: str) -> tuple[str, ...]:
    raw = tags.get("feature_names")
    try:
        names = json.loads(raw) if raw is not None else None
    except ValueError as exc:
        msg = f"{where}: tag 'feature_names' should be a JSON list, got {raw!r}"
        raise ServingError(msg) from exc
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        msg = f"{where}: tag 'feature_names' should be a non-empty JSON list of names, got {raw!r}"
        raise ServingError(msg)
    return tuple(names)


def _json_object(tags: Mapping[str, str], key: str, where: str) -> dict[str, Any]:
    raw = tags.get(key)
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        msg = f"{where}: tag {key!r} should be JSON, got {raw!r}"
        raise ServingError(msg) from exc
    return value if isinstance(value, dict) else {"value": value}
