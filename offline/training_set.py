"""Training sets that cannot leak the future: matured feature rows, labels known at a cutoff.

At a cutoff `T` with a label maturity `M`:

- **Examples** are the rows of the `features` table with `event_time < T - M` (their labels
  had `M` to arrive) computed by this feature set's definition (`definition_version`).
  Rows of another definition version are an error naming both versions.
- **Features** of an example are its own row's values. The streaming pipeline computed that
  vector at the event's time from only the events known then (windows end at the event), so
  it is point-in-time correct by construction; no join against later state happens here.
- **Labels** are the rows of the `labels` table with `label_time <= T` (known at `T`); a
  label stamped after `T` is never read. Per event the latest known label wins (ordered by
  `label_time`, then the labels topic's partition and offset): a chargeback followed by a
  reversal at or before `T` is a negative. Duplicate labels collapse.
- **Negatives**: matured events with no known label are negatives (fraud not reported
  within `M` is taken as legitimate; the label rate is a lower bound on the fraud rate).
- **Splits** are by time, never random: sorted by (event_time, source_partition,
  source_offset, event_id), the first `splits[0]` of rows are train, the next `splits[1]`
  validation, the rest test. Events at a boundary's timestamp all go to the later split, so
  no timestamp is in two splits.

`assemble_training_set` is the pure core (Arrow tables in, arrays out); `build_training_set`
reads pinned Delta versions and calls it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from offline.delta_reader import DataVersion, current_versions, read_table
from offline.errors import OfflineError
from offline.tables import FEATURE_METADATA_COLUMNS, FEATURES, LABELS
from schemas.features import FeatureSet

__all__ = [
    "SPLIT_CODES",
    "SplitName",
    "TrainingSet",
    "assemble_training_set",
    "build_training_set",
    "data_end_ms",
    "resolve_labels",
]

SplitName = Literal["train", "val", "test"]
SPLIT_CODES: dict[SplitName, int] = {"train": 0, "val": 1, "test": 2}
_TS = pa.timestamp("us", tz="UTC")
_FINGERPRINT_TAG = b"skewless-training-set-v1\n"


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """Examples in deterministic time order, their split, and where they came from.

    Arrays are made read-only. `x` is float32 `[n, d]` in `feature_names` order; `y` is
    float32 0/1; `event_time` is int64 epoch ms; `split` is int8 (0 train, 1 val, 2 test).
    """

    feature_names: tuple[str, ...]
    x: np.ndarray
    y: np.ndarray
    event_time: np.ndarray
    event_id: np.ndarray
    split: np.ndarray
    data_version: DataVersion
    definition_version: str
    cutoff_ms: int
    maturity_ms: int

    def __post_init__(self) -> None:
        n = len(self.y)
        problems = []
        if self.x.ndim != 2 or self.x.shape != (n, len(self.feature_names)):
            problems.append(f"x shape {self.x.shape}, expected ({n}, {len(self.feature_names)})")
        for name in ("event_time", "event_id", "split"):
            got = len(getattr(self, name))
            if got != n:
                problems.append(f"{name} has {got} rows, expected {n}")
        if problems:
            msg = f"training set arrays disagree: {'; '.join(problems)}"
            raise OfflineError(msg)
        for array in (self.x, self.y, self.event_time, self.event_id, self.split):
            array.setflags(write=False)

    def __len__(self) -> int:
        return len(self.y)

    def mask(self, name: SplitName) -> np.ndarray:
        """Boolean row mask of one split."""
        if name not in SPLIT_CODES:
            msg = f"split: expected one of {list(SPLIT_CODES)}, got {name!r}"
            raise OfflineError(msg)
        return np.asarray(self.split == SPLIT_CODES[name])

    def part(self, name: SplitName) -> tuple[np.ndarray, np.ndarray]:
        """`(x, y)` of one split, in time order."""
        rows = self.mask(name)
        return self.x[rows], self.y[rows]

    @property
    def label_rate(self) -> float:
        """Share of positive examples over all splits (0.0 for an empty set)."""
        return float(self.y.mean()) if len(self.y) else 0.0

    @property
    def counts(self) -> dict[str, int]:
        """Rows per split: `{"train": n, "val": n, "test": n}`."""
        return {
            name: int(np.count_nonzero(self.split == code)) for name, code in SPLIT_CODES.items()
        }

    @property
    def positives(self) -> dict[str, int]:
        """Positive examples per split."""
        return {name: int(self.y[self.mask(name)].sum()) for name in SPLIT_CODES}

    def fingerprint(self) -> str:
        """sha256 of the arrays' bytes, names and versions: equal inputs give equal digests."""
        header = {
            "feature_names": list(self.feature_names),
            "data_version": self.data_version.as_dict(),
            "definition_version": self.definition_version,
            "cutoff_ms": self.cutoff_ms,
            "maturity_ms": self.maturity_ms,
            "rows": len(self),
        }
        digest = hashlib.sha256(_FINGERPRINT_TAG)
        digest.update(json.dumps(header, sort_keys=True).encode())
        for array, dtype in (
            (self.x, "<f4"),
            (self.y, "<f4"),
            (self.event_time, "<i8"),
            (self.split, "i1"),
        ):
            digest.update(np.ascontiguousarray(array, dtype=dtype).tobytes())
        digest.update("\x1f".join(str(e) for e in self.event_id).encode())
        return digest.hexdigest()

    def summary(self) -> dict[str, Any]:
        """JSON-able figures: counts, positives and label rates per split, versions."""
        counts, positives = self.counts, self.positives
        return {
            "rows": len(self),
            "features": len(self.feature_names),
            "counts": counts,
            "positives": positives,
            "label_rate": self.label_rate,
            "label_rates": {
                k: (positives[k] / counts[k] if counts[k] else 0.0) for k in SPLIT_CODES
            },
            "cutoff_ms": self.cutoff_ms,
            "maturity_ms": self.maturity_ms,
            "definition_version": self.definition_version,
            "data_version": self.data_version.as_dict(),
            "fingerprint": self.fingerprint(),
        }


_UNITS_PER_MS = {"ms": 1, "us": 1_000, "ns": 1_000_000}


def _raw(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, int]:
    """(integer values, units per millisecond) of a ms/us/ns timestamp column."""
    if not pa.types.is_timestamp(column.type) or column.type.unit not in _UNITS_PER_MS:
        msg = f"expected a timestamp column in ms, us or ns, got {column.type}"
        raise OfflineError(msg)
    raw = pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64)
    return raw, _UNITS_PER_MS[column.type.unit]


def _ms(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Epoch milliseconds of a timestamp column (floored)."""
    raw, per_ms = _raw(column)
    return raw // per_ms


def _at_or_before(column: pa.ChunkedArray, limit_ms: int, *, inclusive: bool) -> pa.Array:
    """Mask of `column <= limit` (or `<`), compared exactly at the column's own resolution."""
    raw, per_ms = _raw(column)
    limit = limit_ms * per_ms
    return pa.array(raw <= limit if inclusive else raw < limit)


def _require(table: pa.Table, name: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        msg = f"{name} table has no column(s) {missing}; columns: {table.column_names}"
        raise OfflineError(msg)


def resolve_labels(labels: pa.Table, *, cutoff_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """`(event_ids, is_fraud)` of the latest label per event among those with time <= cutoff."""
    _require(labels, LABELS, ("event_id", "is_fraud", "label_time", "source_partition"))
    _require(labels, LABELS, ("source_offset",))
    known = labels.filter(_at_or_before(labels["label_time"], cutoff_ms, inclusive=True))
    order = pc.sort_indices(
        known,
        sort_keys=[
            ("event_id", "ascending"),
            ("label_time", "ascending"),
            ("source_partition", "ascending"),
            ("source_offset", "ascending"),
        ],
    )
    ids = known["event_id"].take(order).to_numpy(zero_copy_only=False)
    fraud = known["is_fraud"].take(order).to_numpy(zero_copy_only=False).astype(bool)
    if len(ids) == 0:
        return ids.astype(object), fraud
    last = np.ones(len(ids), dtype=bool)
    last[:-1] = ids[:-1] != ids[1:]
    return ids[last].astype(object), fraud[last]


def _feature_columns(features: pa.Table, feature_set: FeatureSet) -> list[str]:
    """Definition features present (definition order), then other numeric columns."""
    reserved = set(FEATURE_METADATA_COLUMNS) | {e.key_field for e in feature_set.entities}
    names = [n for n in feature_set.feature_names if n in features.column_names]
    for field in features.schema:
        if field.name in reserved or field.name in names:
            continue
        if pa.types.is_floating(field.type) or pa.types.is_integer(field.type):
            names.append(field.name)
    for name in names:
        kind = features.schema.field(name).type
        if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
            msg = f"features column {name!r}: expected float64 values, got {kind}"
            raise OfflineError(msg)
    return names


def _split_codes(times: np.ndarray, splits: tuple[float, float, float]) -> np.ndarray:
    codes = np.full(len(times), SPLIT_CODES["test"], dtype=np.int8)
    n = len(times)
    if n == 0:
        return codes
    first = math.floor(n * splits[0])
    second = math.floor(n * (splits[0] + splits[1]))
    b_val = times[first] if first < n else np.iinfo(np.int64).max
    b_test = times[second] if second < n else np.iinfo(np.int64).max
    codes[times < b_test] = SPLIT_CODES["val"]
    codes[times < b_val] = SPLIT_CODES["train"]
    return codes


def _check_splits(splits: tuple[float, float, float]) -> None:
    if len(splits) != 3 or any(s < 0 for s in splits) or not math.isclose(sum(splits), 1.0):
        msg = f"splits: expected three fractions >= 0 summing to 1 (train, val, test), got {splits}"
        raise OfflineError(msg)


def assemble_training_set(
    features: pa.Table,
    labels: pa.Table,
    *,
    feature_set: FeatureSet,
    cutoff_ms: int,
    maturity_ms: int,
    splits: tuple[float, float, float] = (0.7, 0.15, 0.15),
    data_version: DataVersion,
) -> TrainingSet:
    """The pure core of `build_training_set`: Arrow tables in, a `TrainingSet` out."""
    _check_splits(splits)
    if maturity_ms < 0:
        msg = f"maturity must be >= 0, got {maturity_ms} ms"
        raise OfflineError(msg)
    _require(features, FEATURES, ("event_id", "event_time", "definition_version"))
    _require(features, FEATURES, ("source_partition", "source_offset"))
    boundary_ms = cutoff_ms - maturity_ms
    matured = features.filter(_at_or_before(features["event_time"], boundary_ms, inclusive=False))
    versions = pc.unique(matured["definition_version"]).to_pylist()
    other = sorted(str(v) for v in versions if v != feature_set.version)
    if other:
        msg = (
            f"features table rows of definition version(s) {other} found where feature set "
            f"{feature_set.name!r} has version {feature_set.version!r}: train with the "
            f"definition that computed them, or backfill the table with this one"
        )
        raise OfflineError(msg)
    order = pc.sort_indices(
        matured,
        sort_keys=[
            ("event_time", "ascending"),
            ("source_partition", "ascending"),
            ("source_offset", "ascending"),
            ("event_id", "ascending"),
        ],
    )
    rows = matured.take(order)
    names = _feature_columns(rows, feature_set)
    x = np.empty((rows.num_rows, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        column = pc.cast(rows[name], pa.float64())
        x[:, j] = column.to_numpy(zero_copy_only=False)  # nulls become NaN
    label_ids, label_fraud = resolve_labels(labels, cutoff_ms=cutoff_ms)
    positive_ids = pa.array(label_ids[label_fraud].tolist(), pa.string())
    y = pc.is_in(rows["event_id"], value_set=positive_ids).to_numpy(zero_copy_only=False)
    times = _ms(rows["event_time"])
    return TrainingSet(
        feature_names=tuple(names),
        x=x,
        y=np.asarray(y, dtype=np.float32),
        event_time=times,
        event_id=rows["event_id"].to_numpy(zero_copy_only=False).astype(object),
        split=_split_codes(times, splits),
        data_version=data_version,
        definition_version=feature_set.version,
        cutoff_ms=int(cutoff_ms),
        maturity_ms=int(maturity_ms),
    )


def data_end_ms(
    delta_root: str,
    versions: DataVersion,
    *,
    storage_options: Mapping[str, str] | None = None,
) -> int:
    """The newest event_time or label_time in the pinned tables: the data's own "now"."""
    newest = []
    for name, column in ((FEATURES, "event_time"), (LABELS, "label_time")):
        table = read_table(
            delta_root,
            name,
            version=versions[name],
            storage_options=storage_options,
            columns=[column],
        )
        if table.num_rows:
            newest.append(int(_ms(table[column]).max()))
    if not newest:
        msg = f"the features and labels tables under {delta_root!r} are empty ({versions})"
        raise OfflineError(msg)
    return max(newest)


def build_training_set(
    delta_root: str,
    *,
    cutoff_ms: int,
    maturity: timedelta,
    feature_set: FeatureSet,
    splits: tuple[float, float, float] = (0.7, 0.15, 0.15),
    versions: DataVersion | None = None,
    storage_options: Mapping[str, str] | None = None,
    burn_in: timedelta | None = None,
) -> TrainingSet:
    """Read the pinned (else the current) versions of `features` and `labels`; assemble.

    See the module docstring for what an example, a label and a split are. `burn_in`
    (default: the definition's longest window) drops the examples of the table's first
    stretch of event time, whose windowed features were computed over a history that had
    not filled yet: a model should not learn, nor a drift reference describe, immature
    features that serving never sees once the stream has run that long.
    """
    if versions is None:
        versions = current_versions(delta_root, (FEATURES, LABELS), storage_options=storage_options)
    maturity_ms = maturity // timedelta(milliseconds=1)
    boundary = pa.scalar((cutoff_ms - maturity_ms) * 1000, _TS)
    where = pc.field("event_time") < boundary
    burn = feature_set.max_window if burn_in is None else burn_in
    if burn > timedelta(0):
        times = read_table(
            delta_root, FEATURES, version=versions[FEATURES], storage_options=storage_options,
            columns=["event_time"],
        )  # fmt: skip
        first = pc.min(times["event_time"]).as_py()
        if first is not None:
            start = pa.scalar(first, _TS).cast(pa.int64()).as_py() + burn // timedelta(
                microseconds=1
            )
            where = where & (pc.field("event_time") >= pa.scalar(start, _TS))
    features = read_table(
        delta_root,
        FEATURES,
        version=versions[FEATURES],
        storage_options=storage_options,
        filters=where,
    )
    labels = read_table(
        delta_root,
        LABELS,
        version=versions[LABELS],
        storage_options=storage_options,
        filters=pc.field("label_time") <= pa.scalar(cutoff_ms * 1000, _TS),
    )
    return assemble_training_set(
        features,
        labels,
        feature_set=feature_set,
        cutoff_ms=cutoff_ms,
        maturity_ms=maturity_ms,
        splits=splits,
        data_version=DataVersion.of({FEATURES: versions[FEATURES], LABELS: versions[LABELS]}),
    )
