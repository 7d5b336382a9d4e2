"""The keyed steps of the feature dataflow: one per feature view, plus vector assembly.

Each view step holds one `WindowState` per entity, in `SHARDS` Bytewax keys per view (a
key per entity made Bytewax snapshot every touched entity whole each epoch), logged for
recovery by `streams.state_log`, and runs the shared kernel on every event of the batch.
Events carry a growing tuple of view results from step to step; the last step builds the
`FeatureVector`.
"""

from __future__ import annotations

import pickle
import time
import zlib
from collections.abc import Callable
from functools import partial
from typing import Any

import msgspec
from bytewax.operators import StatefulBatchLogic

from schemas.features import CompiledFeatureSet, FeatureVector, ViewKernel, WindowState
from schemas.records import Transaction
from streams import state_log
from streams.errors import StreamsError
from streams.features.decode import Decoded

__all__ = ["SHARDS", "InFlight", "ViewLogic", "assemble", "merge_entered", "shard_key", "shard_of"]


class InFlight(msgspec.Struct, frozen=True):
    """An event on its way through the view steps, with each view's values so far.

    `seq` numbers events in the order the source handed them out.
    """

    event: Decoded[Transaction]
    values: tuple[float, ...]
    late: bool
    seq: int


# Entities of a view are spread over this many Bytewax keys ("shards") by a stable hash of
# their id. Part of the recovery contract: a shard's logged state holds its entities.
SHARDS = 16
_SHARD_NAMES = tuple(f"{i:02d}" for i in range(SHARDS))
# A shard's log is compacted every `_COMPACT_EVERY` generations (~5 min of 1 s epochs;
# shards and views at different ones, as a merge reads every retained event), up to
# `_COMPACT_LAG` generations behind its newest: Bytewax resumes from its last committed
# snapshot, which is at most an epoch or two behind the newest one.
_COMPACT_EVERY = 300
_COMPACT_LAG = 16
# Events a shard logs as a piece of its next generation while the epoch runs (see
# `state_log.StateLog.queue_piece`): pickling each shard's epoch in its snapshot cost the
# worker ~9 ms of its pause per epoch at 5,000 events/s.
_PIECE_EVENTS = 128


def shard_of(entity_id: str) -> str:
    """The shard key of an entity id (the same in every process and release)."""
    return _SHARD_NAMES[zlib.crc32(entity_id.encode()) % SHARDS]


class ViewLogic(StatefulBatchLogic[InFlight, InFlight, tuple[str, int] | None]):
    """Bytewax logic of one shard of one view: the kernel over each entity's window state.

    With recovery on (`state_log.active()`), each snapshot logs the events the shard's
    states took in since the last one (most of them already, in pieces, as they came) and
    gives Bytewax (shard, generation); a resumed shard replays its log up to the generation
    Bytewax restored (see `streams.state_log`).
    Bytewax does not tell a builder its key: a new shard learns it from its first event.
    """

    def __init__(self, kernel: ViewKernel, step: str, resume_state: Any) -> None:
        self._kernel = kernel
        self._field = kernel.view.entity.key_field
        self._step = step
        self._shard: str | None = None
        self._states: dict[str, WindowState] = {}
        self._log = state_log.active()
        self._gen = 0
        self._entered: list[tuple[str, int, tuple[Any, ...]]] = []  # since the last snapshot
        self._stagger = 0
        if resume_state is None:
            return
        if not (isinstance(resume_state, tuple) and len(resume_state) == 2):
            msg = (
                f"recovery state of step {step!r} is from an earlier release (one snapshot "
                f"per entity): {state_log.REBUILD}"
            )
            raise StreamsError(msg)
        if self._log is None:
            msg = f"step {step!r} has recovery state but no state log is open (run it with "
            msg += "`streams.runner.run_dataflow(..., recovery_dir=...)`)"
            raise StreamsError(msg)
        self._shard, self._gen = resume_state
        self._stagger = _stagger(step, self._shard)
        for blob in self._log.resume(step, self._shard, self._gen):
            self._replay(blob)

    def on_batch(self, values: list[InFlight]) -> tuple[list[InFlight], bool]:
        kernel, states, field = self._kernel, self._states, self._field
        entered = self._entered if self._log is not None else None
        out = []
        # Upstream keyed steps emit a batch grouped by their own key; put this shard's
        # events back in the order the source handed them out (`streams.merge`).
        if len(values) > 1:
            values = sorted(values, key=_handed_out)
        if self._shard is None:
            self._start(shard_of(str(getattr(values[0].event.record, field))))
        for item in values:
            event = item.event.record
            entity = str(getattr(event, field))
            state = states.get(entity)
            if state is None:
                state = states[entity] = kernel.new_state()
            extracted = kernel.extract(event)
            view_values, late = kernel.apply(state, event.event_time, extracted)
            if entered is not None and not late:  # a late event leaves the state as it was
                entered.append((entity, event.event_time, extracted))
            out.append(InFlight(item.event, item.values + view_values, item.late or late, item.seq))
        log, shard = self._log, self._shard
        if log is not None and shard is not None and len(self._entered) >= _PIECE_EVENTS:
            # Logged off this thread while the epoch runs: the snapshot pickles only the rest.
            piece, self._entered = self._entered, []
            log.queue_piece(self._step, shard, self._gen + 1, partial(pickle.dumps, piece, _PICKLE))
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self) -> tuple[str, int] | None:
        log, shard = self._log, self._shard
        if log is None or shard is None:
            return None
        self._gen += 1
        entered, self._entered = self._entered, []
        # Written by the sink's snapshot, before Bytewax commits the epoch (state_log.flush).
        log.stage(self._step, shard, self._gen, pickle.dumps(entered, _PICKLE))
        if (self._gen + self._stagger) % _COMPACT_EVERY == 0 and self._gen > _COMPACT_LAG:
            retention_ms = self._kernel.retention_ms
            log.compact(
                self._step,
                shard,
                self._gen - _COMPACT_LAG,
                lambda blobs: merge_entered(blobs, retention_ms),
            )
        return (shard, self._gen)

    def _start(self, shard: str) -> None:
        """A new shard's first events: whatever a log holds of an earlier run goes."""
        self._shard = shard
        self._stagger = _stagger(self._step, shard)
        if self._log is not None:
            self._log.resume(self._step, shard, 0)

    def _replay(self, blob: bytes) -> None:
        kernel, states, shard = self._kernel, self._states, self._shard
        for entity, event_time, extracted in pickle.loads(blob):
            state = states.get(entity)
            if state is None:
                if shard_of(entity) != shard:
                    msg = f"state log of {self._step!r}/{shard!r} holds entity {entity!r} of "
                    msg += f"shard {shard_of(entity)!r}: was SHARDS changed?"
                    raise StreamsError(msg)
                state = states[entity] = kernel.new_state()
            kernel.apply(state, event_time, extracted)


def _stagger(step: str, shard: str) -> int:
    """Where in the compaction cycle this shard of this step compacts."""
    return (zlib.crc32(step.encode()) + int(shard) * _COMPACT_EVERY // SHARDS) % _COMPACT_EVERY


def merge_entered(blobs: list[bytes], retention_ms: int) -> list[bytes]:
    """Logged generations merged, without the events their entity's state has evicted.

    An event at or before its entity's newest event time minus the retention is past
    every window the state computes from then on (and states evict it lazily). Runs on
    the state log's thread beside the worker: it reads each blob twice rather than
    holding them all, writes parts of at most `_MERGED_PART` events (more only when there
    are fewer blobs than parts), and lets the worker run between blobs.
    """
    newest: dict[str, int] = {}
    total = 0
    for blob in blobs:
        events = pickle.loads(blob)
        total += len(events)
        for entity, event_time, _ in events:
            if event_time > newest.get(entity, event_time - 1):
                newest[entity] = event_time
        time.sleep(_YIELD_S)
    part_size = max(_MERGED_PART, -(-total // len(blobs)))
    parts: list[bytes] = []
    part: list[tuple[str, int, tuple[Any, ...]]] = []
    for blob in blobs:
        part += [e for e in pickle.loads(blob) if e[1] > newest[e[0]] - retention_ms]
        while len(part) >= part_size:
            parts.append(pickle.dumps(part[:part_size], _PICKLE))
            part = part[part_size:]
        time.sleep(_YIELD_S)
    if part or not parts:
        parts.append(pickle.dumps(part, _PICKLE))
    return parts


_MERGED_PART = 10_000  # events per merged blob: a few ms to (un)pickle
_YIELD_S = 0.001
_PICKLE = 5


def _handed_out(item: InFlight) -> int:
    return item.seq


def start(compiled: CompiledFeatureSet, event: Decoded[Transaction], seq: int) -> InFlight:
    """The event (the `seq`-th handed out) with its request-time features, for the first view."""
    return InFlight(event, compiled.request.compute(event.record), False, seq)


def assemble(compiled: CompiledFeatureSet, item: InFlight, *, computed_at: int) -> FeatureVector:
    """The finished vector: keys, provenance, and values in definition order."""
    event = item.event.record
    return FeatureVector(
        event_id=event.event_id,
        keys=tuple(str(getattr(event, field)) for field in compiled.key_fields),
        event_time=event.event_time,
        source_timestamp=item.event.timestamp,
        source_partition=item.event.partition,
        source_offset=item.event.offset,
        computed_at=computed_at,
        definition_version=compiled.version,
        late=item.late,
        values=item.values,
    )


def shard_key(kernel: ViewKernel) -> Callable[[Decoded[Transaction]], str]:
    """The function giving a decoded event's shard key for this view."""
    field = kernel.view.entity.key_field
    return lambda event: shard_of(str(getattr(event.record, field)))
