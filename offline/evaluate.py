"""Model evaluation: ranking metrics, decision thresholds, a rules baseline, ROC/PR curves.

- `evaluate(scores, y)`: ROC-AUC, PR-AUC (average precision) and recall at 1% FPR.
- `choose_thresholds(scores, y)`: on the validation split, the decline threshold is the
  lowest score whose precision reaches `decline_precision` (the most recall at that
  precision), else the max-F1 score; the review threshold is the score at which
  `review_fpr` of legitimate traffic would be reviewed, never above the decline one.
- `rules_baseline(x, feature_names)`: what a fraud team writes without a model, a sum of
  transparent amount and velocity rules (`BASELINE_RULES`), scaled to [0, 1].
- `save_curves(...)`: ROC and PR curves of every scored model as PNG files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from offline.errors import OfflineError

__all__ = [
    "BASELINE_RULES",
    "EvaluationError",
    "Metrics",
    "Rule",
    "Thresholds",
    "choose_thresholds",
    "curve_points",
    "evaluate",
    "pr_auc",
    "rules_baseline",
    "save_curves",
]

_FPR_BUDGET = 0.01


class EvaluationError(OfflineError):
    """Scores and labels that cannot be evaluated (shape, single class, unknown feature)."""


@dataclass(frozen=True, slots=True)
class Metrics:
    """Ranking quality of one score on one labelled split."""

    roc_auc: float
    pr_auc: float
    recall_at_1pct_fpr: float
    rows: int
    positives: int

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Decision thresholds on the probability score: decline ≥ `decision`, review ≥ `review`."""

    decision: float
    review: float
    rule: str
    precision: float
    recall: float
    review_fpr: float

    def to_json(self) -> dict[str, float | str]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Rule:
    """One baseline rule: `points` when `feature >= threshold`."""

    feature: str
    threshold: float
    points: float = 1.0

    def describe(self) -> str:
        return f"{self.feature} >= {self.threshold:g} (+{self.points:g})"


BASELINE_RULES: tuple[Rule, ...] = (
    Rule("amount", 500.0),
    Rule("card_amount_zscore_7d", 3.0, 2.0),
    Rule("card_txn_count_10m", 3.0),
    Rule("card_txn_count_1h", 5.0),
    Rule("card_countries_24h", 2.0),
    Rule("is_foreign", 1.0),
    Rule("high_risk_mcc", 1.0),
)


def _check(scores: npt.NDArray[Any], y: npt.NDArray[Any], what: str) -> None:
    if scores.ndim != 1 or scores.shape != y.shape:
        msg = (
            f"{what}: expected 1-d scores and labels of one length, "
            f"got {scores.shape} and {y.shape}"
        )
        raise EvaluationError(msg)
    if not np.isfinite(scores).all():
        msg = f"{what}: {int((~np.isfinite(scores)).sum())} non-finite scores"
        raise EvaluationError(msg)
    positives = int((y == 1).sum())
    if positives == 0 or positives == y.size:
        msg = f"{what}: needs both classes, got {positives} positives in {y.size} rows"
        raise EvaluationError(msg)


def evaluate(scores: npt.NDArray[Any], y: npt.NDArray[Any]) -> Metrics:
    """ROC-AUC, PR-AUC (average precision) and the best recall at FPR ≤ 1%."""
    _check(scores, y, "evaluate")
    fpr, tpr, _ = roc_curve(y, scores)
    return Metrics(
        roc_auc=float(roc_auc_score(y, scores)),
        pr_auc=float(average_precision_score(y, scores)),
        recall_at_1pct_fpr=float(tpr[fpr <= _FPR_BUDGET].max()),
        rows=int(y.size),
        positives=int((y == 1).sum()),
    )


def pr_auc(scores: npt.NDArray[Any], y: npt.NDArray[Any]) -> float:
    """Average precision (the early-stopping signal); 0.0 without positives."""
    if not (y == 1).any():
        return 0.0
    return float(average_precision_score(y, scores))


def choose_thresholds(
    scores: npt.NDArray[Any],
    y: npt.NDArray[Any],
    *,
    decline_precision: float = 0.8,
    review_fpr: float = 0.01,
) -> Thresholds:
    """Decline and review thresholds chosen on a validation split (see the module doc)."""
    _check(scores, y, "choose_thresholds")
    precision, recall, cuts = precision_recall_curve(y, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    reach = np.flatnonzero(precision >= decline_precision)
    if reach.size:
        i = int(reach[0])
        rule = f"precision >= {decline_precision:g}"
    else:
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        i = int(np.argmax(f1))
        rule = "max F1"
    decision = float(cuts[i])
    negatives = np.sort(scores[y == 0])[::-1]
    k = int(np.floor(review_fpr * negatives.size))
    # Scores strictly above the (k+1)-th highest legit score flag at most k legit rows.
    review = float(np.nextafter(negatives[min(k, negatives.size - 1)], np.inf))
    review = min(review, decision)
    return Thresholds(
        decision=decision,
        review=review,
        rule=rule,
        precision=float(precision[i]),
        recall=float(recall[i]),
        review_fpr=float((negatives >= review).mean()),
    )


def rules_baseline(
    x: npt.NDArray[Any], feature_names: Sequence[str], *, rules: Sequence[Rule] = BASELINE_RULES
) -> npt.NDArray[np.float32]:
    """The rule score in [0, 1]: points of the rules a row trips over the points available.

    Rules on features the vector does not have are skipped; none left is an error.
    """
    index = {name: i for i, name in enumerate(feature_names)}
    usable = [rule for rule in rules if rule.feature in index]
    if not usable:
        msg = (
            f"rules baseline: none of the rule features {[r.feature for r in rules]} "
            f"is among the feature names {list(feature_names)}"
        )
        raise EvaluationError(msg)
    points = np.zeros(x.shape[0], dtype=np.float64)
    for rule in usable:
        points += np.where(x[:, index[rule.feature]] >= rule.threshold, rule.points, 0.0)
    return (points / sum(rule.points for rule in usable)).astype(np.float32)


def save_curves(
    y: npt.NDArray[Any], scores: Mapping[str, npt.NDArray[Any]], directory: Path
) -> dict[str, Path]:
    """Write `roc.png` and `pr.png` with one curve per named score; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, s in scores.items():
        _check(s, y, f"curve {name!r}")
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"roc": directory / "roc.png", "pr": directory / "pr.png"}

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, s):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, test split")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(paths["roc"], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, s in scores.items():
        precision, recall, _ = precision_recall_curve(y, s)
        ax.plot(recall, precision, label=f"{name} (AP {average_precision_score(y, s):.3f})")
    ax.axhline(float(np.mean(y)), color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall, test split")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(paths["pr"], dpi=110, bbox_inches="tight")
    plt.close(fig)

    paths["points"] = directory / "curves.json"
    paths["points"].write_text(json.dumps(curve_points(y, scores), indent=1))
    return paths


def curve_points(
    y: npt.NDArray[Any], scores: Mapping[str, npt.NDArray[Any]], *, max_points: int = 200
) -> list[dict[str, Any]]:
    """ROC and PR points per named score, thinned to `max_points` each (for reports)."""

    def thin(xs: npt.NDArray[Any], ys: npt.NDArray[Any]) -> tuple[list[float], list[float]]:
        keep = sorted({*range(0, len(xs), max(1, len(xs) // max_points)), len(xs) - 1})
        return [round(float(xs[i]), 6) for i in keep], [round(float(ys[i]), 6) for i in keep]

    out = []
    for name, s in scores.items():
        fpr, tpr = thin(*roc_curve(y, s)[:2])
        precision, recall = thin(*precision_recall_curve(y, s)[:2])
        out.append(
            {
                "label": name,
                "fpr": fpr,
                "tpr": tpr,
                "recall": recall,
                "precision": precision,
                "roc_auc": float(roc_auc_score(y, s)),
                "pr_auc": float(average_precision_score(y, s)),
            }
        )
    return out
