"""Integrity: only bytes matching the registry's sha256 and parsing as valid ONNX ever load."""

from __future__ import annotations

import pathlib
import pickle

import onnx
import pytest

from serving.errors import ModelIntegrityError
from serving.integrity import sha256_hex, verify_onnx
from serving.model_store import ModelStore
from tests.serving.conftest import D, Registry, mlp_onnx


class _Trap:
    """Unpickling this creates `marker`: proof that something ran pickle.loads."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[pathlib.Path]]:
        return (pathlib.Path.touch, (self.marker,))


def test_a_verified_model_loads_with_the_registry_sha(registry: Registry, model_name: str) -> None:
    version = registry.register(model_name, mlp_onnx(seed=1))
    registry.alias(model_name, "champion", version)

    model = ModelStore(registry.uri, model_name=model_name).load("champion")

    tag = registry.client.get_model_version(model_name, version).tags["onnx_sha256"]
    assert (model.name, model.version, model.alias, model.sha256) == (
        model_name,
        version,
        "champion",
        tag,
    )


def test_one_flipped_byte_is_refused_naming_model_version_and_both_hashes(
    registry: Registry, model_name: str
) -> None:
    version = registry.register(model_name, mlp_onnx(seed=2))
    path = registry.artifact_dir(model_name, version) / "model.onnx"
    original = path.read_bytes()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0x01
    path.write_bytes(bytes(tampered))

    with pytest.raises(ModelIntegrityError) as caught:
        ModelStore(registry.uri, model_name=model_name).load(version)

    message = str(caught.value)
    assert repr(model_name) in message
    assert f"version {version!r}" in message
    assert sha256_hex(original) in message  # expected (the tag)
    assert sha256_hex(bytes(tampered)) in message  # actual
    assert "mismatch" in message


@pytest.mark.parametrize("tag_matches", [True, False], ids=["matching-tag", "stale-tag"])
def test_a_pickle_as_model_onnx_is_refused_and_never_unpickled(
    registry: Registry, model_name: str, tmp_path: pathlib.Path, tag_matches: bool
) -> None:
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Trap(marker))
    version = registry.register(model_name, mlp_onnx(seed=3))
    (registry.artifact_dir(model_name, version) / "model.onnx").write_bytes(payload)
    if tag_matches:
        registry.client.set_model_version_tag(
            model_name, version, "onnx_sha256", sha256_hex(payload)
        )

    with pytest.raises(ModelIntegrityError) as caught:
        ModelStore(registry.uri, model_name=model_name).load(version)

    message = str(caught.value)
    assert repr(model_name) in message
    assert f"version {version!r}" in message
    assert ("pickle" in message) if tag_matches else ("mismatch" in message)
    assert not marker.exists()


def test_a_model_without_sha_tag_is_refused(registry: Registry, model_name: str) -> None:
    version = registry.register(model_name, mlp_onnx(seed=4))
    registry.client.delete_model_version_tag(model_name, version, "onnx_sha256")

    with pytest.raises(ModelIntegrityError, match="no onnx_sha256 tag"):
        ModelStore(registry.uri, model_name=model_name).load(version)


def test_external_tensor_data_is_refused_because_the_hash_does_not_cover_it(
    registry: Registry, model_name: str
) -> None:
    # hidden=64: the first weight matrix (1.5 KB) goes to an external file by default.
    version = registry.register(model_name, mlp_onnx(seed=5, hidden=64), external_data=True)

    with pytest.raises(ModelIntegrityError, match="external data") as caught:
        ModelStore(registry.uri, model_name=model_name).load(version)
    assert "save_as_external_data=False" in str(caught.value)


def test_bytes_that_are_not_onnx_are_refused_even_with_a_matching_hash() -> None:
    for junk in (b"", b"not an onnx model at all", b"PK\x03\x04torch-archive"):
        with pytest.raises(ModelIntegrityError, match="'m' version '9'"):
            verify_onnx(junk, expected_sha256=sha256_hex(junk), model="m", version="9")


def test_a_malformed_sha_tag_is_refused() -> None:
    data = mlp_onnx(seed=6)
    with pytest.raises(ModelIntegrityError, match="64 hex digits, got 'abc'"):
        verify_onnx(data, expected_sha256="abc", model="m", version="1")


def test_the_io_contract_is_checked() -> None:
    data = mlp_onnx(seed=7, input_name="x")
    with pytest.raises(ModelIntegrityError, match=r"expected input 'features' and output 'score'"):
        verify_onnx(data, expected_sha256=sha256_hex(data), model="m", version="1")


def test_verified_bytes_are_the_checked_bytes_and_know_their_width() -> None:
    data = mlp_onnx(seed=8)
    verified = verify_onnx(data, expected_sha256=sha256_hex(data).upper(), model="m", version="1")
    assert verified.data is data
    assert verified.n_features == D
    assert onnx.load_from_string(verified.data).graph.output[0].name == "score"
