"""Evaluation: metrics against sklearn, thresholds, the rules baseline, curves, references."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from offline.evaluate import (
    BASELINE_RULES,
    EvaluationError,
    Metrics,
    Rule,
    choose_thresholds,
    evaluate,
    rules_baseline,
    save_curves,
)
from offline.gates import GateConfig, run_gates
from offline.onnx_export import ParityReport
from offline.reference import assign_bins, reference_bins, reference_json


@pytest.fixture(scope="module")
def toy() -> tuple[np.ndarray, np.ndarray]:
    """2,000 rows, 5% fraud, fraud scores shifted up: overlapping but separable."""
    rng = np.random.default_rng(3)
    y = (rng.random(2_000) < 0.05).astype(np.float32)
    scores = rng.normal(np.where(y == 1, 1.5, 0.0), 1.0).astype(np.float32)
    return scores, y


def test_metrics_match_sklearn_and_brute_force(toy: tuple[np.ndarray, np.ndarray]) -> None:
    scores, y = toy
    m = evaluate(scores, y)
    assert m.roc_auc == pytest.approx(roc_auc_score(y, scores))
    assert m.pr_auc == pytest.approx(average_precision_score(y, scores))
    # Brute force: the best recall over all thresholds that flag at most 1% of legit rows.
    legit, fraud = scores[y == 0], scores[y == 1]
    best = max(float((fraud >= t).mean()) for t in np.unique(scores) if (legit >= t).mean() <= 0.01)
    assert m.recall_at_1pct_fpr == pytest.approx(best)
    assert (m.rows, m.positives) == (2_000, int(y.sum()))


def test_perfect_and_hand_computed_cases() -> None:
    y = np.array([0, 0, 0, 1, 1], dtype=np.float32)
    assert evaluate(np.array([0.1, 0.2, 0.3, 0.8, 0.9]), y).pr_auc == 1.0
    m = evaluate(np.array([0.1, 0.9, 0.3, 0.8, 0.2]), y)
    assert m.roc_auc == pytest.approx(3 / 6)  # 0.8 beats 0.1 and 0.3; 0.2 beats 0.1
    assert m.recall_at_1pct_fpr == 0.0  # the top score is legit: any flag costs 33% FPR


def test_one_class_is_an_error() -> None:
    with pytest.raises(EvaluationError, match=r"needs both classes, got 0 positives in 3 rows"):
        evaluate(np.array([0.1, 0.2, 0.3]), np.zeros(3))
    with pytest.raises(EvaluationError, match=r"one length, got \(3,\) and \(2,\)"):
        evaluate(np.array([0.1, 0.2, 0.3]), np.array([0.0, 1.0]))


def test_thresholds_meet_the_precision_target_and_review_budget(
    toy: tuple[np.ndarray, np.ndarray],
) -> None:
    scores, y = toy
    t = choose_thresholds(scores, y, decline_precision=0.5, review_fpr=0.02)
    flagged = scores >= t.decision
    assert t.rule == "precision >= 0.5"
    assert float(y[flagged].mean()) == pytest.approx(t.precision)
    assert t.precision >= 0.5
    assert t.recall == pytest.approx(float(flagged[y == 1].mean()))
    # The most recall at that precision: one notch lower misses the target.
    lower = scores >= np.max(scores[scores < t.decision])
    assert float(y[lower].mean()) < 0.5 or lower.sum() == flagged.sum()
    assert t.review <= t.decision
    assert float((scores[y == 0] >= t.review).mean()) <= 0.02


def test_unreachable_precision_falls_back_to_max_f1() -> None:
    y = np.array([0, 1, 0, 1, 0, 1], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], dtype=np.float32)
    t = choose_thresholds(scores, y, decline_precision=0.99)
    assert t.rule == "max F1"
    assert t.decision == pytest.approx(0.4)  # flag all: precision .5, recall 1, F1 .667


def test_rules_baseline_scores_rows_by_points() -> None:
    names = ["amount", "card_txn_count_10m", "is_foreign", "log_amount"]
    x = np.array(
        [[10.0, 1.0, 0.0, 2.4], [900.0, 1.0, 0.0, 6.8], [900.0, 5.0, 1.0, 6.8]],
        dtype=np.float32,
    )
    rules = (Rule("amount", 500.0), Rule("card_txn_count_10m", 3.0, 2.0), Rule("is_foreign", 1.0))
    assert rules_baseline(x, names, rules=rules).tolist() == [0.0, 0.25, 1.0]
    # Rules on absent features are skipped; the default rules use named fraud features.
    assert {r.feature for r in BASELINE_RULES} >= {"amount", "card_txn_count_1h", "is_foreign"}
    assert rules_baseline(x, names).max() == 1.0


def test_rules_baseline_without_any_rule_feature_is_an_error() -> None:
    with pytest.raises(EvaluationError, match=r"none of the rule features"):
        rules_baseline(np.zeros((2, 1), dtype=np.float32), ["hour_of_day"])


def test_curves_are_png_files_and_points(
    toy: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    scores, y = toy
    paths = save_curves(y, {"model": scores, "baseline": scores * 0.5 + 0.1}, tmp_path)
    assert set(paths) == {"roc", "pr", "points"}
    for name in ("roc", "pr"):
        assert paths[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    points = json.loads(paths["points"].read_text())
    assert [p["label"] for p in points] == ["model", "baseline"]
    assert points[0]["roc_auc"] == pytest.approx(evaluate(scores, y).roc_auc)
    assert points[0]["fpr"][0] == 0.0
    assert points[0]["fpr"][-1] == 1.0
    for curve in points:
        assert len(curve["fpr"]) == len(curve["tpr"])
        assert len(curve["recall"]) == len(curve["precision"])


def test_reference_bins_deciles_flags_and_json(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    amount = rng.lognormal(3, 1, 1_000)
    flag = (rng.random(1_000) < 0.2).astype(np.float64)
    x = np.column_stack([amount, flag]).astype(np.float32)
    scores = rng.random(1_000).astype(np.float32)
    ref = reference_bins(x, scores, ["amount", "is_foreign"], bins=10)
    edges = ref["features"]["amount"]["edges"]
    assert edges[0] == -math.inf
    assert edges[-1] == math.inf
    assert len(edges) == 11
    assert all(a < b for a, b in itertools.pairwise(edges))
    assert ref["features"]["amount"]["proportions"] == pytest.approx([0.1] * 10, abs=0.002)
    flag_ref = ref["features"]["is_foreign"]
    # Deciles of a 0/1 flag are 0 and 1: bins <= 0, (0, 1] and > 1 (unseen in training).
    assert flag_ref["edges"] == [-math.inf, 0.0, 1.0, math.inf]
    assert flag_ref["proportions"] == pytest.approx([1 - flag.mean(), flag.mean(), 0.0])
    assert sum(ref["score"]["proportions"]) == pytest.approx(1.0)
    assert assign_bins(np.array([0.0, 1.0]), flag_ref["edges"]).tolist() == [0, 1]
    assert json.loads(reference_json(ref)) == ref


def _metrics(pr_auc: float, recall: float) -> Metrics:
    return Metrics(roc_auc=0.9, pr_auc=pr_auc, recall_at_1pct_fpr=recall, rows=100, positives=5)


def test_gates_say_which_failed_with_expected_and_got() -> None:
    parity = ParityReport(rows=100, max_abs_diff=1e-7, tolerance=1e-5)
    report = run_gates(
        _metrics(0.50, 0.60),
        baseline=_metrics(0.30, 0.40),
        parity=parity,
        champion=_metrics(0.70, 0.61),
        champion_features=["a"],
        candidate_features=["a"],
        config=GateConfig(pr_auc_tolerance=0.01, recall_tolerance=0.02),
    )
    assert not report.passed
    assert [f.gate for f in report.failures] == ["pr_auc_vs_champion"]
    (failure,) = report.failures
    assert failure.expected == "PR-AUC >= 0.6900 (champion 0.7000 - 0.01)"
    assert failure.got == "0.5000"


def test_first_model_is_gated_on_baseline_and_parity_only() -> None:
    parity = ParityReport(rows=100, max_abs_diff=1e-7, tolerance=1e-5)
    ok = run_gates(_metrics(0.5, 0.6), baseline=_metrics(0.3, 0.4), parity=parity)
    assert ok.passed
    assert not ok.has_champion
    assert [r.gate for r in ok.results] == ["onnx_parity", "beats_baseline"]
    worse = run_gates(_metrics(0.2, 0.6), baseline=_metrics(0.3, 0.4), parity=parity)
    assert [f.gate for f in worse.failures] == ["beats_baseline"]


def test_a_champion_on_other_features_cannot_be_compared() -> None:
    parity = ParityReport(rows=100, max_abs_diff=0.0, tolerance=1e-5)
    report = run_gates(
        _metrics(0.5, 0.6),
        baseline=_metrics(0.3, 0.4),
        parity=parity,
        champion_features=["a", "b"],
        candidate_features=["a", "c"],
    )
    assert [f.gate for f in report.failures] == ["same_features"]
    assert "['b', 'c']" in report.failures[0].got


def test_recall_gate_allows_sampling_noise_but_blocks_a_real_drop() -> None:
    parity = ParityReport(rows=100, max_abs_diff=0.0, tolerance=1e-5)

    def recall_gate(candidate_recall: float, positives: int) -> tuple[bool, str]:
        champion = Metrics(0.9, 0.5, 0.66, rows=30_000, positives=positives)
        candidate = Metrics(0.9, 0.5, candidate_recall, rows=30_000, positives=positives)
        report = run_gates(
            candidate,
            baseline=_metrics(0.2, 0.3),
            parity=parity,
            champion=champion,
            champion_features=["a"],
            candidate_features=["a"],
            config=GateConfig(recall_tolerance=0.02, recall_noise_z=1.0),
        )
        (result,) = [r for r in report.results if r.gate == "recall_vs_champion"]
        return result.passed, result.expected

    # 157 test frauds: one standard error of a 0.66 recall is ~0.038; 4 frauds fewer is noise.
    passed, expected = recall_gate(0.6433, positives=157)
    assert passed
    assert "SE = 0.0378" in expected
    assert not recall_gate(0.55, positives=157)[0]
    # With 10,000 frauds the configured tolerance is the wider allowance.
    assert not recall_gate(0.63, positives=10_000)[0]
