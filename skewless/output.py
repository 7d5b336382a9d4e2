"""Console and `--json PATH` output shared by every command that reports figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

__all__ = ["console", "err_console", "write_json"]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def write_json(path: Path | None, data: Any) -> None:
    """Write `data` as indented JSON to `path` (no-op when `path` is None)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
