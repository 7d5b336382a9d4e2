"""The keyed drift step: one `WindowedDrift` per model version, checkpointed as plain data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bytewax.operators import StatefulBatchLogic

from serving.drift import DriftConfig, DriftMetric, WindowedDrift
from streams.scoring.microbatch import DriftBatch

__all__ = ["DriftLogic"]


class DriftLogic(StatefulBatchLogic[DriftBatch, DriftMetric, dict[str, Any]]):
    """Bin counts of one model version (the step key); emits metrics of closed windows.

    `partitions` are the source partitions whose progress the watermark waits for. The
    reference comes with each batch (it is fixed per version), so a restored state
    rebuilds its accumulator from the first batch after the restart.
    """

    def __init__(
        self,
        config: DriftConfig,
        resume_state: dict[str, Any] | None,
        *,
        partitions: Sequence[int] = (),
    ) -> None:
        self._config = config
        self._partitions = tuple(partitions)
        self._resume = resume_state
        self._drift: WindowedDrift | None = None

    def on_batch(self, values: list[DriftBatch]) -> tuple[list[DriftMetric], bool]:
        out: list[DriftMetric] = []
        for batch in values:
            if self._drift is None:
                self._drift = WindowedDrift(
                    batch.reference,
                    self._config,
                    partitions=self._partitions,
                    state=self._resume,
                )
            out.extend(self._drift.add(batch.event_times, batch.x, batch.scores, batch.partitions))
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self) -> dict[str, Any]:
        if self._drift is None:
            return dict(self._resume or {})
        return self._drift.state()
