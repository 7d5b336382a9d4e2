"""Fixtures for serving tests: tiny ONNX MLPs and a real sqlite MLflow registry in a temp dir.

Models are built with `onnx.helper` (no torch): input `features` float32 [batch, d] with a
dynamic batch, output `score` float32 [batch]. The registry is one sqlite store per test
session; each test registers under its own model name, so tests never see each other's
aliases or tags.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import mlflow
import mlflow.onnx
import numpy as np
import onnx
import pytest
from mlflow import MlflowClient
from onnx import TensorProto, helper, numpy_helper

from serving.integrity import sha256_hex, verify_onnx
from serving.runtime import LoadedModel, Thresholds

D = 6  # features of the test models
FEATURE_NAMES = [f"f{i}" for i in range(D)]


def mlp_onnx(*, seed: int, d: int = D, hidden: int = 8, input_name: str = "features") -> bytes:
    """A deterministic 2-layer MLP as ONNX bytes: sigmoid(relu(x W1 + b1) W2 + b2) -> [batch]."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.5, (d, hidden)).astype(np.float32)
    b1 = rng.normal(0, 0.1, hidden).astype(np.float32)
    w2 = rng.normal(0, 0.5, (hidden, 1)).astype(np.float32)
    b2 = rng.normal(0, 0.1, 1).astype(np.float32)
    initializers = [
        numpy_helper.from_array(w1, "w1"),
        numpy_helper.from_array(b1, "b1"),
        numpy_helper.from_array(w2, "w2"),
        numpy_helper.from_array(b2, "b2"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat"),
    ]
    nodes = [
        helper.make_node("Gemm", [input_name, "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["a"]),
        helper.make_node("Gemm", ["a", "w2", "b2"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["p"]),
        helper.make_node("Reshape", ["p", "flat"], ["score"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", d])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def loaded(
    data: bytes,
    *,
    version: str = "1",
    name: str = "unit",
    review: float = 0.5,
    decline: float = 0.8,
    definition_version: str = "def-1",
) -> LoadedModel:
    """A `LoadedModel` straight from bytes (no registry), for routing and runtime units."""
    verified = verify_onnx(data, expected_sha256=sha256_hex(data), model=name, version=version)
    return LoadedModel(
        verified,
        feature_names=FEATURE_NAMES,
        thresholds=Thresholds(review=review, decline=decline),
        definition_version=definition_version,
    )


@dataclass
class Registry:
    """A real MLflow sqlite registry in a temp dir, with helpers speaking the registry contract."""

    uri: str
    client: MlflowClient
    experiment_id: str
    root: Path

    def register(
        self,
        name: str,
        model: bytes,
        *,
        tags: Mapping[str, str] | None = None,
        external_data: bool = False,
        reference: Mapping[str, Any] | None = None,
        run_reference: Mapping[str, Any] | None = None,
    ) -> str:
        """Log `model` like `offline/registry.py` does, register it, tag it; the version.

        `reference` goes in the model directory (`extra_files/reference.json`, as
        offline.registry logs it); `run_reference` only as a run artifact.
        """
        if not self.client.search_registered_models(f"name = '{name}'"):
            self.client.create_registered_model(name)
        extra: list[str] = []
        if reference is not None:
            extra_dir = self.root / "extra" / name
            extra_dir.mkdir(parents=True, exist_ok=True)
            (extra_dir / "reference.json").write_text(json.dumps(reference), encoding="utf-8")
            extra.append(str(extra_dir / "reference.json"))
        with _fluent_uri(self.uri), mlflow.start_run(experiment_id=self.experiment_id) as run:
            info = mlflow.onnx.log_model(
                onnx.load_from_string(model),
                name="model",
                save_as_external_data=external_data,
                pip_requirements=["onnxruntime"],
                extra_files=extra or None,
            )
            if run_reference is not None:
                mlflow.log_dict(dict(run_reference), "drift/reference.json")
        with _fluent_uri(self.uri):  # the sqlite store resolves `models:/` sources globally
            mv = self.client.create_model_version(
                name, source=info.model_uri, run_id=run.info.run_id, model_id=info.model_id
            )
        version = str(mv.version)
        artifact = self.artifact_dir(name, version)
        contract = {
            "onnx_sha256": hashlib.sha256((artifact / "model.onnx").read_bytes()).hexdigest(),
            "decision_threshold": "0.8",
            "review_threshold": "0.5",
            "definition_version": "def-1",
            "data_version": json.dumps({"features": 3, "labels": 7}),
            "feature_names": json.dumps(FEATURE_NAMES),
            "run_id": run.info.run_id,
        }
        if reference is not None:
            contract["reference_artifact"] = "extra_files/reference.json"
        elif run_reference is not None:
            contract["reference_artifact"] = "drift/reference.json"
        for key, value in {**contract, **(tags or {})}.items():
            self.client.set_model_version_tag(name, version, key, value)
        return version

    def artifact_dir(self, name: str, version: str) -> Path:
        """The local directory holding a version's logged model (to tamper with it)."""
        uri = self.client.get_model_version_download_uri(name, version)
        return Path(url2pathname(urlsplit(uri).path))

    def alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)

    def rollout(self, name: str, mode: str, canary_percent: float = 0.0) -> None:
        self.client.set_registered_model_tag(name, "rollout_mode", mode)
        self.client.set_registered_model_tag(name, "canary_percent", str(canary_percent))


@contextmanager
def _fluent_uri(uri: str) -> Iterator[None]:
    """Point MLflow's global URIs at `uri` for a block (log_model needs the fluent API).

    Outside these blocks the globals stay unset, so serving code that ignored its explicit
    URI would fail the tests instead of silently finding the store.
    """
    previous_tracking, previous_registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous_tracking)
        mlflow.set_registry_uri(previous_registry)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """One sqlite MLflow store for the session."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment("serving-tests", artifact_location=root.as_uri())
    return Registry(uri=uri, client=client, experiment_id=experiment_id, root=root)


@pytest.fixture
def model_name(request: pytest.FixtureRequest) -> str:
    """A registered-model name private to the test."""
    return "t-" + re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:80]
