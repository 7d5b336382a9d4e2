"""The feature dataflow: source → decode/validate → one keyed step per view → the stores.

Step ids derive from the feature set's name and never from anything that changes between
runs, because they key the recovery state (renaming one orphans its snapshots).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any, TypeGuard, cast

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source

from schemas.codec import AvroCodec
from schemas.contracts import codec_for, registry_client
from schemas.features import CompiledFeatureSet
from schemas.records import DeadLetter, Transaction
from streams.features.decode import Decoded, decode_transaction
from streams.features.steps import InFlight, ViewLogic, assemble, shard_key, start
from streams.heartbeat import Heartbeat
from streams.sinks.dead_letter import DeadLetterTarget, output_dead_letters
from streams.sinks.feature_store import FeatureStoreConfig, FeatureStoreSink, StoreItem
from streams.sources import DeltaTransactionsSource, KafkaTransactions

__all__ = ["build_feature_flow", "step_ids"]


def _is_valid(item: Decoded[Transaction] | DeadLetter) -> TypeGuard[Decoded[Transaction]]:
    return isinstance(item, Decoded)


def _rekey(
    key: Callable[[Decoded[Transaction]], str],
) -> Callable[[tuple[str, InFlight]], tuple[str, InFlight]]:
    return lambda kv: (key(kv[1].event), kv[1])


def step_ids(name: str) -> dict[str, str]:
    """The stable step ids of the feature dataflow of feature set `name`."""
    return {
        # Renamed when the source began merging partitions: Bytewax panics on a snapshot
        # of a source partition the source no longer lists, and under a new step id the
        # old ones are not read (the source then refuses the rest of the old state).
        "source": f"{name}_merged_source",
        "decode": f"{name}_decode",
        "split": f"{name}_split",
        "assemble": f"{name}_assemble",
        "stores": f"{name}_stores",
        "dead_letter": f"{name}_dead_letter",
        "heartbeat": f"{name}_heartbeat",
    }


def build_feature_flow(
    stores: FeatureStoreConfig,
    source: KafkaTransactions | DeltaTransactionsSource,
    *,
    dead_letters: DeadLetterTarget | None,
    sink_partitions: int = 1,
    codec: AvroCodec | None = None,
) -> Dataflow:
    """The dataflow computing `stores.feature_set` once per event into every store.

    `source` is the transactions topic (decoded as the source reads it: the merge needs
    each record's event time) or a replay of the raw Delta table.
    """
    fs = stores.feature_set
    compiled = CompiledFeatureSet(fs)
    ids = step_ids(fs.name)
    bytewax_source: Source[Decoded[Transaction] | DeadLetter]
    if isinstance(source, KafkaTransactions):
        if codec is None:
            codec = codec_for("Transaction", registry=registry_client(stores.schema_registry))
        bytewax_source = source.source(decode_transaction(codec, step=ids["decode"]))
    else:  # yields only valid transactions
        bytewax_source = cast("Source[Decoded[Transaction] | DeadLetter]", source)

    flow = Dataflow(f"{fs.name}-features")
    transactions = op.input(ids["source"], flow, bytewax_source)
    split = op.branch(ids["split"], transactions, _is_valid)
    valid = split.trues
    invalid = cast("Stream[DeadLetter]", split.falses)

    # Each hop re-keys in one map: (previous key, event) → (this view's shard key, event).
    # Events are numbered in the order the source hands them out, which each view step
    # restores within a batch (the source runs on one worker: one counter numbers them all).
    views = compiled.views
    first_key = shard_key(views[0])
    numbers = itertools.count()
    keyed: Stream[tuple[str, InFlight]] = op.map(
        f"{fs.name}_{views[0].view.name}_key",
        valid,
        lambda d: (first_key(d), start(compiled, d, next(numbers))),
    )
    for index, kernel in enumerate(views):
        step = f"{fs.name}_{kernel.view.name}_state"

        def builder(resume: Any, kernel: Any = kernel, step: str = step) -> ViewLogic:
            return ViewLogic(kernel, step, resume)

        stepped = op.stateful_batch(step, keyed, builder)
        if index + 1 < len(views):
            keyed = op.map(
                f"{fs.name}_{views[index + 1].view.name}_key",
                stepped,
                _rekey(shard_key(views[index + 1])),
            )

    def finish(items: list[tuple[str, InFlight]]) -> list[tuple[str, StoreItem]]:
        computed_at = int(time.time() * 1000)  # one clock read per batch
        out = []
        for _, item in items:
            vector = assemble(compiled, item, computed_at=computed_at)
            out.append((vector.keys[0], (vector, item.event)))
        return out

    finished = op.flat_map_batch(ids["assemble"], stepped, finish)
    op.output(ids["stores"], finished, FeatureStoreSink(stores, partitions=sink_partitions))

    if dead_letters is not None:
        output_dead_letters(ids["dead_letter"], invalid, dead_letters)
    if isinstance(source, KafkaTransactions) and not source.bounded and sink_partitions > 1:
        # The deferred commits of sink partitions on threads the source does not poll on.
        op.input(ids["heartbeat"], flow, Heartbeat())
    return flow
