"""The demo's closing summary table."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from skewless.output import console

__all__ = ["print_summary"]


def print_summary(result: dict[str, Any]) -> None:
    """Print the headline figures of a demo run."""
    model, scoring, drift = result["model"], result["scoring"], result["drift"]
    table = Table(title="skewless demo", show_header=False)
    skew = result["skew_mismatches"]
    rows = [
        ("events through the feature pipeline", f"{result['events']:,}"),
        ("skew mismatches (Redis vs Delta)", f"[{'green' if skew == 0 else 'red'}]{skew}[/]"),
        ("champion ROC-AUC / PR-AUC", f"{model['roc_auc']:.3f} / {model['pr_auc']:.3f}"),
        ("rules baseline PR-AUC", f"{model['baseline_pr_auc']:.3f}"),
        ("scoring throughput (predictions/s)", f"{scoring['predictions_per_s']:,.0f}"),
        (
            f"event → prediction at {scoring['live_offered_per_s']:,.0f}/s, p50 / p99 ms",
            f"{scoring['latency_ms']['p50']:.1f} / {scoring['latency_ms']['p99']:.1f}",
        ),
        (
            "drift alerts (drifted / before / windows filling)",
            f"{drift['alerts']} / {drift['alerts_before_drift']} / "
            f"{drift['alerts_while_warming_up']}",
        ),
        ("challenger gates", result["challenger"]["gates"]),
        ("rollout decision", result["rollout"]["decision"]),
        ("report", result["report"]),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
