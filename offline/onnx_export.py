"""ONNX export of the fraud MLP, byte for byte reproducible, and its parity check.

The graph takes `features` float32 `[batch, d]` (dynamic batch axis) and returns `score`
float32 `[batch]`, the fraud probability. Export uses the torch.export-based exporter at a
fixed opset (`OPSET`), then canonicalizes the model: every `doc_string` and exporter
`metadata_props` entry is dropped (they carry stack traces with absolute paths), the
producer is `skewless` with the torch version, and the model metadata holds
`skewless.feature_names` (JSON list) plus the entries the caller passes. The returned
bytes are a fixed point of ONNX parse + serialize, so saving them through
`onnx.save_model` (as MLflow does) writes the same bytes.

`check_parity` scores a split with torch and with onnxruntime and raises `ParityError`
when they differ by more than the tolerance.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import torch

from offline.errors import OfflineError
from offline.model import FraudMLP

__all__ = [
    "INPUT_NAME",
    "OPSET",
    "OUTPUT_NAME",
    "ExportError",
    "ParityError",
    "ParityReport",
    "check_parity",
    "export_onnx",
    "onnx_scores",
    "onnx_session",
    "onnx_sha256",
]

INPUT_NAME = "features"
OUTPUT_NAME = "score"
OPSET = 18
PARITY_TOLERANCE = 1e-5


class ExportError(OfflineError):
    """The model could not be exported to the expected ONNX interface."""


class ParityError(OfflineError):
    """onnxruntime and torch disagree on the same rows by more than the tolerance."""


@dataclass(frozen=True, slots=True)
class ParityReport:
    """torch vs onnxruntime on one split: the largest absolute score difference."""

    rows: int
    max_abs_diff: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def onnx_sha256(data: bytes) -> str:
    """Hex sha256 of ONNX file bytes (the registry's integrity tag)."""
    return hashlib.sha256(data).hexdigest()


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter logs registrations and deprecations on every call; keep them out."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _canonical(model: onnx.ModelProto, metadata: Mapping[str, str]) -> bytes:
    model.doc_string = ""
    model.producer_name = "skewless"
    model.producer_version = f"torch-{torch.__version__}"
    del model.metadata_props[:]
    for key in sorted(metadata):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, metadata[key]
    model.graph.doc_string = ""
    del model.graph.metadata_props[:]
    nodes = [*model.graph.node, *(n for f in model.functions for n in f.node)]
    for node in nodes:
        node.doc_string = ""
        del node.metadata_props[:]
    for function in model.functions:
        function.doc_string = ""
        del function.metadata_props[:]
    for values in (model.graph.input, model.graph.output, model.graph.value_info):
        for value in values:
            value.doc_string = ""
            del value.metadata_props[:]
    for tensor in model.graph.initializer:
        tensor.doc_string = ""
        del tensor.metadata_props[:]
    data: bytes = model.SerializeToString()
    # Re-serialize once more: what onnx.save_model writes must equal what we hash.
    return onnx.load_from_string(data).SerializeToString()  # type: ignore[no-any-return]


def _check_interface(model: onnx.ModelProto, d: int) -> None:
    inputs = [(i.name, i.type.tensor_type) for i in model.graph.input]
    outputs = [(o.name, o.type.tensor_type) for o in model.graph.output]
    problems = []
    if [name for name, _ in inputs] != [INPUT_NAME]:
        problems.append(f"inputs {[n for n, _ in inputs]}, expected [{INPUT_NAME!r}]")
    else:
        dims = inputs[0][1].shape.dim
        if len(dims) != 2 or not dims[0].dim_param or dims[1].dim_value != d:
            problems.append(f"input shape {[x.dim_param or x.dim_value for x in dims]}")
    if [name for name, _ in outputs] != [OUTPUT_NAME]:
        problems.append(f"outputs {[n for n, _ in outputs]}, expected [{OUTPUT_NAME!r}]")
    elif len(outputs[0][1].shape.dim) != 1 or outputs[0][1].elem_type != onnx.TensorProto.FLOAT:
        problems.append("output is not float32 [batch]")
    if problems:
        msg = (
            f"ONNX export: unexpected interface ({'; '.join(problems)}); "
            f"expected {INPUT_NAME} [batch, {d}] -> {OUTPUT_NAME} [batch]"
        )
        raise ExportError(msg)


def export_onnx(
    model: FraudMLP,
    feature_names: Sequence[str],
    *,
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    """The model as canonical ONNX bytes: `features` [batch, d] → `score` [batch]."""
    d = len(feature_names)
    if d != model.n_features:
        msg = f"export_onnx: the model takes {model.n_features} features, got {d} names"
        raise ExportError(msg)
    was_training = model.training
    model.eval()
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                model,
                (torch.zeros(2, d, dtype=torch.float32),),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=OPSET,
                dynamo=True,
                external_data=False,
                dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
                verbose=False,
                report=False,
            )
    except Exception as exc:
        msg = f"export_onnx: torch.onnx.export failed for {type(model).__name__}: {exc}"
        raise ExportError(msg) from exc
    finally:
        model.train(was_training)
    if program is None:
        msg = "export_onnx: the exporter returned no program"
        raise ExportError(msg)
    proto = program.model_proto
    for dim in proto.graph.input[0].type.tensor_type.shape.dim[:1]:
        dim.dim_param = "batch"
    for dim in proto.graph.output[0].type.tensor_type.shape.dim[:1]:
        dim.dim_param = "batch"
    names = {"skewless.feature_names": json.dumps(list(feature_names))}
    data = _canonical(proto, names | dict(metadata or {}))
    parsed = onnx.load_from_string(data)
    try:
        onnx.checker.check_model(parsed)
    except onnx.checker.ValidationError as exc:
        msg = f"export_onnx: the exported model is not valid ONNX: {exc}"
        raise ExportError(msg) from exc
    _check_interface(parsed, d)
    return data


def onnx_session(data: bytes) -> Any:
    """A single-threaded onnxruntime CPU session over ONNX bytes."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


def onnx_scores(data: bytes | Any, x: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """Scores [n] of an ONNX model (bytes or session) on raw feature vectors [n, d]."""
    session = onnx_session(data) if isinstance(data, bytes) else data
    (out,) = session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})
    return np.asarray(out, dtype=np.float32)


def check_parity(
    model: FraudMLP,
    data: bytes,
    x: npt.NDArray[Any],
    *,
    tolerance: float = PARITY_TOLERANCE,
) -> ParityReport:
    """Score `x` with torch and onnxruntime; `ParityError` if any row differs > `tolerance`."""
    model.eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
    got = onnx_scores(data, x)
    if got.shape != expected.shape:
        msg = f"parity: onnxruntime returned shape {got.shape}, torch {expected.shape}"
        raise ParityError(msg)
    diff = float(np.max(np.abs(got.astype(np.float64) - expected))) if len(x) else 0.0
    report = ParityReport(rows=len(x), max_abs_diff=diff, tolerance=tolerance)
    if not report.ok:
        row = int(np.argmax(np.abs(got - expected)))
        msg = (
            f"parity: onnxruntime and torch differ by {diff:.3g} (row {row}: "
            f"onnx {got[row]!r} vs torch {expected[row]!r}) over {len(x)} rows; "
            f"expected at most {tolerance:g}"
        )
        raise ParityError(msg)
    return report
