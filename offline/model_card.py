"""The model card: a training run's metrics vs the baseline, thresholds, data and lineage.

The card is the JSON-able dict the pipeline builds (`model_card.json` in the run); this
module renders it as Markdown (`model_card.md`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["METRIC_LABELS", "model_card_markdown"]

METRIC_LABELS = {
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "recall_at_1pct_fpr": "recall @ 1% FPR",
}


def _cell(value: Any) -> str:
    return "—" if value is None else f"{value:.4f}"


def model_card_markdown(card: Mapping[str, Any]) -> str:
    """Markdown text of a model card dict."""
    model, baseline, champion = card["model"], card["baseline"], card.get("champion")
    columns = ["model", "rules baseline"] + (
        [f"champion v{card['champion_version']}"] if champion else []
    )
    lines = [
        "# skewless fraud model",
        "",
        f"Test split: {model['rows']:,} rows, {model['positives']:,} fraud (time-ordered, "
        "after the validation split).",
        "",
        "| metric | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for key, label in METRIC_LABELS.items():
        row = [model[key], baseline[key]] + ([champion[key]] if champion else [])
        lines.append(f"| {label} | " + " | ".join(_cell(v) for v in row) + " |")
    t, on_test = card["thresholds"], card["decision_on_test"]
    lines += [
        "",
        "## Decision thresholds (chosen on the validation split)",
        f"- decline: score >= {t['decision']:.6g} ({t['rule']}; validation precision "
        f"{t['precision']:.3f}, recall {t['recall']:.3f})",
        f"- review: score >= {t['review']:.6g} (validation FPR {t['review_fpr']:.4f})",
        f"- on test: precision {on_test['precision']:.3f}, recall {on_test['recall']:.3f}, "
        f"decline rate {on_test['decline_rate']:.4%}, review rate {on_test['review_rate']:.4%}",
        "",
        "## Gates",
    ]
    for gate in card["gates"]["results"]:
        verdict = "pass" if gate["passed"] else "**FAIL**"
        lines.append(
            f"- {gate['gate']}: {verdict} (expected {gate['expected']}, got {gate['got']})"
        )
    data, lineage = card["data"], card["lineage"]
    lines += [
        "",
        "## Data and lineage",
        f"- rows: {data['counts']} positives: {data['positives']}",
        f"- data version: `{lineage['data_version']}`",
        f"- feature definition: `{lineage['definition_version']}`",
        f"- training set fingerprint: `{lineage['training_set_fingerprint']}`",
        f"- git commit: `{lineage['git_commit']}`",
        f"- cutoff: {data['cutoff_ms']} ms, label maturity {data['maturity_ms']} ms",
        f"- ONNX parity (torch vs onnxruntime, test): max |diff| "
        f"{card['parity']['max_abs_diff']:.3g}",
        "",
        "## Rules baseline",
        *(f"- {rule}" for rule in card["baseline_rules"]),
        "",
    ]
    return "\n".join(lines)
