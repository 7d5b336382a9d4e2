"""Watcher: follows aliases and rollout tags, swaps whole sets, keeps the last good set."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from serving.errors import ModelIntegrityError, ModelNotFound
from serving.model_store import ModelStore
from serving.watcher import RegistryWatcher
from tests.serving.conftest import D, Registry, mlp_onnx


def _watcher(registry: Registry, name: str, *, poll_interval_s: float = 10.0) -> RegistryWatcher:
    store = ModelStore(registry.uri, model_name=name)
    return RegistryWatcher(store, poll_interval_s=poll_interval_s)


def _tamper(registry: Registry, name: str, version: str) -> None:
    path = registry.artifact_dir(name, version) / "model.onnx"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_promoting_a_version_swaps_the_champion_on_the_next_poll(
    registry: Registry, model_name: str
) -> None:
    v1 = registry.register(model_name, mlp_onnx(seed=31))
    registry.alias(model_name, "champion", v1)
    watcher = _watcher(registry, model_name)

    assert watcher.poll_once() is True
    before = watcher.current()
    assert (before.champion.version, before.challenger, watcher.generation) == (v1, None, 1)
    assert watcher.poll_once() is False  # nothing changed, nothing reloaded
    assert watcher.generation == 1

    v2 = registry.register(model_name, mlp_onnx(seed=32))
    registry.alias(model_name, "champion", v2)
    assert watcher.poll_once() is True

    after = watcher.current()
    assert (after.champion.version, after.champion.alias, watcher.generation) == (v2, "champion", 2)
    assert watcher.last_error is None
    assert before.champion.version == v1  # a reader holding the old set still has it whole
    x = np.ones((4, D), dtype=np.float32)
    assert not np.array_equal(before.champion.score(x), after.champion.score(x))


def test_rollout_tags_and_challenger_alias_are_followed(
    registry: Registry, model_name: str
) -> None:
    v1 = registry.register(model_name, mlp_onnx(seed=33))
    v2 = registry.register(model_name, mlp_onnx(seed=34))
    registry.alias(model_name, "champion", v1)
    registry.alias(model_name, "challenger", v2)
    watcher = _watcher(registry, model_name)
    watcher.poll_once()
    assert watcher.current().effective_mode == "champion"
    assert watcher.current().challenger is None  # not loaded while the mode ignores it

    registry.rollout(model_name, "shadow")
    assert watcher.poll_once() is True
    shadow = watcher.current()
    assert shadow.challenger is not None
    assert (shadow.effective_mode, shadow.challenger.version) == ("shadow", v2)

    registry.rollout(model_name, "canary", 10)
    assert watcher.poll_once() is True
    canary = watcher.current()
    assert (canary.rollout.mode, canary.rollout.canary_percent) == ("canary", 10.0)
    assert canary.champion.sha256 == shadow.champion.sha256
    assert watcher.generation == 3


def test_a_tampered_new_version_is_refused_and_the_last_good_set_keeps_serving(
    registry: Registry, model_name: str
) -> None:
    v1 = registry.register(model_name, mlp_onnx(seed=35))
    registry.alias(model_name, "champion", v1)
    watcher = _watcher(registry, model_name)
    watcher.poll_once()

    v2 = registry.register(model_name, mlp_onnx(seed=36))
    _tamper(registry, model_name, v2)
    registry.alias(model_name, "champion", v2)

    assert watcher.poll_once() is False
    assert watcher.current().champion.version == v1
    assert watcher.generation == 1
    error = watcher.last_error
    assert isinstance(error, ModelIntegrityError)
    assert f"{model_name!r} version {v2!r}" in str(error)
    assert "sha256 mismatch" in str(error)

    registry.alias(model_name, "champion", v1)  # rolled back: the registry matches again
    assert watcher.poll_once() is False
    assert watcher.last_error is None
    assert watcher.generation == 1


def test_a_missing_champion_alias_is_reported_and_current_raises_until_one_loads(
    registry: Registry, model_name: str
) -> None:
    version = registry.register(model_name, mlp_onnx(seed=37))
    watcher = _watcher(registry, model_name)

    assert watcher.poll_once() is False
    assert isinstance(watcher.last_error, ModelNotFound)
    with pytest.raises(ModelNotFound, match="has no alias 'champion'"):
        watcher.current()

    registry.alias(model_name, "champion", version)
    assert watcher.poll_once() is True
    assert watcher.current().champion.version == version


def test_the_background_thread_follows_a_promotion(registry: Registry, model_name: str) -> None:
    v1 = registry.register(model_name, mlp_onnx(seed=38))
    v2 = registry.register(model_name, mlp_onnx(seed=39))
    registry.alias(model_name, "champion", v1)
    seen: set[tuple[str, str | None]] = set()
    stop = threading.Event()

    with _watcher(registry, model_name, poll_interval_s=0.05) as watcher:
        assert watcher.wait_ready(30).champion.version == v1

        def read() -> None:  # readers never see a half-built set
            while not stop.is_set():
                champion = watcher.current().champion
                seen.add((champion.version, champion.alias))

        reader = threading.Thread(target=read)
        reader.start()
        registry.alias(model_name, "champion", v2)
        deadline = time.monotonic() + 30
        while watcher.current().champion.version != v2 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        reader.join()

    assert watcher.current().champion.version == v2
    assert watcher.generation == 2
    assert (v1, "champion") in seen
    assert seen <= {(v1, "champion"), (v2, "champion")}
