"""Promotion gates: may a candidate model become the `challenger`?

A candidate is compared on the *same* test split with the rules baseline and, when there
is one, the current champion (re-scored from its registered ONNX file). Each gate states
what it expected and what it got, so a blocked candidate's report says exactly why:

- `onnx_parity`: torch vs onnxruntime max |diff| ≤ `max_parity_diff`;
- `beats_baseline`: PR-AUC ≥ baseline PR-AUC + `min_lift_over_baseline`;
- `same_features`: the champion reads the same feature vector (else it cannot be compared);
- `pr_auc_vs_champion`: PR-AUC ≥ champion PR-AUC − `pr_auc_tolerance`;
- `recall_vs_champion`: recall at 1% FPR ≥ champion's − max(`recall_tolerance`,
  `recall_noise_z` standard errors). Recall is a proportion of the test positives, so with
  a few hundred frauds one standard error (√(r(1−r)/positives)) is several points: a gate
  tighter than that flips on which handful of frauds landed in the test split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from offline.evaluate import Metrics
from offline.onnx_export import PARITY_TOLERANCE, ParityReport

__all__ = ["GateConfig", "GateReport", "GateResult", "run_gates"]


@dataclass(frozen=True, slots=True)
class GateConfig:
    """Tolerances of the promotion gates (absolute differences of metrics in [0, 1])."""

    pr_auc_tolerance: float = 0.01
    recall_tolerance: float = 0.02
    recall_noise_z: float = 1.0
    min_lift_over_baseline: float = 0.0
    max_parity_diff: float = PARITY_TOLERANCE

    def to_params(self) -> dict[str, str]:
        return {f"gate_{k}": str(v) for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate: passed or not, what was expected and what the candidate got."""

    gate: str
    passed: bool
    expected: str
    got: str

    def describe(self) -> str:
        verdict = "pass" if self.passed else "FAIL"
        return f"{self.gate}: {verdict} (expected {self.expected}, got {self.got})"


@dataclass(frozen=True, slots=True)
class GateReport:
    """All gate results; `has_champion` is False for the first model of a registry."""

    results: tuple[GateResult, ...]
    has_champion: bool

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[GateResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def to_json(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "has_champion": self.has_champion,
            "results": [asdict(r) for r in self.results],
        }


def run_gates(
    candidate: Metrics,
    *,
    baseline: Metrics,
    parity: ParityReport,
    champion: Metrics | None = None,
    champion_features: Sequence[str] | None = None,
    candidate_features: Sequence[str] = (),
    config: GateConfig = GateConfig(),
) -> GateReport:
    """Evaluate every gate; champion gates apply only when a champion exists."""
    results = [
        GateResult(
            "onnx_parity",
            parity.max_abs_diff <= config.max_parity_diff,
            f"max |torch - onnx| <= {config.max_parity_diff:g}",
            f"{parity.max_abs_diff:.3g}",
        ),
        GateResult(
            "beats_baseline",
            candidate.pr_auc >= baseline.pr_auc + config.min_lift_over_baseline,
            f"PR-AUC >= {baseline.pr_auc + config.min_lift_over_baseline:.4f} "
            f"(baseline {baseline.pr_auc:.4f} + {config.min_lift_over_baseline:g})",
            f"{candidate.pr_auc:.4f}",
        ),
    ]
    has_champion = champion is not None or champion_features is not None
    if champion_features is not None and tuple(champion_features) != tuple(candidate_features):
        results.append(
            GateResult(
                "same_features",
                False,
                f"the champion's {len(champion_features)} features",
                f"{len(candidate_features)} features, differing in "
                f"{sorted(set(champion_features) ^ set(candidate_features)) or 'order'}",
            )
        )
    elif champion is not None:
        pr_floor = champion.pr_auc - config.pr_auc_tolerance
        recall = champion.recall_at_1pct_fpr
        noise = config.recall_noise_z * math.sqrt(
            recall * (1.0 - recall) / max(champion.positives, 1)
        )
        allowance = max(config.recall_tolerance, noise)
        recall_floor = recall - allowance
        results += [
            GateResult(
                "pr_auc_vs_champion",
                candidate.pr_auc >= pr_floor,
                f"PR-AUC >= {pr_floor:.4f} (champion {champion.pr_auc:.4f} "
                f"- {config.pr_auc_tolerance:g})",
                f"{candidate.pr_auc:.4f}",
            ),
            GateResult(
                "recall_vs_champion",
                candidate.recall_at_1pct_fpr >= recall_floor,
                f"recall@1%FPR >= {recall_floor:.4f} (champion {recall:.4f} - "
                f"max({config.recall_tolerance:g}, {config.recall_noise_z:g} SE = {noise:.4f}))",
                f"{candidate.recall_at_1pct_fpr:.4f}",
            ),
        ]
    return GateReport(results=tuple(results), has_champion=has_champion)
