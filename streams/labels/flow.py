"""The labels dataflow: `labels` topic → decode/validate → Delta `labels` table.

Labels arrive days after their transactions and are appended as they come; the training
set builder decides which were known at a cutoff (`label_time`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeGuard, cast

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from schemas.contracts import codec_for, registry_client
from schemas.records import DeadLetter, Label
from streams import delta_tables
from streams.features.decode import Decoded, decode_label
from streams.sinks.commit_interval import IntervalCommits
from streams.sinks.dead_letter import DeadLetterTarget, output_dead_letters
from streams.sinks.delta_appender import DeltaAppender
from streams.sinks.delta_commits import BackgroundCommits

__all__ = ["build_labels_flow"]


@dataclass(frozen=True)
class _Target:
    root: str
    storage: dict[str, str] | None
    app_id: str
    commit_interval: timedelta


class _LabelsPartition(StatefulSinkPartition[Decoded[Label], dict[str, Any]]):
    """The labels table's appender, committed off the worker thread every interval."""

    def __init__(self, target: _Target, resume: dict[str, Any] | None) -> None:
        self._appender = DeltaAppender(
            delta_tables.table_uri(target.root, delta_tables.LABELS),
            delta_tables.labels_schema(),
            app_id=target.app_id,
            partition_by=["label_date"],
            resume_version=(resume or {}).get("labels"),
            storage_options=target.storage,
        )
        commits = BackgroundCommits({"labels": self._appender}, log_key=target.app_id)
        commits.restore(resume)
        self._commits = IntervalCommits(commits, target.commit_interval, full_rows=_FULL_ROWS)

    def write_batch(self, values: list[Decoded[Label]]) -> None:
        rows = [
            (d.record, d.partition, d.offset)
            for d in values
            if self._appender.accepts(d.partition, d.offset)
        ]
        if rows:
            self._appender.add_rows(rows, delta_tables.LABEL_ROWS)
            self._commits.added(self._appender.rows_buffered)

    def snapshot(self) -> dict[str, Any]:
        return self._commits.snapshot()

    def close(self) -> None:
        self._commits.close()


_FULL_ROWS = 50_000  # labels buffered before a commit between snapshots


class _LabelsSink(FixedPartitionedSink[Decoded[Label], dict[str, Any]]):
    def __init__(self, target: _Target) -> None:
        self._target = target

    def list_parts(self) -> list[str]:
        return ["labels"]

    def build_part(
        self, step_id: str, for_part: str, resume_state: dict[str, Any] | None
    ) -> _LabelsPartition:
        return _LabelsPartition(self._target, resume_state)


def _is_valid(item: Decoded[Label] | DeadLetter) -> TypeGuard[Decoded[Label]]:
    return isinstance(item, Decoded)


def build_labels_flow(
    source: Source[Any],
    *,
    delta_root: str,
    storage_options: dict[str, str] | None = None,
    dead_letters: DeadLetterTarget | None,
    app_id: str = "skewless-labels",
    schema_registry: dict[str, str] | None = None,
    commit_interval: timedelta = timedelta(0),
) -> Dataflow:
    """The dataflow appending every valid label once to the Delta labels table.

    Committed every `commit_interval` (0: every epoch; see `streams.sinks.commit_interval`).
    """
    codec = codec_for("Label", registry=registry_client(schema_registry))
    decode = decode_label(codec, step="labels_decode")
    flow = Dataflow("labels")
    raw = op.input("labels_source", flow, source)
    decoded = op.map("labels_decode", raw, decode)
    split = op.branch("labels_split", decoded, _is_valid)
    keyed: Stream[tuple[str, Decoded[Label]]] = op.map(
        "labels_key", split.trues, lambda d: ("labels", d)
    )
    target = _Target(delta_root, storage_options, app_id, commit_interval)
    op.output("labels_delta", keyed, _LabelsSink(target))
    if dead_letters is not None:
        output_dead_letters(
            "labels_dead_letter", cast("Stream[DeadLetter]", split.falses), dead_letters
        )
    return flow
