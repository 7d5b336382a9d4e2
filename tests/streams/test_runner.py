"""`run_dataflow`: runs a flow to the end and leaves the process's GC settings as found."""

from __future__ import annotations

import gc

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource

from streams.runner import run_dataflow


def test_runs_to_the_end_and_restores_the_collector_settings() -> None:
    before = gc.get_threshold()
    seen: list[tuple[int, int]] = []
    flow = Dataflow("runner")
    items = op.input("in", flow, TestingSource(range(1_000), batch_size=64))
    doubled = op.map("double", items, lambda x: (x, 2 * x))
    op.output("out", doubled, TestingSink(seen))

    run_dataflow(flow)

    assert seen == [(x, 2 * x) for x in range(1_000)]
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
