"""The keyed steps of the feature dataflow: one per feature view, plus vector assembly.

Each view step holds one `WindowState` per entity (Bytewax keyed state, snapshotted for
recovery) and runs the shared kernel on every event of the batch. Events carry a growing
tuple of view results from step to step; the last step builds the `FeatureVector`.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from bytewax.operators import StatefulBatchLogic

from schemas.features import CompiledFeatureSet, FeatureVector, ViewKernel, WindowState
from schemas.records import Transaction
from streams.features.decode import Decoded

__all__ = ["InFlight", "ViewLogic", "assemble"]


class InFlight(msgspec.Struct, frozen=True):
    """An event on its way through the view steps, with each view's values so far."""

    event: Decoded[Transaction]
    values: tuple[float, ...]
    late: bool


class ViewLogic(StatefulBatchLogic[InFlight, InFlight, WindowState]):
    """Bytewax logic of one entity of one view: the kernel over its window state."""

    def __init__(self, kernel: ViewKernel, resume_state: WindowState | None) -> None:
        self._kernel = kernel
        self._state = kernel.new_state() if resume_state is None else kernel.restore(resume_state)

    def on_batch(self, values: list[InFlight]) -> tuple[list[InFlight], bool]:
        kernel, state = self._kernel, self._state
        out = []
        # Upstream keyed steps emit a batch grouped by their own key; put this key's events
        # back in source order so a partition's events update state as they were produced.
        if len(values) > 1:
            values = sorted(values, key=_source_order)
        for item in values:
            event = item.event.record
            view_values, late = kernel.apply(state, event.event_time, kernel.extract(event))
            out.append(InFlight(item.event, item.values + view_values, item.late or late))
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self) -> WindowState:
        return self._state


def _source_order(item: InFlight) -> tuple[int, int]:
    return (item.event.partition, item.event.offset)


def start(compiled: CompiledFeatureSet, event: Decoded[Transaction]) -> InFlight:
    """The event with its request-time features, ready for the first view."""
    return InFlight(event, compiled.request.compute(event.record), False)


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


def entity_of(kernel: ViewKernel) -> Callable[[Decoded[Transaction]], str]:
    """The function giving a decoded event's entity id for this view."""
    field = kernel.view.entity.key_field
    return lambda event: str(getattr(event.record, field))
