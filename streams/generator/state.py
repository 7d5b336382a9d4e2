"""The continuation state: where the simulated clock stopped, so the next run goes on.

Saved as JSON (atomically) after a run: the world config, the next hour window and how
many of its releases were produced, the next event index, the simulated clock, the
transactions held back by late delivery past that window, and the labels not yet due.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.records import Label, Transaction
from streams.generator.config import WorldConfig
from streams.generator.errors import GeneratorError

__all__ = [
    "STATE_VERSION",
    "GeneratorState",
    "HeldEvent",
    "PendingLabel",
    "load_state",
    "save_state",
]

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class HeldEvent:
    """A generated transaction not produced yet: it is delivered after its window ended."""

    produced_at: int
    window: int
    ordinal: int
    transaction: Transaction
    pattern: int
    label_delay: int  # ms after event time, -1 for no chargeback


@dataclass(frozen=True, slots=True)
class PendingLabel:
    """A chargeback waiting for the simulated clock to pass its label time."""

    label: Label
    key: str
    index: int  # the labelled transaction's global event index


@dataclass(frozen=True, slots=True, kw_only=True)
class GeneratorState:
    """Everything the next run needs to extend the same history."""

    config: WorldConfig
    window: int = 0
    offset: int = 0  # releases of `window` already produced
    next_index: int = 0
    clock_ms: int = 0  # simulated production time of the last event (0: none yet)
    held: tuple[HeldEvent, ...] = ()  # carried into `window`
    pending_labels: tuple[PendingLabel, ...] = ()


def _encode(state: GeneratorState) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "config": state.config.to_json(),
        "window": state.window,
        "offset": state.offset,
        "next_index": state.next_index,
        "clock_ms": state.clock_ms,
        "held": [
            {
                "produced_at": h.produced_at,
                "window": h.window,
                "ordinal": h.ordinal,
                "transaction": h.transaction.to_avro(),
                "pattern": h.pattern,
                "label_delay": h.label_delay,
            }
            for h in state.held
        ],
        "pending_labels": [
            {"label": p.label.to_avro(), "key": p.key, "index": p.index}
            for p in state.pending_labels
        ],
    }


def _decode(data: dict[str, Any]) -> GeneratorState:
    return GeneratorState(
        config=WorldConfig.from_json(data["config"]),
        window=int(data["window"]),
        offset=int(data["offset"]),
        next_index=int(data["next_index"]),
        clock_ms=int(data["clock_ms"]),
        held=tuple(
            HeldEvent(
                produced_at=int(h["produced_at"]),
                window=int(h["window"]),
                ordinal=int(h["ordinal"]),
                transaction=Transaction.from_avro(h["transaction"]),
                pattern=int(h["pattern"]),
                label_delay=int(h["label_delay"]),
            )
            for h in data["held"]
        ),
        pending_labels=tuple(
            PendingLabel(label=Label.from_avro(p["label"]), key=p["key"], index=int(p["index"]))
            for p in data["pending_labels"]
        ),
    )


def load_state(path: Path) -> GeneratorState | None:
    """The state saved at `path`, or None if there is none; a broken file is an error."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        if data.get("version") != STATE_VERSION:
            msg = f"version {data.get('version')!r}, expected {STATE_VERSION}"
            raise ValueError(msg)
        return _decode(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        msg = f"generator state {str(path)!r} is unreadable ({exc}); start over with --reset"
        raise GeneratorError(msg) from exc


def save_state(path: Path, state: GeneratorState) -> None:
    """Write `state` to `path` atomically (a crash leaves the old state or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_encode(state), separators=(",", ":")) + "\n")
    os.replace(tmp, path)
