"""Runtime: registry models score exactly like a plain onnxruntime session; tags drive decisions."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from serving.errors import ModelNotFound, ServingError
from serving.model_store import ModelStore
from serving.runtime import Decision, Thresholds, create_session
from tests.serving.conftest import FEATURE_NAMES, D, Registry, loaded, mlp_onnx


def test_registry_model_scores_equal_an_independent_onnxruntime_session(
    registry: Registry, model_name: str
) -> None:
    data = mlp_onnx(seed=11)
    version = registry.register(model_name, data)
    registry.alias(model_name, "champion", version)
    model = ModelStore(registry.uri, model_name=model_name).load("champion")
    x = np.random.default_rng(0).normal(0, 2, (257, D)).astype(np.float32)

    reference = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (expected,) = reference.run(["score"], {"features": x})
    scores = model.score(x)

    assert scores.shape == (257,)
    assert scores.dtype == np.float32
    assert float(np.max(np.abs(scores - expected))) <= 1e-6
    single = np.concatenate([model.score(x[i : i + 1]) for i in range(5)])
    assert float(np.max(np.abs(single - expected[:5]))) <= 1e-6


def test_loaded_model_carries_the_contract_tags_and_in_model_reference(
    registry: Registry, model_name: str
) -> None:
    bins = {"features": {"f0": {"edges": [0.0, 1.0], "fractions": [0.5, 0.5]}}}
    version = registry.register(
        model_name, mlp_onnx(seed=12), reference=bins, tags={"review_threshold": "0.25"}
    )

    model = ModelStore(registry.uri, model_name=model_name).load(version)

    assert model.feature_names == tuple(FEATURE_NAMES)
    assert model.thresholds == Thresholds(review=0.25, decline=0.8)
    assert model.reference == bins
    assert model.definition_version == "def-1"
    assert model.data_version == {"features": 3, "labels": 7}
    assert model.alias is None
    assert model.run_id == registry.client.get_model_version(model_name, version).run_id


def test_reference_falls_back_to_the_run_artifact(registry: Registry, model_name: str) -> None:
    bins = {"score": {"edges": [0.0, 0.5, 1.0]}}
    version = registry.register(model_name, mlp_onnx(seed=13), run_reference=bins)

    assert ModelStore(registry.uri, model_name=model_name).load(version).reference == bins


def test_unknown_alias_version_and_model_raise_model_not_found(
    registry: Registry, model_name: str
) -> None:
    registry.register(model_name, mlp_onnx(seed=14))
    store = ModelStore(registry.uri, model_name=model_name)
    with pytest.raises(ModelNotFound, match="no alias 'challenger'"):
        store.load("challenger")
    with pytest.raises(ModelNotFound, match="version '99'"):
        store.load("99")
    with pytest.raises(ModelNotFound, match="'no-such-model'"):
        ModelStore(registry.uri, model_name="no-such-model").state()


def test_unusable_tags_are_named(registry: Registry, model_name: str) -> None:
    store = ModelStore(registry.uri, model_name=model_name)
    version = registry.register(model_name, mlp_onnx(seed=15), tags={"decision_threshold": "x"})
    with pytest.raises(ServingError, match="tag 'decision_threshold' should be a number, got 'x'"):
        store.load(version)
    version = registry.register(model_name, mlp_onnx(seed=15), tags={"feature_names": '["a"]'})
    with pytest.raises(ServingError, match="takes 6 features, tag feature_names lists 1"):
        store.load(version)


def test_sessions_use_the_tuned_options() -> None:
    options = create_session(mlp_onnx(seed=16), intra_op_threads=2).get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.inter_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    default = create_session(mlp_onnx(seed=16)).get_session_options()
    assert default.intra_op_num_threads == 1


def test_decide_maps_scores_to_decisions_at_the_thresholds() -> None:
    model = loaded(mlp_onnx(seed=17), review=0.5, decline=0.8)
    scores = np.array([0.0, 0.4999, 0.5, 0.7999, 0.8, 1.0, np.nan], dtype=np.float32)

    assert model.decide(scores) == [
        Decision.APPROVE,
        Decision.APPROVE,
        Decision.REVIEW,
        Decision.REVIEW,
        Decision.DECLINE,
        Decision.DECLINE,
        Decision.REVIEW,  # a NaN score is never silently approved
    ]
    assert model.decide(np.empty(0, dtype=np.float32)) == []


def test_score_rejects_the_wrong_width_and_accepts_an_empty_batch() -> None:
    model = loaded(mlp_onnx(seed=18))
    with pytest.raises(ServingError, match=r"shape \[batch, 6\], got \[2, 5\]"):
        model.score(np.zeros((2, 5), dtype=np.float32))
    assert model.score(np.zeros((0, D), dtype=np.float32)).shape == (0,)
    assert model.score(np.zeros((3, D), dtype=np.float64)).dtype == np.float32


@pytest.mark.parametrize(("review", "decline"), [(0.9, 0.1), (-0.1, 0.5), (0.2, float("nan"))])
def test_inconsistent_thresholds_are_refused(review: float, decline: float) -> None:
    with pytest.raises(ServingError, match="0 <= review <= decline <= 1"):
        Thresholds(review=review, decline=decline)
