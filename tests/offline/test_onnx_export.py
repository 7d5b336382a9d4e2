"""ONNX export: the serving interface, reproducible bytes, torch/onnxruntime parity."""

from __future__ import annotations

import copy
import json

import numpy as np
import onnx
import pytest
import torch

from offline.onnx_export import (
    INPUT_NAME,
    OUTPUT_NAME,
    ExportError,
    ParityError,
    check_parity,
    export_onnx,
    onnx_scores,
    onnx_session,
)
from offline.train import TrainConfig, TrainedModel, train_model
from offline.training_set import TrainingSet
from tests.offline.synthetic import synthetic_training_set


@pytest.fixture(scope="module")
def ts() -> TrainingSet:
    return synthetic_training_set(2_000, seed=2)


@pytest.fixture(scope="module")
def trained(ts: TrainingSet) -> TrainedModel:
    return train_model(ts, config=TrainConfig(epochs=3))


@pytest.fixture(scope="module")
def exported(ts: TrainingSet, trained: TrainedModel) -> bytes:
    return export_onnx(trained.model, ts.feature_names, metadata={"skewless.test": "yes"})


def test_interface_is_features_batch_by_d_to_score_batch(ts: TrainingSet, exported: bytes) -> None:
    model = onnx.load_from_string(exported)
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == INPUT_NAME == "features"
    assert out.name == OUTPUT_NAME == "score"
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    in_dims = inp.type.tensor_type.shape.dim
    assert [in_dims[0].dim_param, in_dims[1].dim_value] == ["batch", len(ts.feature_names)]
    assert [d.dim_param for d in out.type.tensor_type.shape.dim] == ["batch"]
    session = onnx_session(exported)
    for rows in (1, 7, 1_000):
        x = np.zeros((rows, len(ts.feature_names)), dtype=np.float32)
        (scores,) = session.run([OUTPUT_NAME], {INPUT_NAME: x})
        assert scores.shape == (rows,)
        assert scores.dtype == np.float32


def test_parity_with_torch_on_the_test_split(
    ts: TrainingSet, trained: TrainedModel, exported: bytes
) -> None:
    x, _ = ts.part("test")
    report = check_parity(trained.model, exported, x)
    assert report.ok
    assert report.rows == len(x)
    assert report.max_abs_diff <= 1e-5
    np.testing.assert_allclose(onnx_scores(exported, x), trained.predict(x), atol=1e-5)


def test_exporting_twice_gives_the_same_bytes_and_a_serialization_fixed_point(
    ts: TrainingSet, trained: TrainedModel, exported: bytes
) -> None:
    again = export_onnx(trained.model, ts.feature_names, metadata={"skewless.test": "yes"})
    assert again == exported
    assert onnx.load_from_string(exported).SerializeToString() == exported


def test_no_stack_traces_or_paths_in_the_file(ts: TrainingSet, exported: bytes) -> None:
    model = onnx.load_from_string(exported)
    assert b"stack_trace" not in exported
    assert b".py" not in exported
    assert all(not node.metadata_props and not node.doc_string for node in model.graph.node)
    metadata = {p.key: p.value for p in model.metadata_props}
    assert json.loads(metadata["skewless.feature_names"]) == list(ts.feature_names)
    assert metadata["skewless.test"] == "yes"
    assert model.producer_name == "skewless"
    assert model.opset_import[0].version == 18


def test_a_different_model_fails_parity(
    ts: TrainingSet, trained: TrainedModel, exported: bytes
) -> None:
    x, _ = ts.part("test")
    other = copy.deepcopy(trained.model)
    with torch.no_grad():
        other.logit_offset += 1.0
    with pytest.raises(ParityError, match=r"differ by .* expected at most 1e-05"):
        check_parity(other.eval(), exported, x)


def test_feature_names_must_match_the_model(trained: TrainedModel) -> None:
    with pytest.raises(ExportError, match=r"takes 27 features, got 2 names"):
        export_onnx(trained.model, ["amount", "hour_of_day"])
