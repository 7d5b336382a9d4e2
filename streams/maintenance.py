"""Delta housekeeping: compact small streaming files, checkpoint the log, vacuum safely."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

__all__ = ["CompactionResult", "compact_table"]


@dataclass(frozen=True)
class CompactionResult:
    """What housekeeping did to one table."""

    table: str
    files_before: int
    files_after: int
    files_removed: int
    files_added: int
    vacuumed: int
    version: int


def compact_table(
    uri: str,
    *,
    retention: timedelta = timedelta(days=7),
    storage_options: dict[str, str] | None = None,
) -> CompactionResult | None:
    """Bin-pack small files, write a checkpoint, vacuum files unreferenced for `retention`.

    Returns None when the table does not exist. A retention under 7 days is allowed (it is
    the caller's decision) but readers older than it may lose files they still need.
    """
    try:
        table = DeltaTable(uri, storage_options=storage_options)
    except TableNotFoundError:
        return None
    before = len(table.file_uris())
    metrics = table.optimize.compact()
    table.create_checkpoint()
    hours = int(retention.total_seconds() // 3600)
    # Not checked against the table's deleted-file retention: the tables skewless creates
    # keep tombstones a day past their retention (`delta_appender.retention_properties`).
    vacuumed = table.vacuum(retention_hours=hours, enforce_retention_duration=False, dry_run=False)
    table.cleanup_metadata()
    table.update_incremental()
    return CompactionResult(
        table=uri,
        files_before=before,
        files_after=len(table.file_uris()),
        files_removed=int(metrics.get("numFilesRemoved", 0)),
        files_added=int(metrics.get("numFilesAdded", 0)),
        vacuumed=len(vacuumed),
        version=table.version(),
    )
