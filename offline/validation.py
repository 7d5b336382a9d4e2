"""Validate a training set before anything is trained on it.

Checks (name, per column where it applies):

- `definition`: the set was built by this feature set's definition version.
- `schema`: exactly the definition's features, in its order, as float columns.
- `nulls`: NaN share per feature <= the configured limit (default 0).
- `range`: every finite value within the bounds `range_rules` derives from the definition.
- `cutoff`: no example at or after `cutoff - maturity` (labels had time to mature).
- `unique`: one example per event_id.
- `rows`: at least `min_rows_per_split` rows in train, val and test.
- `label_rate`: overall within bounds (fail); per split, fail below `min_positives_per_split`
  positives and warn outside the bounds.
- `drift`: PSI per feature against the previous data version's bins (warn, fail thresholds).

A failed check fails the report; `ValidationReport.raise_for_failures()` then raises
`ValidationFailed`, and nothing is trained.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from offline.errors import OfflineError
from offline.reference_stats import ReferenceStats, population_stability_index
from offline.training_set import SPLIT_CODES, TrainingSet
from offline.validation_report import Check, CheckStatus, ValidationReport
from schemas.features import (
    Aggregation,
    FeatureSet,
    HourOfDay,
    Identity,
    InSet,
    IsNull,
    Log1p,
    NotEqual,
    OneHot,
    RequestFeature,
)
from schemas.features.definition import request_feature_names

__all__ = ["RangeRule", "ValidationConfig", "range_rules", "validate_training_set"]

_INF = math.inf
# Event fields that are never negative (amounts, epoch times): their sums, means, extremes
# and identities are >= 0 too.
_NON_NEGATIVE_FIELDS = frozenset({"amount", "event_time"})


@dataclass(frozen=True, slots=True)
class ValidationConfig:
    """Thresholds of the checks; the defaults suit the shipped fraud definition."""

    max_null_rate: float = 0.0
    null_rate_overrides: Mapping[str, float] = field(default_factory=dict)
    label_rate_bounds: tuple[float, float] = (0.0005, 0.2)
    min_rows_per_split: int = 100
    min_positives_per_split: int = 1
    psi_warn: float = 0.1
    psi_fail: float = 0.25
    psi_bins: int = 10
    max_events_per_second: float = 100.0

    def __post_init__(self) -> None:
        low, high = self.label_rate_bounds
        problems = []
        if not 0.0 <= low < high <= 1.0:
            problems.append(f"label_rate_bounds must satisfy 0 <= low < high <= 1, got {low, high}")
        if not 0.0 <= self.psi_warn <= self.psi_fail:
            problems.append(
                f"psi thresholds must satisfy 0 <= warn <= fail, got {self.psi_warn, self.psi_fail}"
            )
        rates = {"max_null_rate": self.max_null_rate, **self.null_rate_overrides}
        problems += [f"{k} must be in [0, 1], got {v}" for k, v in rates.items() if not 0 <= v <= 1]
        if self.psi_bins < 2 or self.min_rows_per_split < 0 or self.max_events_per_second <= 0:
            problems.append("psi_bins >= 2, min_rows_per_split >= 0, max_events_per_second > 0")
        if problems:
            msg = f"validation config: {'; '.join(problems)}"
            raise OfflineError(msg)

    def null_limit(self, column: str) -> float:
        return self.null_rate_overrides.get(column, self.max_null_rate)


@dataclass(frozen=True, slots=True)
class RangeRule:
    """Allowed values of one feature: [low, high] (high open if `high_open`), or a set."""

    column: str
    low: float = -_INF
    high: float = _INF
    high_open: bool = False
    integer: bool = False
    values: frozenset[float] | None = None

    def describe(self) -> str:
        if self.values is not None:
            return f"values in {sorted(self.values)}"
        kind = "integers" if self.integer else "finite values"
        return f"{kind} in [{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def violations(self, values: np.ndarray) -> np.ndarray:
        """Mask of non-NaN values breaking the rule (NaNs are the null check's business)."""
        v = values.astype(np.float64)
        present = ~np.isnan(v)
        if self.values is not None:
            return present & ~np.isin(v, np.asarray(sorted(self.values)))
        with np.errstate(invalid="ignore"):
            bad = (
                ~np.isfinite(v)
                | (v < self.low)
                | (v >= self.high if self.high_open else v > self.high)
            )
            if self.integer:
                bad |= np.isfinite(v) & (v != np.floor(v))
        return present & bad


def _source_bounded(name: str, source: str | None) -> RangeRule:
    return RangeRule(name, low=0.0 if source in _NON_NEGATIVE_FIELDS else -_INF)


def _count(agg: Aggregation, rate: float) -> RangeRule:
    # Windows end at the event, inclusive: the event itself is always counted.
    return RangeRule(agg.name, low=1, high=math.ceil(agg.window_ms / 1000 * rate), integer=True)


_AGGREGATION_RULES: dict[str, Callable[[Aggregation, float], RangeRule]] = {
    "count": _count,
    "count_distinct": _count,
    "sum": lambda a, _: _source_bounded(a.name, a.source),
    "mean": lambda a, _: _source_bounded(a.name, a.source),
    "min": lambda a, _: _source_bounded(a.name, a.source),
    "max": lambda a, _: _source_bounded(a.name, a.source),
    "last": lambda a, _: _source_bounded(a.name, a.source),
    "std": lambda a, _: RangeRule(a.name, low=0.0),
    "zscore": lambda a, _: RangeRule(a.name),
    "seconds_since_previous": lambda a, _: RangeRule(a.name, low=0.0, high=a.window_ms / 1000),
}
_FLAG = frozenset({0.0, 1.0})
_REQUEST_RULES: dict[type, Callable[[RequestFeature, str], RangeRule]] = {
    Identity: lambda f, n: _source_bounded(n, getattr(f, "source", None)),
    Log1p: lambda _, n: RangeRule(n, low=0.0),
    OneHot: lambda _, n: RangeRule(n, values=_FLAG),
    HourOfDay: lambda _, n: RangeRule(n, low=0.0, high=24.0, high_open=True),
    NotEqual: lambda _, n: RangeRule(n, values=_FLAG),
    IsNull: lambda _, n: RangeRule(n, values=_FLAG),
    InSet: lambda _, n: RangeRule(n, values=_FLAG),
}


def range_rules(feature_set: FeatureSet, *, max_events_per_second: float) -> dict[str, RangeRule]:
    """The allowed values of every feature, derived from its kind (one table above)."""
    rules: dict[str, RangeRule] = {}
    for feature in feature_set.request_features:
        for name in request_feature_names(feature):
            rules[name] = _REQUEST_RULES[type(feature)](feature, name)
    for view in feature_set.views:
        for agg in view.aggregations:
            rules[agg.name] = _AGGREGATION_RULES[agg.function](agg, max_events_per_second)
    return rules


def _schema(ts: TrainingSet, fs: FeatureSet) -> list[Check]:
    want, got = list(fs.feature_names), list(ts.feature_names)
    checks = [
        Check("schema", c, "fail", "a definition feature", "missing") for c in want if c not in got
    ]
    checks += [Check("schema", c, "fail", "no such column", "extra") for c in got if c not in want]
    if not checks and want != got:
        checks.append(Check("schema", "*", "fail", f"definition order {want}", f"{got}"))
    if not np.issubdtype(ts.x.dtype, np.floating):
        checks.append(Check("schema", "*", "fail", "float features", f"dtype {ts.x.dtype}"))
    return checks or [Check("schema", "*", "ok", f"{len(want)} float features", "as defined")]


def _nulls(ts: TrainingSet, config: ValidationConfig) -> list[Check]:
    checks = []
    for j, name in enumerate(ts.feature_names):
        rate = float(np.isnan(ts.x[:, j]).mean()) if len(ts) else 0.0
        limit = config.null_limit(name)
        status: CheckStatus = "ok" if rate <= limit else "fail"
        checks.append(Check("nulls", name, status, f"null rate <= {limit:g}", f"{rate:.4g}"))
    return checks


def _ranges(ts: TrainingSet, rules: Mapping[str, RangeRule]) -> list[Check]:
    checks = []
    for j, name in enumerate(ts.feature_names):
        rule = rules.get(name)
        if rule is None:
            continue
        column = np.asarray(ts.x[:, j])
        bad = rule.violations(column)
        present = column[~np.isnan(column)]
        span = f"min {present.min():g}, max {present.max():g}" if present.size else "no values"
        if bad.any():
            first = ts.event_id[int(np.argmax(bad))]
            got = f"{int(bad.sum())} rows outside ({span}; first event_id {first!r})"
            checks.append(Check("range", name, "fail", rule.describe(), got))
        else:
            checks.append(Check("range", name, "ok", rule.describe(), span))
    return checks


def _labels_and_rows(ts: TrainingSet, config: ValidationConfig) -> list[Check]:
    low, high = config.label_rate_bounds
    bounds = f"label rate in [{low:g}, {high:g}]"
    rate = ts.label_rate
    status: CheckStatus = "ok" if low <= rate <= high and len(ts) else "fail"
    checks = [Check("label_rate", "y", status, bounds, f"{rate:.4g} of {len(ts)} rows")]
    counts, positives = ts.counts, ts.positives
    for split in SPLIT_CODES:
        n, pos = counts[split], positives[split]
        ok_rows = n >= max(config.min_rows_per_split, 1)
        checks.append(
            Check(
                "rows",
                split,
                "ok" if ok_rows else "fail",
                f">= {config.min_rows_per_split} rows",
                f"{n}",
            )
        )
        split_rate = pos / n if n else 0.0
        split_status: CheckStatus = (
            "fail"
            if pos < config.min_positives_per_split
            else ("ok" if low <= split_rate <= high else "warn")
        )
        expected = f"{bounds}, >= {config.min_positives_per_split} positives"
        got = f"{split_rate:.4g} ({pos} of {n})"
        checks.append(Check("label_rate", f"y[{split}]", split_status, expected, got))
    return checks


def _integrity(ts: TrainingSet, fs: FeatureSet) -> list[Check]:
    version_ok = ts.definition_version == fs.version
    checks = [
        Check(
            "definition",
            "definition_version",
            "ok" if version_ok else "fail",
            repr(fs.version),
            repr(ts.definition_version),
        )
    ]
    boundary = ts.cutoff_ms - ts.maturity_ms
    late = int(np.count_nonzero(ts.event_time >= boundary))
    checks.append(
        Check(
            "cutoff",
            "event_time",
            "ok" if late == 0 else "fail",
            f"every event_time < cutoff - maturity ({boundary} ms)",
            f"{late} rows at or after it",
        )
    )
    distinct = len(set(ts.event_id.tolist()))
    dupes = len(ts) - distinct
    checks.append(
        Check(
            "unique",
            "event_id",
            "ok" if dupes == 0 else "fail",
            "one row per event_id",
            f"{dupes} duplicate rows",
        )
    )
    return checks


def _drift(
    ts: TrainingSet, previous: TrainingSet | ReferenceStats | None, config: ValidationConfig
) -> list[Check]:
    if previous is None:
        return [Check("drift", "*", "ok", "a previous data version to compare", "none: skipped")]
    reference = (
        ReferenceStats.from_training_set(previous, bins=config.psi_bins)
        if isinstance(previous, TrainingSet)
        else previous
    )
    expected = f"PSI < {config.psi_warn:g} (warn), < {config.psi_fail:g} (fail)"
    checks = []
    for j, name in enumerate(ts.feature_names):
        bins = reference.columns.get(name)
        if bins is None:
            checks.append(Check("drift", name, "warn", expected, "not in the previous version"))
            continue
        psi = population_stability_index(bins, np.asarray(ts.x[:, j]))
        status: CheckStatus = (
            "fail" if psi >= config.psi_fail else ("warn" if psi >= config.psi_warn else "ok")
        )
        checks.append(Check("drift", name, status, expected, f"PSI {psi:.4f}"))
    return checks


def validate_training_set(
    ts: TrainingSet,
    *,
    feature_set: FeatureSet,
    previous: TrainingSet | ReferenceStats | None = None,
    config: ValidationConfig | None = None,
) -> ValidationReport:
    """Run every check on `ts`; `previous` (a training set or its stats) enables `drift`."""
    config = config or ValidationConfig()
    rules = range_rules(feature_set, max_events_per_second=config.max_events_per_second)
    checks = [
        *_integrity(ts, feature_set),
        *_schema(ts, feature_set),
        *_nulls(ts, config),
        *_ranges(ts, rules),
        *_labels_and_rows(ts, config),
        *_drift(ts, previous, config),
    ]
    subject = f"training set {ts.fingerprint()[:12]} ({ts.data_version})"
    return ValidationReport(checks=tuple(checks), subject=subject)
