"""Follow the registry: reload and swap the serving `ModelSet` when aliases or rollout tags change.

Each poll reads the registered model once (aliases and rollout tags). When the champion
version, the challenger version (only when the rollout mode scores it), the mode or the
canary percentage differ from what is serving, the watcher builds a complete new
`ModelSet` — downloading and verifying any model it does not already hold — and swaps
it in with a single reference assignment. Readers calling `current()` from any thread
get either the old set or the new one, never a mix.

A model already serving is reused when its version stays in the new set (shared session,
new alias), so later edits to that version's tags take effect only when it is loaded
again.

A failed poll (registry unreachable, alias missing, a tampered or invalid model) changes
nothing that serves: the last good set stays, `last_error` holds the error, and the next
poll tries again. A poll that finds the registry matching what serves clears
`last_error`.

Tests and callers that want control call `poll_once()`; `start()` runs polls on a daemon
thread every `poll_interval_s` seconds until `stop()`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from types import TracebackType

from serving.errors import ModelNotFound, ServingError
from serving.model_store import ModelStore, RegistryState
from serving.routing import ModelSet, RolloutConfig
from serving.runtime import LoadedModel

__all__ = ["RegistryWatcher"]

_log = logging.getLogger(__name__)

# (champion version, challenger version or None, rollout) — what a ModelSet serves.
_Key = tuple[str, str | None, RolloutConfig]


@dataclass(frozen=True, slots=True)
class _Snapshot:
    generation: int
    model_set: ModelSet | None
    key: _Key | None


class RegistryWatcher:
    """Keeps the current `ModelSet` in step with the registry (see the module docstring)."""

    def __init__(
        self,
        store: ModelStore,
        *,
        poll_interval_s: float = 10.0,
        champion_alias: str = "champion",
        challenger_alias: str = "challenger",
    ) -> None:
        if not poll_interval_s > 0:
            msg = f"poll_interval_s: expected a positive number of seconds, got {poll_interval_s!r}"
            raise ServingError(msg)
        self.store = store
        self.poll_interval_s = poll_interval_s
        self.champion_alias = champion_alias
        self.challenger_alias = challenger_alias
        self._snapshot = _Snapshot(generation=0, model_set=None, key=None)
        self._last_error: ServingError | None = None
        self._poll_lock = threading.Lock()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def generation(self) -> int:
        """How many model sets have been swapped in (0 before the first load)."""
        return self._snapshot.generation

    @property
    def last_error(self) -> ServingError | None:
        """The error of the latest poll, None when it succeeded."""
        return self._last_error

    def current(self) -> ModelSet:
        """The serving model set; `ModelNotFound` when none has loaded yet."""
        model_set = self._snapshot.model_set
        if model_set is None:
            msg = f"no model of {self.store.model_name!r} has loaded yet" + (
                f"; last error: {self._last_error}" if self._last_error else ""
            )
            raise ModelNotFound(msg)
        return model_set

    def wait_ready(self, timeout_s: float) -> ModelSet:
        """The first loaded model set, waiting up to `timeout_s` seconds for it."""
        self._ready.wait(timeout_s)
        return self.current()

    def poll_once(self) -> bool:
        """Check the registry once and swap in a new set if it changed; True if swapped."""
        with self._poll_lock:
            try:
                swapped = self._poll()
            except ServingError as exc:
                self._record(exc)
                return False
            except Exception as exc:  # a poll must never take serving down
                msg = f"registry poll of {self.store.model_name!r} failed unexpectedly: {exc!r}"
                error = ServingError(msg)
                error.__cause__ = exc
                self._record(error)
                return False
            self._last_error = None
            return swapped

    def start(self) -> None:
        """Poll now, then every `poll_interval_s` seconds on a daemon thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self.poll_once()
        self._thread = threading.Thread(
            target=self._run, name=f"registry-watcher-{self.store.model_name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the polling thread (a poll in progress finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def __enter__(self) -> RegistryWatcher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            self.poll_once()

    def _poll(self) -> bool:
        state = self.store.state()
        key = self._key(state)
        snapshot = self._snapshot
        if snapshot.model_set is not None and key == snapshot.key:
            return False
        model_set = self._build(key, snapshot.model_set)
        self._snapshot = _Snapshot(snapshot.generation + 1, model_set, key)
        self._ready.set()
        _log.info(
            "serving %s: champion v%s, challenger %s, rollout %s (generation %d)",
            self.store.model_name,
            key[0],
            f"v{key[1]}" if key[1] else "none",
            key[2],
            snapshot.generation + 1,
        )
        return True

    def _key(self, state: RegistryState) -> _Key:
        champion = state.aliases.get(self.champion_alias)
        if champion is None:
            msg = (
                f"registered model {self.store.model_name!r} has no alias "
                f"{self.champion_alias!r}; aliases: {sorted(state.aliases)}"
            )
            raise ModelNotFound(msg)
        challenger = state.aliases.get(self.challenger_alias)
        if state.rollout.mode == "champion":
            challenger = None
        return (champion, challenger, state.rollout)

    def _build(self, key: _Key, serving: ModelSet | None) -> ModelSet:
        held: dict[str, LoadedModel] = {}
        if serving is not None:
            for model in (serving.champion, serving.challenger):
                if model is not None:
                    held[model.version] = model
        champion_version, challenger_version, rollout = key
        champion = self._model(champion_version, self.champion_alias, held)
        challenger = None
        if challenger_version is not None:
            challenger = self._model(challenger_version, self.challenger_alias, held)
        return ModelSet(champion=champion, challenger=challenger, rollout=rollout)

    def _model(self, version: str, alias: str, held: dict[str, LoadedModel]) -> LoadedModel:
        if version in held:
            return held[version].with_alias(alias)
        model = self.store.load_info(self.store.version_info(version, alias=alias))
        held[version] = model
        return model

    def _record(self, error: ServingError) -> None:
        previous = self._last_error
        self._last_error = error
        if previous is None or str(previous) != str(error):
            _log.error("registry watcher keeps the last good models: %s", error)
