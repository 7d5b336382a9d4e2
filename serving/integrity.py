"""Verify a model artifact before anything executes it: sha256, then ONNX, then the I/O contract.

The order is the point. The bytes are hashed and compared with the registry's
`onnx_sha256` tag first; only matching bytes are parsed, and only as an ONNX protobuf
(`onnx.load_from_string` + `onnx.checker`), never unpickled. The session is then built
from these same verified bytes (`VerifiedModel.data`), not by re-reading the file, so
nothing can change between the check and the load.

Refused, each with a `ModelIntegrityError` naming the model and version:

- bytes whose sha256 differs from the tag (a flipped byte, a swapped file);
- a missing or malformed `onnx_sha256` tag (an unverifiable model is not served);
- anything that is not a valid ONNX model — a Python pickle or a zip (`torch.save`) is
  named as such, even when the tag matches its hash;
- a model whose tensors live in external data files, which the hash does not cover
  (log it with `mlflow.onnx.log_model(..., save_as_external_data=False)`);
- a model without a float input `features` [batch, d] and a float output `score`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from serving.errors import ModelIntegrityError

__all__ = [
    "INPUT_NAME",
    "OUTPUT_NAME",
    "VerifiedModel",
    "read_verified",
    "sha256_hex",
    "verify_onnx",
]

INPUT_NAME = "features"
OUTPUT_NAME = "score"

_SHA256 = re.compile(r"[0-9a-f]{64}")
_FLOAT = 1  # onnx.TensorProto.FLOAT
_EXTERNAL = 1  # onnx.TensorProto.EXTERNAL
_GRAPH, _GRAPHS, _TENSOR = 5, 10, 4  # onnx.AttributeProto types


@dataclass(frozen=True, slots=True)
class VerifiedModel:
    """ONNX bytes that passed every check; the only thing `serving.runtime` builds sessions from.

    `n_features` is the static width of the `features` input (None when the graph leaves
    it symbolic).
    """

    model: str
    version: str
    sha256: str
    n_features: int | None
    data: bytes = field(repr=False)


def sha256_hex(data: bytes) -> str:
    """The lowercase hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def read_verified(
    path: Path, *, expected_sha256: str | None, model: str, version: str
) -> VerifiedModel:
    """Read `path` once and verify its bytes (see `verify_onnx`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        msg = f"model {model!r} version {version!r}: cannot read {str(path)!r}: {exc}"
        raise ModelIntegrityError(msg) from exc
    return verify_onnx(data, expected_sha256=expected_sha256, model=model, version=version)


def verify_onnx(
    data: bytes, *, expected_sha256: str | None, model: str, version: str
) -> VerifiedModel:
    """`data` as a `VerifiedModel`, or a `ModelIntegrityError` saying what failed.

    `expected_sha256` is the registry's `onnx_sha256` tag (None when the tag is missing,
    which is refused).
    """
    where = f"model {model!r} version {version!r}"
    expected = _expected_digest(expected_sha256, where)
    actual = sha256_hex(data)
    if not hmac.compare_digest(actual, expected):
        msg = (
            f"{where}: model.onnx sha256 mismatch: expected {expected!r} (tag onnx_sha256), "
            f"got {actual!r} ({len(data)} bytes); the artifact changed after registration, "
            "refusing to load it"
        )
        raise ModelIntegrityError(msg)
    kind = _foreign_format(data)
    if kind is not None:
        msg = f"{where}: model.onnx is {kind}, not an ONNX model; refusing to load it"
        raise ModelIntegrityError(msg)
    proto = _parse(data, where)
    _check_no_external_data(proto, where)  # before the checker, which would look for files
    _check(proto, where)
    n_features = _check_io(proto, where)
    return VerifiedModel(
        model=model, version=version, sha256=actual, n_features=n_features, data=data
    )


def _expected_digest(tag: str | None, where: str) -> str:
    if tag is None:
        msg = f"{where}: no onnx_sha256 tag; an unverifiable model is never loaded"
        raise ModelIntegrityError(msg)
    expected = tag.strip().lower()
    if _SHA256.fullmatch(expected) is None:
        msg = f"{where}: tag onnx_sha256 should be 64 hex digits, got {tag!r}"
        raise ModelIntegrityError(msg)
    return expected


def _foreign_format(data: bytes) -> str | None:
    """A name for well-known non-ONNX payloads (by magic bytes only, nothing is decoded)."""
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return f"a Python pickle (protocol {data[1]}); pickles are never unpickled"
    if data.startswith(b"PK\x03\x04"):
        return "a zip archive (e.g. torch.save output)"
    return None


def _parse(data: bytes, where: str) -> Any:
    try:
        proto = onnx.load_from_string(data, format="protobuf")
    except Exception as exc:  # protobuf raises DecodeError, RuntimeWarning, ValueError
        msg = f"{where}: model.onnx is not an ONNX protobuf ({len(data)} bytes): {exc}"
        raise ModelIntegrityError(msg) from exc
    return proto


def _check(proto: Any, where: str) -> None:
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # onnx.checker.ValidationError, InferenceError
        msg = f"{where}: model.onnx fails the ONNX checker: {exc}"
        raise ModelIntegrityError(msg) from exc


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor in `graph` and its subgraphs: initializers and tensor attributes."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == _TENSOR:
                yield attribute.t
            elif attribute.type == _GRAPH:
                yield from _tensors(attribute.g)
            elif attribute.type == _GRAPHS:
                for sub in attribute.graphs:
                    yield from _tensors(sub)


def _check_no_external_data(proto: Any, where: str) -> None:
    external = [t.name for t in _tensors(proto.graph) if t.data_location == _EXTERNAL]
    if external:
        msg = (
            f"{where}: model.onnx keeps {len(external)} tensor(s) in external data files "
            f"(first: {external[0]!r}) that onnx_sha256 does not cover; log the model with "
            "mlflow.onnx.log_model(..., save_as_external_data=False)"
        )
        raise ModelIntegrityError(msg)


def _check_io(proto: Any, where: str) -> int | None:
    """Check the `features`/`score` contract; the static feature width if known."""
    initializers = {t.name for t in proto.graph.initializer}
    inputs = {i.name: i for i in proto.graph.input if i.name not in initializers}
    outputs = {o.name: o for o in proto.graph.output}
    if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
        msg = (
            f"{where}: expected input {INPUT_NAME!r} and output {OUTPUT_NAME!r}, "
            f"got inputs {sorted(inputs)} and outputs {sorted(outputs)}"
        )
        raise ModelIntegrityError(msg)
    if len(inputs) != 1:
        msg = f"{where}: expected exactly one input {INPUT_NAME!r}, got {sorted(inputs)}"
        raise ModelIntegrityError(msg)
    tensor_in = inputs[INPUT_NAME].type.tensor_type
    tensor_out = outputs[OUTPUT_NAME].type.tensor_type
    if tensor_in.elem_type != _FLOAT or tensor_out.elem_type != _FLOAT:
        msg = (
            f"{where}: expected float32 {INPUT_NAME!r} and {OUTPUT_NAME!r}, got element "
            f"types {tensor_in.elem_type} and {tensor_out.elem_type} (1 is float32)"
        )
        raise ModelIntegrityError(msg)
    if not tensor_in.HasField("shape"):
        return None
    dims = tensor_in.shape.dim
    if len(dims) != 2:
        msg = f"{where}: expected {INPUT_NAME!r} of rank 2 [batch, d], got rank {len(dims)}"
        raise ModelIntegrityError(msg)
    width = dims[1].dim_value if dims[1].HasField("dim_value") else 0
    return int(width) if width > 0 else None
