"""Render a `ReportData` to one self-contained HTML file (inline SVG, no external assets)."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from skewless.report.data import ModelCard, ReportData
from skewless.report.plots import PLOT_FUNCTIONS

__all__ = ["PLOTS", "render_report"]

PLOTS = tuple(PLOT_FUNCTIONS)

_CAPTIONS = {
    "roc": "ROC curves on the time-ordered test split: champion, challenger, rules baseline.",
    "pr": "Precision-recall on the same split (fraud is rare: this is the curve that matters).",
    "psi": "PSI per feature and for the score per event-time window, with warn/alert lines.",
    "scores": "Score distributions per model variant on the streamed predictions.",
    "latency": "Source transaction produced → prediction produced, per prediction.",
    "throughput": "Predictions per second over the scoring run.",
}

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #1b1f24; padding: 0 1rem; }
h1 { margin-bottom: .2rem } .muted { color: #57606a }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 1rem; }
figure.plot { margin: 0; border: 1px solid #d0d7de; border-radius: 6px; padding: .5rem; }
figure.plot svg { width: 100%; height: auto; }
figcaption { font-size: 13px; color: #57606a; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: 14px; }
td, th { border: 1px solid #d0d7de; padding: .25rem .6rem; text-align: left; }
th { background: #f6f8fa; } code { font-size: 12px; }
"""

# After load, record which plots actually rendered with a visible size (the render test
# and anyone opening the file can read it from <body data-plots-rendered>).
_PROBE = """
<script>
window.addEventListener("load", () => {
  const shown = [...document.querySelectorAll("figure.plot")].filter(f => {
    const svg = f.querySelector("svg"); if (!svg) return false;
    const box = svg.getBoundingClientRect(); return box.width > 50 && box.height > 50;
  }).map(f => f.dataset.plot);
  document.body.dataset.plotsRendered = shown.join(",");
});
</script>
"""


def _flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested summary figures as `a.b` rows; floats to 4 significant digits."""
    rows: list[tuple[str, str]] = []
    for key, value in sorted(values.items()):
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flatten(value, f"{name}.")
        elif isinstance(value, float):
            rows.append((name, f"{value:.4g}"))
        else:
            rows.append((name, value if isinstance(value, str) else json.dumps(value)))
    return rows


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _card(card: ModelCard) -> str:
    aliases = ", ".join(card.aliases) or "—"
    metrics = _table([(k, f"{v:.4f}") for k, v in sorted(card.metrics.items())])
    lineage = _table(
        [(k, f"<code>{html.escape(str(v))}</code>") for k, v in sorted(card.lineage.items())]
    )
    title = f"{html.escape(card.name)} v{html.escape(card.version)}"
    return (
        f'<section class="card"><h3>{title} <span class="muted">({html.escape(aliases)})'
        f"</span></h3><h4>Metrics</h4>{metrics}<h4>Lineage</h4>{lineage}</section>"
    )


def render_report(data: ReportData, path: Path) -> Path:
    """Write the report to `path` and return it."""
    generated = datetime.fromtimestamp(data.generated_at or 0, tz=UTC).isoformat()
    figures = "".join(
        f'<figure class="plot" data-plot="{name}">{draw(data)}'
        f"<figcaption>{html.escape(_CAPTIONS[name])}</figcaption></figure>"
        for name, draw in PLOT_FUNCTIONS.items()
    )
    summary = _table([(k, html.escape(v)) for k, v in _flatten(data.summary)])
    cards = "".join(_card(c) for c in data.models) or "<p>No registered models.</p>"
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(data.title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(data.title)}</h1><p class='muted'>generated {generated}</p>"
        f"<h2>Summary</h2>{summary}<h2>Plots</h2><div class='grid'>{figures}</div>"
        f"<h2>Model cards and lineage</h2>{cards}{_PROBE}</body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
