"""Read the Delta tables at pinned versions, and name what was read.

A `DataVersion` is the set of table versions a training set read, `{table: version}`.
Every artifact built from Delta records it, so the same versions always give the same rows
(Delta versions are immutable snapshots; `vacuum` can delete old files, after which an old
version no longer loads and `read_table` says so).

    >>> versions = current_versions(root, ("features", "labels"))      # doctest: +SKIP
    >>> features = read_table(root, "features", version=versions["features"])  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from offline.errors import OfflineError
from offline.tables import table_uri

__all__ = ["DataVersion", "current_versions", "open_delta", "read_delta", "read_table"]


@dataclass(frozen=True, slots=True)
class DataVersion:
    """Delta table versions, `{table name: version}`, kept sorted by name.

    Build one with `DataVersion.of({"features": 31, "labels": 1})`; look a table up with
    `versions["features"]`.
    """

    tables: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        items = tuple(sorted((str(name), int(version)) for name, version in self.tables))
        names = [name for name, _ in items]
        if len(set(names)) != len(names):
            msg = f"data version: duplicate table names in {names}"
            raise OfflineError(msg)
        negative = [f"{name}@{version}" for name, version in items if version < 0]
        if negative:
            msg = f"data version: Delta versions are >= 0, got {negative}"
            raise OfflineError(msg)
        object.__setattr__(self, "tables", items)

    @classmethod
    def of(cls, versions: Mapping[str, int]) -> DataVersion:
        return cls(tuple(versions.items()))

    def __getitem__(self, name: str) -> int:
        for table, version in self.tables:
            if table == name:
                return version
        msg = f"data version has no table {name!r}; tables: {[t for t, _ in self.tables]}"
        raise OfflineError(msg)

    def __contains__(self, name: object) -> bool:
        return any(table == name for table, _ in self.tables)

    def __str__(self) -> str:
        return ",".join(f"{name}@{version}" for name, version in self.tables)

    def as_dict(self) -> dict[str, int]:
        return dict(self.tables)

    def to_json(self) -> str:
        """Canonical JSON text: `{"features": 31, "labels": 1}` (keys sorted)."""
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> DataVersion:
        """The inverse of `to_json`; an error names what was wrong with the text."""
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            msg = f"data version: expected JSON like {{'features': 3}}, got {text!r}"
            raise OfflineError(msg) from exc
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
            for k, v in data.items()
        ):
            msg = f"data version: expected an object of table name -> integer, got {text!r}"
            raise OfflineError(msg)
        return cls.of(data)


def open_delta(
    uri: str,
    *,
    version: int | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> DeltaTable:
    """The Delta table at `uri` (at `version`, else the latest), as an `OfflineError` if absent."""
    options = dict(storage_options) if storage_options else None
    try:
        table = DeltaTable(uri, storage_options=options)
    except TableNotFoundError as exc:
        msg = f"no Delta table at {uri!r} (expected a directory with a _delta_log)"
        raise OfflineError(msg) from exc
    except (DeltaError, OSError) as exc:
        msg = f"cannot open the Delta table at {uri!r}: {exc}"
        raise OfflineError(msg) from exc
    if version is None:
        return table
    latest = table.version()
    if not 0 <= version <= latest:
        msg = f"Delta table {uri!r} has versions 0..{latest}; version {version} does not exist"
        raise OfflineError(msg)
    try:
        table.load_as_version(version)
    except (DeltaError, OSError) as exc:
        msg = (
            f"cannot load version {version} of the Delta table {uri!r} (latest {latest}); "
            f"was it vacuumed, or its log cleaned up after the table's retention? ({exc})"
        )
        raise OfflineError(msg) from exc
    return table


def read_delta(
    uri: str,
    *,
    version: int | None = None,
    storage_options: Mapping[str, str] | None = None,
    columns: Sequence[str] | None = None,
    filters: pc.Expression | None = None,
) -> pa.Table:
    """All rows of the Delta table at `uri` (optionally some columns, filtered) as Arrow."""
    table = open_delta(uri, version=version, storage_options=storage_options)
    if columns is not None:
        have = set(table.schema().to_arrow().names)
        missing = [c for c in columns if c not in have]
        if missing:
            msg = f"Delta table {uri!r} has no column(s) {missing}; columns: {sorted(have)}"
            raise OfflineError(msg)
    try:
        return table.to_pyarrow_table(
            columns=list(columns) if columns is not None else None, filters=filters
        )
    except (DeltaError, OSError, pa.ArrowException) as exc:
        msg = f"cannot read the Delta table {uri!r} at version {table.version()}: {exc}"
        raise OfflineError(msg) from exc


def read_table(
    root: str,
    name: str,
    *,
    version: int | None = None,
    storage_options: Mapping[str, str] | None = None,
    columns: Sequence[str] | None = None,
    filters: pc.Expression | None = None,
) -> pa.Table:
    """The skewless table `name` under the Delta `root`, at `version` (else the latest)."""
    return read_delta(
        table_uri(root, name),
        version=version,
        storage_options=storage_options,
        columns=columns,
        filters=filters,
    )


def current_versions(
    root: str,
    names: Iterable[str],
    *,
    storage_options: Mapping[str, str] | None = None,
) -> DataVersion:
    """The latest version of each named table under `root`: pin these, then read them."""
    versions = {
        name: open_delta(table_uri(root, name), storage_options=storage_options).version()
        for name in names
    }
    return DataVersion.of(versions)
