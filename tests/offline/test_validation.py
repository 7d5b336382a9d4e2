"""Validation catches what must not be trained on, and names the check and the column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from offline.errors import ValidationFailed
from offline.reference_stats import ReferenceStats, population_stability_index
from offline.training_set import TrainingSet
from offline.validation import ValidationConfig, range_rules, validate_training_set
from offline.validation_report import ValidationReport
from schemas.features.fraud import FRAUD_FEATURES
from skewless.cli import app
from tests.offline.delta_factory import (
    DAY_MS,
    T0,
    LabelRow,
    append_features,
    append_labels,
    feature_values,
    make_training_set,
)

NAMES = FRAUD_FEATURES.feature_names


def _validate(ts: TrainingSet, **kwargs: object) -> ValidationReport:
    return validate_training_set(ts, feature_set=FRAUD_FEATURES, **kwargs)  # type: ignore[arg-type]


def _failed(report: ValidationReport) -> set[tuple[str, str]]:
    return {(c.name, c.column) for c in report.failures}


def _with(column: str, row: int, value: float, *, n: int = 1000) -> TrainingSet:
    values = feature_values(n, seed=1)
    values[row, NAMES.index(column)] = value
    return make_training_set(n, values=values)


def test_a_clean_training_set_passes_every_check() -> None:
    report = _validate(make_training_set())
    assert report.ok, [c.message for c in report.failures]
    assert not report.warnings
    names = {c.name for c in report.checks}
    assert names == {
        "definition",
        "cutoff",
        "unique",
        "schema",
        "nulls",
        "range",
        "label_rate",
        "rows",
        "drift",
    }
    report.raise_for_failures()  # no error


def test_a_missing_column_fails_the_schema_check_naming_it() -> None:
    keep = [i for i, n in enumerate(NAMES) if n != "card_txn_count_1h"]
    values = feature_values(1000, seed=1)[:, keep]
    ts = make_training_set(values=values, feature_names=tuple(NAMES[i] for i in keep))
    report = _validate(ts)
    assert _failed(report) == {("schema", "card_txn_count_1h")}
    with pytest.raises(ValidationFailed, match=r"schema \[card_txn_count_1h\] fail"):
        report.raise_for_failures()


def test_extra_columns_and_wrong_order_fail_the_schema_check() -> None:
    values = feature_values(200, seed=1)
    extra = make_training_set(
        200, values=np.column_stack([values, values[:, :1]]), feature_names=(*NAMES, "surprise")
    )
    assert ("schema", "surprise") in _failed(_validate(extra))
    swapped = (NAMES[1], NAMES[0], *NAMES[2:])
    reordered = make_training_set(200, values=values, feature_names=swapped)
    assert ("schema", "*") in _failed(_validate(reordered))


def test_a_null_rate_breach_fails_the_nulls_check_naming_the_column() -> None:
    ts = _with("merchant_amount_mean_7d", 3, np.nan)
    report = _validate(ts)
    assert _failed(report) == {("nulls", "merchant_amount_mean_7d")}
    (check,) = report.find("nulls", "merchant_amount_mean_7d")
    assert check.got == "0.001"
    assert "nulls [merchant_amount_mean_7d]" in check.message
    lenient = ValidationConfig(null_rate_overrides={"merchant_amount_mean_7d": 0.01})
    assert _validate(ts, config=lenient).ok


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("card_txn_count_1h", -1.0, "integers in [1, 360000]"),
        ("card_txn_count_1h", 2.5, "integers"),
        ("card_txn_count_10m", 1e9, "integers in [1, 60000]"),
        ("channel_online", 0.5, "values in [0.0, 1.0]"),
        ("hour_of_day", 24.0, "[0, 24)"),
        ("card_seconds_since_prev", 604_801.0, "[0, 604800]"),
        ("amount", -3.0, "[0, inf]"),
        ("card_amount_std_7d", -0.1, "[0, inf]"),
        ("card_amount_zscore_7d", np.inf, "finite"),
    ],
)
def test_an_out_of_range_value_fails_the_range_check_naming_the_column(
    column: str, value: float, expected: str
) -> None:
    report = _validate(_with(column, 7, value))
    assert _failed(report) == {("range", column)}
    (check,) = report.find("range", column)
    assert expected in check.expected
    assert "1 rows outside" in check.got
    assert "'e7'" in check.got  # the first offending event


def test_a_label_rate_of_zero_fails() -> None:
    report = _validate(make_training_set(positives_every=0))
    assert ("label_rate", "y") in _failed(report)
    for split in ("train", "val", "test"):
        assert ("label_rate", f"y[{split}]") in _failed(report)
    with pytest.raises(ValidationFailed, match=r"label_rate \[y\] fail: expected label rate in"):
        report.raise_for_failures()


def test_a_label_rate_above_the_bound_fails_and_a_split_outside_it_warns() -> None:
    assert ("label_rate", "y") in _failed(_validate(make_training_set(positives_every=2)))
    ts = make_training_set(1000, positives_every=50)
    y = np.array(ts.y)
    y[(ts.split == 2)] = 0.0
    y[np.flatnonzero(ts.split == 2)[0]] = 1.0  # one positive in 150 test rows: 0.67%
    y[np.flatnonzero(ts.split == 0)[:300]] = 1.0  # train far above 20%
    skewed = TrainingSet(**{**ts.__dict__, "y": y})
    report = _validate(skewed, config=ValidationConfig(label_rate_bounds=(0.001, 0.3)))
    assert report.find("label_rate", "y[train]")[0].status == "warn"
    assert report.find("label_rate", "y[test]")[0].status == "ok"


def test_too_few_rows_in_a_split_fails() -> None:
    report = _validate(make_training_set(400))  # 60 val and test rows each
    assert {("rows", "val"), ("rows", "test")} <= _failed(report)
    assert ("rows", "train") not in _failed(report)


def test_rows_past_the_maturity_boundary_and_duplicates_fail() -> None:
    ts = make_training_set(200)
    late = TrainingSet(**{**ts.__dict__, "cutoff_ms": int(ts.event_time[-1]) + 1})
    assert ("cutoff", "event_time") in _failed(_validate(late))
    ids = np.array(ts.event_id)
    ids[5] = ids[4]
    duplicated = TrainingSet(**{**ts.__dict__, "event_id": ids})
    assert ("unique", "event_id") in _failed(_validate(duplicated))
    other = TrainingSet(**{**ts.__dict__, "definition_version": "feedfacefeedface"})
    (check,) = _validate(other).find("definition")
    assert (check.status, check.got) == ("fail", "'feedfacefeedface'")


def test_drift_against_the_previous_version_warns_and_fails_by_psi() -> None:
    previous = make_training_set(2000, seed=1)
    same = _validate(make_training_set(2000, seed=2), previous=previous)
    assert all(c.status == "ok" for c in same.find("drift"))
    values = feature_values(2000, seed=2)
    amount = NAMES.index("amount")
    values[:, amount] *= 3.0
    shifted = _validate(make_training_set(2000, values=values), previous=previous)
    assert ("drift", "amount") in _failed(shifted)
    assert shifted.find("drift", "log_amount")[0].status == "ok"  # untouched here
    mild = ValidationConfig(psi_warn=0.1, psi_fail=1e9)
    assert (
        _validate(make_training_set(2000, values=values), previous=previous, config=mild)
        .find("drift", "amount")[0]
        .status
        == "warn"
    )


def test_reference_stats_round_trip_and_psi_basics() -> None:
    ts = make_training_set(500, seed=4)
    stats = ReferenceStats.from_training_set(ts, bins=10)
    again = ReferenceStats.from_json(stats.to_json())
    assert again == stats
    assert again.data_version == {"features": 3, "labels": 1}
    flag = again.columns["channel_pos"]
    assert len(flag.shares) == 2  # a 0/1 feature has two bins
    column = np.asarray(ts.x[:, NAMES.index("amount")])
    assert population_stability_index(again.columns["amount"], column) == pytest.approx(0.0)
    report = _validate(make_training_set(500, seed=4), previous=again)
    assert all(c.status == "ok" for c in report.find("drift"))


def test_every_fraud_feature_has_a_range_rule() -> None:
    rules = range_rules(FRAUD_FEATURES, max_events_per_second=10.0)
    assert set(rules) == set(NAMES)
    assert rules["card_txn_count_10m"].high == 6000
    assert rules["card_merchants_24h"].integer


def test_the_report_renders_as_a_rich_table() -> None:
    report = _validate(_with("hour_of_day", 2, 25.0))
    console = Console(record=True, width=200)
    console.print(report.to_rich(problems_only=True))
    text = console.export_text()
    assert "FAILED" in text
    assert "hour_of_day" in text
    assert "range" in text
    assert "nulls" not in text  # passing checks are left out when asked
    console.print(report.to_rich())
    assert "y[train]" in console.export_text()
    as_json = report.to_dict()
    assert as_json["failures"] == 1
    assert as_json["ok"] is False


def test_cli_validate_passes_good_data_and_exits_1_on_a_label_rate_of_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    delta = tmp_path / "data" / "delta"
    times = [T0 + i * 600_000 for i in range(2000)]  # ~14 days of events
    append_features(delta / "features", times)
    fraud = [LabelRow(f"e{i}", True, T0 + 15 * DAY_MS) for i in range(0, 2000, 40)]
    append_labels(delta / "labels", fraud)
    monkeypatch.setenv("SKEWLESS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SKEWLESS_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    out = tmp_path / "v.json"
    good = runner.invoke(app, ["validate", "--cutoff", "2026-01-25T00:00Z", "--json", str(out)])
    assert good.exit_code == 0, good.output
    assert "passed" in good.output
    assert '"label_rate"' in out.read_text()
    early = runner.invoke(app, ["validate", "--cutoff", "2026-01-15T00:00Z"])  # no label known
    assert early.exit_code == 1
    assert "label_rate" in early.output
    assert "validation failed" in early.output
