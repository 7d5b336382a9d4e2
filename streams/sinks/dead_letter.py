"""The dead-letter sink: bad records, whole, with the reason and their source position."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import bytewax.operators as op
from bytewax.dataflow import Stream
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from schemas.contracts import codec_for, registry_client
from schemas.records import DeadLetter
from streams.sinks.kafka_outbox import KafkaOutbox

__all__ = ["DeadLetterSink", "DeadLetterTarget", "output_dead_letters"]


class _DeadLetterPartition(StatefulSinkPartition[DeadLetter, None]):
    def __init__(
        self,
        client_config: Mapping[str, str],
        topic: str,
        schema_registry: Mapping[str, str] | None,
    ) -> None:
        self._outbox = KafkaOutbox(client_config, topic)
        self._codec = codec_for(
            "DeadLetter", registry=registry_client(schema_registry), topic=topic
        )

    def write_batch(self, values: list[DeadLetter]) -> None:
        for letter in values:
            self._outbox.produce(
                self._codec.encode(letter.to_avro()),
                key=letter.key,
                headers=[
                    (
                        "source",
                        f"{letter.source_topic}/{letter.source_partition}/"
                        f"{letter.source_offset}".encode(),
                    ),
                ],
            )

    def snapshot(self) -> None:
        self._outbox.flush()

    def close(self) -> None:
        self._outbox.flush()


class DeadLetterSink(FixedPartitionedSink[DeadLetter, None]):
    """Produces `DeadLetter` records; flushed at every snapshot (at-least-once)."""

    def __init__(
        self,
        client_config: Mapping[str, str],
        topic: str,
        *,
        schema_registry: Mapping[str, str] | None = None,
    ) -> None:
        self._config = dict(client_config)
        self._topic = topic
        self._registry = dict(schema_registry) if schema_registry else None

    def list_parts(self) -> list[str]:
        return ["dead-letter"]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _DeadLetterPartition:
        return _DeadLetterPartition(self._config, self._topic, self._registry)


@dataclass(frozen=True)
class DeadLetterTarget:
    """Where records that fail decoding or validation go."""

    client_config: Mapping[str, str]
    topic: str
    schema_registry: Mapping[str, str] | None = None


def output_dead_letters(
    step_id: str, letters: Stream[DeadLetter], target: DeadLetterTarget
) -> None:
    """Route `letters` to `target`'s topic: step `step_id`, keyed by source partition."""
    keyed: Stream[tuple[str, DeadLetter]] = op.map(
        f"{step_id}_key", letters, lambda d: (str(d.source_partition), d)
    )
    sink = DeadLetterSink(
        target.client_config, target.topic, schema_registry=target.schema_registry
    )
    op.output(step_id, keyed, sink)
