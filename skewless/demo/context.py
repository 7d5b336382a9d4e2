"""What every demo step shares: settings, endpoints, the simulated world, and timings."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from skewless.endpoints import Endpoints, kafka_config
from skewless.output import console
from skewless.settings import Settings
from streams.generator import GeneratorState, World, WorldConfig

__all__ = ["DEMO_WORLD", "DemoContext"]

T = TypeVar("T")

# About 5,000 transactions a simulated day: a month of history is 150,000 events, enough
# for chargebacks (1-30 days late) to mature inside it.
DEMO_WORLD = WorldConfig(seed=7, events_per_day=5_000, cards=3_000, merchants=600)


@dataclass
class DemoContext:
    """The demo's run: where it lives, what it reaches, and what it measured so far."""

    settings: Settings
    endpoints: Endpoints
    home: Path
    world: World = field(default_factory=lambda: World(GeneratorState(config=DEMO_WORLD)))
    timings: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def kafka(self) -> dict[str, str]:
        return kafka_config(self.settings, self.endpoints)

    def step(self, title: str, action: Callable[[], T]) -> T:
        """Run one step under a spinner and record its wall time."""
        started = time.perf_counter()
        with console.status(f"[bold]{title}[/] …"):
            result = action()
        self.timings[title] = round(time.perf_counter() - started, 2)
        console.print(f"[green]✓[/] {title} [dim]({self.timings[title]:.1f}s)[/]")
        return result
