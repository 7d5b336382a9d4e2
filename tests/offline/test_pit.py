"""The point-in-time join: never a later row, never an expired one, ties and nulls defined."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from offline.errors import OfflineError
from offline.pit import point_in_time_join
from skewless.cli import app
from skewless.commands.offline_data import parse_duration
from tests.offline.delta_factory import T0, append_features

MIN = 60_000


def _ts(ms: list[int], tz: str | None = "UTC") -> pd.Series:
    series = pd.to_datetime(pd.Series(ms, dtype="int64"), unit="ms", utc=True)
    return series.dt.tz_convert(tz) if tz is not None else series.dt.tz_localize(None)


def test_each_spine_row_gets_the_newest_row_at_or_before_it() -> None:
    spine = pd.DataFrame(
        {"card": ["a", "a", "b", "a"], "t": _ts([5, 10, 10, 2]), "y": [1, 2, 3, 4]}
    )
    features = pd.DataFrame(
        {"card": ["a", "a", "a", "b"], "t": _ts([3, 5, 11, 10]), "f": [30.0, 50.0, 110.0, 7.0]}
    )
    out = point_in_time_join(spine, features, entity="card", timestamp="t", ttl=None)
    assert list(out.columns) == ["card", "t", "y", "f"]
    assert out["y"].tolist() == [1, 2, 3, 4]  # the spine's own order
    assert out["f"].tolist()[:3] == [50.0, 50.0, 7.0]  # exact time matches; 11 is the future
    assert math.isnan(out["f"].iloc[3])  # nothing at or before t=2


def test_ttl_boundary_is_exclusive() -> None:
    """A feature row exactly `ttl` old has expired; one millisecond younger has not."""
    ttl = timedelta(minutes=30)
    features = pd.DataFrame({"card": ["a", "b"], "t": _ts([0, 1]), "f": [1.0, 2.0]})
    spine = pd.DataFrame({"card": ["a", "b"], "t": _ts([30 * MIN, 30 * MIN])})
    out = point_in_time_join(spine, features, entity="card", timestamp="t", ttl=ttl)
    assert math.isnan(out["f"].iloc[0])  # 30 min old: expired
    assert out["f"].iloc[1] == 2.0  # 30 min - 1 ms old: kept


def test_ttl_expiry_does_not_fall_back_to_an_older_row() -> None:
    features = pd.DataFrame({"card": ["a", "a"], "t": _ts([0, 10 * MIN]), "f": [1.0, 2.0]})
    spine = pd.DataFrame({"card": ["a"], "t": _ts([100 * MIN])})
    out = point_in_time_join(spine, features, entity="card", timestamp="t", ttl=timedelta(hours=1))
    assert math.isnan(out["f"].iloc[0])


def test_ties_the_last_feature_row_at_a_timestamp_wins() -> None:
    features = pd.DataFrame({"card": ["a", "a", "a"], "t": _ts([7, 7, 7]), "f": [1.0, 2.0, 3.0]})
    spine = pd.DataFrame({"card": ["a"], "t": _ts([7])})
    out = point_in_time_join(spine, features, entity="card", timestamp="t", ttl=None)
    assert out["f"].tolist() == [3.0]
    flipped = point_in_time_join(spine, features.iloc[::-1], entity="card", timestamp="t", ttl=None)
    assert flipped["f"].tolist() == [1.0]


def test_unsorted_inputs_timezones_and_arrow_tables() -> None:
    features = pa.table(
        {
            "card": ["a", "a", "b"],
            "t": pa.array([20, 10, 5], pa.timestamp("ms", tz="UTC")),
            "f": [2.0, 1.0, 9.0],
        }
    )
    spine = pd.DataFrame({"card": ["a", "b", "a"], "t": _ts([25, 6, 15], tz="America/New_York")})
    out = point_in_time_join(spine, features, entity="card", timestamp="t", ttl=None)
    assert out["f"].tolist() == [2.0, 9.0, 1.0]
    assert str(out["t"].dt.tz) == "America/New_York"  # spine columns untouched


def test_integer_epoch_ms_timestamps() -> None:
    features = pd.DataFrame({"card": ["a", "a"], "t": [1_000, 2_000], "f": [1.0, 2.0]})
    spine = pd.DataFrame({"card": ["a", "a"], "t": [1_500, 3_001]})
    out = point_in_time_join(
        spine, features, entity="card", timestamp="t", ttl=timedelta(seconds=1)
    )
    assert out["f"].tolist()[0] == 1.0
    assert math.isnan(out["f"].iloc[1])  # 1001 ms old


def test_mixing_naive_and_aware_timestamps_is_refused() -> None:
    features = pd.DataFrame({"card": ["a"], "t": _ts([1], tz=None), "f": [1.0]})
    spine = pd.DataFrame({"card": ["a"], "t": _ts([1])})
    with pytest.raises(OfflineError, match="timezone-aware datetimes but the features have naive"):
        point_in_time_join(spine, features, entity="card", timestamp="t", ttl=None)


def test_null_keys_give_nulls_and_never_match() -> None:
    features = pd.DataFrame(
        {"card": ["a", None, "a"], "t": _ts([1, 1, 0]).where([True, True, False]), "f": [1, 2, 3]}
    )
    spine = pd.DataFrame({"card": ["a", None, "a"], "t": _ts([5, 5, 0]).where([True, True, False])})
    out = point_in_time_join(spine, features, entity="card", timestamp="t", ttl=None)
    assert out["f"].iloc[0] == 1
    assert out["f"].iloc[1:].isna().all()


def test_clashing_names_are_suffixed_and_keys_not_duplicated() -> None:
    features = pd.DataFrame({"card": ["a"], "t": _ts([1]), "amount": [5.0], "g": [1.0]})
    spine = pd.DataFrame({"card": ["a"], "t": _ts([2]), "amount": [9.0]})
    out = point_in_time_join(spine, features, entity="card", timestamp="t", ttl=None)
    assert list(out.columns) == ["card", "t", "amount", "amount_feature", "g"]
    assert out["amount_feature"].tolist() == [5.0]


@pytest.mark.parametrize(
    ("side", "frames"),
    [
        ("spine", ({"card": ["a"]}, {"card": ["a"], "t": [1]})),
        ("features", ({"card": ["a"], "t": [1]}, {"t": [1]})),
    ],
)
def test_missing_columns_are_named_with_their_side(
    side: str, frames: tuple[dict[str, list[object]], dict[str, list[object]]]
) -> None:
    spine, features = (pd.DataFrame(f) for f in frames)
    missing = "t" if side == "spine" else "card"
    with pytest.raises(OfflineError, match=rf"{side} has no column '{missing}'"):
        point_in_time_join(spine, features, entity="card", timestamp="t", ttl=None)


def test_bad_ttl_and_timestamp_dtype_are_refused() -> None:
    frame = pd.DataFrame({"card": ["a"], "t": _ts([1]), "f": [1.0]})
    with pytest.raises(OfflineError, match="ttl must be positive"):
        point_in_time_join(frame, frame, entity="card", timestamp="t", ttl=timedelta(0))
    text = pd.DataFrame({"card": ["a"], "t": ["2026-01-01"]})
    with pytest.raises(OfflineError, match="spine timestamp column 't'"):
        point_in_time_join(text, frame, entity="card", timestamp="t", ttl=None)


def _reference(
    spine: list[tuple[str, int]], features: list[tuple[str, int, int]], ttl: int | None
) -> list[int | None]:
    """Plain loops: the newest (then last-listed) row with spine_t - ttl < t <= spine_t."""
    out: list[int | None] = []
    for entity, t in spine:
        best: tuple[int, int] | None = None
        for position, (f_entity, f_t, value) in enumerate(features):
            if f_entity != entity or f_t > t or (ttl is not None and f_t <= t - ttl):
                continue
            if best is None or (f_t, position) >= (features[best[0]][1], best[0]):
                best = (position, value)
        out.append(None if best is None else best[1])
    return out


_ENTITY = st.sampled_from(["a", "b", "c"])
_TIME = st.integers(min_value=0, max_value=40)


@settings(max_examples=150, deadline=None)
@given(
    spine=st.lists(st.tuples(_ENTITY, _TIME), max_size=25),
    features=st.lists(st.tuples(_ENTITY, _TIME, st.integers(0, 10_000)), max_size=25),
    ttl=st.one_of(st.none(), st.integers(min_value=1, max_value=20)),
)
def test_join_equals_a_brute_force_reference(
    spine: list[tuple[str, int]], features: list[tuple[str, int, int]], ttl: int | None
) -> None:
    left = pd.DataFrame({"card": [e for e, _ in spine], "t": _ts([t * MIN for _, t in spine])})
    right = pd.DataFrame(
        {
            "card": [e for e, _, _ in features],
            "t": _ts([t * MIN for _, t, _ in features]),
            "value": [v for _, _, v in features],
            "seen_at": [t for _, t, _ in features],
        }
    )
    out = point_in_time_join(
        left,
        right,
        entity="card",
        timestamp="t",
        ttl=None if ttl is None else timedelta(minutes=ttl),
    )
    got = [None if pd.isna(v) else int(v) for v in out["value"]]
    assert got == _reference(spine, features, ttl)
    for (_, t), seen in zip(spine, out["seen_at"], strict=True):
        if pd.isna(seen):
            continue
        assert seen <= t  # never a row from the spine row's future
        assert ttl is None or seen > t - ttl  # never an expired one


def test_parse_duration() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration("1d12h") == timedelta(hours=36)
    assert parse_duration("500ms") == timedelta(milliseconds=500)
    for bad in ("", "30", "d", "3x", "1.5h"):
        with pytest.raises(OfflineError, match="expected a duration like 30d"):
            parse_duration(bad)


def test_cli_joins_parquet_spine_with_a_delta_feature_table(tmp_path: Path) -> None:
    append_features(tmp_path / "features", [T0, T0 + 10 * MIN], ids=["e0", "e1"])
    spine = pa.table(
        {
            "card_id": ["c0", "c1", "c0"],
            "event_time": pa.array(
                [datetime.fromtimestamp(s / 1000, UTC) for s in (T0 + MIN, T0 + 11 * MIN, T0 - 1)],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    pq.write_table(spine, tmp_path / "spine.parquet")
    out = tmp_path / "out" / "joined.parquet"
    result = CliRunner().invoke(
        app,
        [
            "offline",
            "pit-join",
            str(tmp_path / "spine.parquet"),
            str(tmp_path / "features"),
            "--entity",
            "card_id",
            "--timestamp",
            "event_time",
            "--ttl",
            "5m",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    joined = pq.read_table(out).to_pandas()
    assert joined["event_id"].tolist()[0] == "e0"
    assert joined["event_id"].isna().tolist() == [False, False, True]
    assert "1 matched" not in result.output
    assert "2 matched" in result.output


def test_cli_errors_name_the_missing_column_or_file_without_a_traceback(tmp_path: Path) -> None:
    pq.write_table(pa.table({"card_id": ["a"], "ts": [1]}), tmp_path / "s.parquet")
    options = ["--entity", "card_id", "--timestamp", "event_time", "--out", str(tmp_path / "o")]
    cli = [sys.executable, "-c", "from skewless.cli import main; main()", "offline", "pit-join"]
    missing_column = subprocess.run(
        [*cli, str(tmp_path / "s.parquet"), str(tmp_path / "s.parquet"), *options],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing_column.returncode == 2
    assert "spine has no column 'event_time'" in missing_column.stderr
    assert "Traceback" not in missing_column.stderr
    missing_file = CliRunner().invoke(
        app,
        [
            "offline",
            "pit-join",
            str(tmp_path / "nope.parquet"),
            str(tmp_path / "s.parquet"),
            *options,
        ],
    )
    assert isinstance(missing_file.exception, OfflineError)
    assert "SPINE: no such file or directory" in str(missing_file.exception)
