"""Window kernels alone: microseconds per event per view, and what a window's length costs.

(a) The fraud feature set's views over the first `--events` transactions of the features
    benchmark's world, one `ViewKernel.apply` per event on states keyed by entity, with
    strings as the Avro decoder gives them (interned). Floor, same run: the loop that only
    appends each event's source values to its entity's lists (the least a state costs).
(b) One hot merchant whose 1 h window holds N events (N = `--window-events`; its 7 d
    window holds every event): after N events, the next `--timed` are timed for a view of
    each function alone. Sums, means and std read exact prefix sums; count-distinct and
    max keep their busy windows counted or ranked (`kernels.COUNTED_FROM`): none grows
    with N. `count` is the floor.

Every figure is the median of `--reps` repetitions.

    python benchmarks/kernels.py --events 150000 --reps 3
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from _common import median, write_result
from rich.console import Console
from rich.table import Table

from schemas.contracts import codec_for
from schemas.features.definition import AggFunction, Aggregation, Entity, FeatureView
from schemas.features.fraud import FRAUD_FEATURES
from schemas.features.kernels import ViewKernel
from schemas.records import Channel, Transaction
from schemas.records_avro import TransactionReader
from streams.generator import World, WorldConfig

_HOUR = timedelta(hours=1)
_HOT_FUNCTIONS: tuple[tuple[AggFunction, timedelta], ...] = (
    ("count", _HOUR),
    ("mean", 7 * 24 * _HOUR),
    ("std", 7 * 24 * _HOUR),
    ("count_distinct", _HOUR),
    ("max", _HOUR),
)


def decoded_world(events: int, seed: int) -> list[Transaction]:
    """The first `events` transactions of the features benchmark's world, as decoded."""
    config = WorldConfig(seed=seed, cards=5_000, merchants=500)
    records = [e.record for e in World.fresh(config).stream(events * 2)]
    txns = [r for r in records if isinstance(r, Transaction)][:events]
    codec, reader = codec_for("Transaction"), TransactionReader()
    out = []
    for txn in txns:
        data = codec.encode(txn.to_avro())
        offset = codec.own_body_offset(data)
        assert offset is not None
        out.append(reader.read(data, offset))
    return out


def per_event_us(run: Callable[[], None], events: int, reps: int) -> float:
    """Median microseconds per event of `run` (which processes `events` events)."""
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return median(times) / events * 1e6


def view_pass(view: FeatureView, txns: Sequence[Transaction]) -> Callable[[], None]:
    """One pass of `view`'s kernel over `txns`, fresh states each time."""
    kernel = ViewKernel(view)
    key = view.entity.key_field

    def run() -> None:
        states: dict[str, Any] = defaultdict(kernel.new_state)
        apply, extract = kernel.apply, kernel.extract
        for txn in txns:
            apply(states[getattr(txn, key)], txn.event_time, extract(txn))

    return run


def floor_pass(view: FeatureView, txns: Sequence[Transaction]) -> Callable[[], None]:
    """Append each event's time and source values to its entity's lists, nothing more."""
    kernel = ViewKernel(view)
    key = view.entity.key_field
    width = len(kernel.sources)

    def run() -> None:
        states: dict[str, list[list[Any]]] = {}
        extract = kernel.extract
        for txn in txns:
            lists = states.get(getattr(txn, key))
            if lists is None:
                lists = states[getattr(txn, key)] = [[] for _ in range(width + 1)]
            lists[0].append(txn.event_time)
            for column, value in zip(lists[1:], extract(txn), strict=True):
                column.append(value)

    return run


def hot_merchant(n: int, timed: int, seed: int) -> list[Transaction]:
    """`n + timed` events of one merchant, spaced so that its 1 h window holds `n`."""
    rng = random.Random(seed)
    spacing = max(1, 3_600_000 // n)
    start = 1_767_225_600_000
    return [
        Transaction(
            event_id=f"e{i}",
            card_id=sys.intern(f"c{rng.randrange(10_000)}"),
            merchant_id="m-hot",
            amount=round(rng.lognormvariate(3.0, 1.2), 2),
            currency="EUR",
            mcc="5411",
            country="DE",
            channel=Channel.POS,
            event_time=start + i * spacing,
            card_country="DE",
            device_id=None,
        )
        for i in range(n + timed)
    ]


def hot_timing(fn: AggFunction, window: timedelta, txns: Sequence[Transaction], n: int) -> float:
    """Microseconds per event of a one-function merchant view over `txns[n:]`, after `n`."""
    source = {"count_distinct": "card_id", "count": None}.get(fn, "amount")
    aggregation = Aggregation(fn, fn, window, source=source)
    entity = Entity("merchant", "merchant_id")
    kernel = ViewKernel(FeatureView("merchant", entity, (aggregation,), timedelta(0)))
    state = kernel.new_state()
    for txn in txns[:n]:
        kernel.apply(state, txn.event_time, kernel.extract(txn))
    timed = txns[n:]
    started = time.perf_counter()
    for txn in timed:
        kernel.apply(state, txn.event_time, kernel.extract(txn))
    return (time.perf_counter() - started) / len(timed) * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--events", type=int, default=150_000)
    add("--reps", type=int, default=3)
    add("--seed", type=int, default=7)
    add("--window-events", type=int, nargs="+", default=[100, 1_000, 10_000, 100_000])
    add("--timed", type=int, default=2_000)
    opts = parser.parse_args(argv)

    txns = decoded_world(opts.events, opts.seed)
    views: dict[str, dict[str, float]] = {}
    for view in FRAUD_FEATURES.views:
        kernel_us = per_event_us(view_pass(view, txns), len(txns), opts.reps)
        floor_us = per_event_us(floor_pass(view, txns), len(txns), opts.reps)
        views[view.name] = {"kernel_us": kernel_us, "floor_us": floor_us}

    hot: dict[str, dict[str, float]] = {}
    for n in opts.window_events:
        events = hot_merchant(n, opts.timed, opts.seed)
        hot[str(n)] = {
            fn: median([hot_timing(fn, w, events, n) for _ in range(opts.reps)])
            for fn, w in _HOT_FUNCTIONS
        }

    path = write_result(
        "kernels", {"options": vars(opts), "events": len(txns), "views": views, "hot": hot}
    )
    console = Console()
    table = Table(title=f"window kernels, µs per event ({len(txns):,} events)")
    for column in ("view", "kernel", "floor (append only)", "kernel / floor"):
        table.add_column(column, justify="right")
    for name, v in views.items():
        ratio = v["kernel_us"] / v["floor_us"]
        table.add_row(name, f"{v['kernel_us']:.2f}", f"{v['floor_us']:.2f}", f"{ratio:.1f}x")
    console.print(table)
    table = Table(title="one hot merchant: µs per event by events in its 1 h window")
    table.add_column("function (window)")
    for n in opts.window_events:
        table.add_column(f"{n:,}", justify="right")
    for fn, window in _HOT_FUNCTIONS:
        label = f"{fn} ({'7 d' if window > _HOUR else '1 h'})"
        table.add_row(label, *(f"{hot[str(n)][fn]:.2f}" for n in opts.window_events))
    console.print(table)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
