"""A general point-in-time join: each spine row gets the newest feature row known at its time.

For every spine row this returns the newest feature row of the same entity whose timestamp
is at or before the spine row's timestamp and strictly newer than `spine_ts - ttl`:

    spine_ts - ttl < feature_ts <= spine_ts

The TTL boundary is exclusive, like the feature windows (`t - w < e.time <= t`): a feature
row exactly `ttl` old has expired. Rows without a match get nulls (NaN/None).

- Timestamps may be datetimes (all naive, or all timezone-aware in any zones: compared as
  UTC instants) or integers (epoch milliseconds, as in skewless records).
- Ties: when one entity has several feature rows at the same timestamp, the last of them
  in the feature table's row order wins.
- Spine rows with a null entity or timestamp get nulls; feature rows with one are ignored.
- Output: the spine's columns in the spine's row order, then the feature columns other than
  the entity and timestamp columns; a feature column whose name the spine already uses is
  suffixed `_feature`.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa

try:
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    _msg = "the point-in-time join needs pandas: pip install 'skewless[train]'"
    raise ImportError(_msg) from exc

from offline.errors import OfflineError

__all__ = ["CLASH_SUFFIX", "point_in_time_join"]

CLASH_SUFFIX = "_feature"
_NS_PER_MS = 1_000_000
_ROW = "__pit_row"
_KEY = "__pit_ts"
_FKEY = "__pit_feature_ts"


def _frame(data: pa.Table | pd.DataFrame, side: str) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data.reset_index(drop=True)
    if isinstance(data, pa.Table):
        return data.to_pandas()
    msg = f"{side}: expected a pyarrow Table or a pandas DataFrame, got {type(data).__name__}"
    raise OfflineError(msg)


def _require(frame: pd.DataFrame, side: str, *columns: str) -> None:
    for column in columns:
        if column not in frame.columns:
            msg = f"{side} has no column {column!r}; columns: {[str(c) for c in frame.columns]}"
            raise OfflineError(msg)


def _instants(series: pd.Series, side: str) -> tuple[np.ndarray, np.ndarray, bool | None]:
    """(valid mask, int64 nanoseconds since the epoch, tz-aware? or None for integers)."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        valid = series.notna().to_numpy()
        utc = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return valid, _ns(utc, valid), True
    if pd.api.types.is_datetime64_dtype(series.dtype):
        valid = series.notna().to_numpy()
        return valid, _ns(series, valid), False
    if pd.api.types.is_integer_dtype(series.dtype) or (
        pd.api.types.is_float_dtype(series.dtype)
        and bool(np.all(np.mod(series.dropna().to_numpy(), 1) == 0))
    ):
        valid = series.notna().to_numpy()
        ms = np.zeros(len(series), dtype=np.int64)
        ms[valid] = series[valid].to_numpy().astype(np.int64)
        return valid, ms * _NS_PER_MS, None
    msg = (
        f"{side} timestamp column {series.name!r}: expected datetimes or integer epoch "
        f"milliseconds, got dtype {series.dtype}"
    )
    raise OfflineError(msg)


def _ns(naive: pd.Series, valid: np.ndarray) -> np.ndarray:
    out = np.zeros(len(naive), dtype=np.int64)
    out[valid] = naive[valid].to_numpy().astype("datetime64[ns]").astype(np.int64)
    return out


def _stringish(series: pd.Series) -> bool:
    return bool(pd.api.types.is_string_dtype(series.dtype) or series.dtype == object)


def _check_kinds(spine: bool | None, features: bool | None, timestamp: str) -> None:
    if spine == features:
        return
    kinds = {True: "timezone-aware datetimes", False: "naive datetimes", None: "integer ms"}
    msg = (
        f"timestamp column {timestamp!r}: the spine has {kinds[spine]} but the features have "
        f"{kinds[features]}; convert one side so they compare as the same instants"
    )
    raise OfflineError(msg)


def point_in_time_join(
    spine: pa.Table | pd.DataFrame,
    features: pa.Table | pd.DataFrame,
    *,
    entity: str,
    timestamp: str,
    ttl: timedelta | None,
) -> pd.DataFrame:
    """Spine rows plus, per row, the newest feature row with `spine_ts - ttl < ts <= spine_ts`.

    `ttl=None` means no age limit. See the module docstring for ties, nulls and naming.
    """
    if ttl is not None and ttl <= timedelta(0):
        msg = f"ttl must be positive (or None for no limit), got {ttl!r}"
        raise OfflineError(msg)
    left = _frame(spine, "spine")
    right = _frame(features, "features")
    _require(left, "spine", entity, timestamp)
    _require(right, "features", entity, timestamp)
    left_valid, left_ns, left_kind = _instants(left[timestamp], "spine")
    right_valid, right_ns, right_kind = _instants(right[timestamp], "features")
    _check_kinds(left_kind, right_kind, timestamp)

    value_columns = [str(c) for c in right.columns if c not in (entity, timestamp)]
    renames = {c: f"{c}{CLASH_SUFFIX}" for c in value_columns if c in left.columns}
    clashes = [new for new in renames.values() if new in left.columns]
    if clashes:
        msg = f"feature columns would be renamed to {clashes}, which the spine already has"
        raise OfflineError(msg)

    keyed = right[[entity, *value_columns]].rename(columns=renames)
    keyed[_FKEY] = right_ns
    keyed = keyed[right_valid & right[entity].notna().to_numpy()]
    # A stable sort keeps the table's row order among equal timestamps; keep="last" then
    # makes the last of them the one merge_asof finds.
    keyed = keyed.sort_values(_FKEY, kind="stable")
    keyed = keyed.drop_duplicates(subset=[entity, _FKEY], keep="last")

    probe = pd.DataFrame({_ROW: np.arange(len(left)), _KEY: left_ns, entity: left[entity]})
    probe = probe[left_valid & left[entity].notna().to_numpy()]
    probe = probe.sort_values(_KEY, kind="stable")
    out_columns = [renames.get(c, c) for c in value_columns]
    if keyed.empty or probe.empty:
        nothing = pd.DataFrame(index=np.arange(len(left)), columns=out_columns, dtype=object)
        for column in out_columns:
            nothing[column] = pd.Series([None] * len(left), dtype=keyed[column].dtype)
        return pd.concat([left, nothing.reset_index(drop=True)], axis=1)
    if _stringish(probe[entity]) and _stringish(keyed[entity]):
        probe[entity] = probe[entity].astype(object)
        keyed[entity] = keyed[entity].astype(object)
    try:
        matched = pd.merge_asof(
            probe,
            keyed,
            left_on=_KEY,
            right_on=_FKEY,
            by=entity,
            direction="backward",
            allow_exact_matches=True,
        )
    except (pd.errors.MergeError, TypeError, ValueError) as exc:
        msg = (
            f"cannot join on entity {entity!r}: spine dtype {left[entity].dtype}, "
            f"features dtype {right[entity].dtype} ({exc})"
        )
        raise OfflineError(msg) from exc
    if ttl is not None:
        ttl_ns = (ttl // timedelta(microseconds=1)) * 1000
        expired = (matched[_KEY] - matched[_FKEY] >= ttl_ns).to_numpy()
        matched = matched[~expired]
    found = matched[matched[_FKEY].notna()].set_index(_ROW)[out_columns]
    joined = found.reindex(np.arange(len(left)))
    return pd.concat([left, joined.reset_index(drop=True)], axis=1)
