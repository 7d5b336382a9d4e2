"""Names of the Delta tables skewless writes, and their metadata columns.

Mirrors `streams/delta_tables.py` (the writer) without importing it: `offline` reads the
tables, it does not depend on the dataflows. A test checks the two stay in step.
Timestamps are `timestamp[us, UTC]` in Delta; readers turn them into epoch milliseconds.
"""

from __future__ import annotations

__all__ = [
    "FEATURES",
    "FEATURE_METADATA_COLUMNS",
    "LABELS",
    "LABEL_COLUMNS",
    "TRANSACTIONS",
    "table_uri",
]

TRANSACTIONS = "transactions"
FEATURES = "features"
LABELS = "labels"

# Columns of the features table that are not feature values (entity key columns, such as
# card_id and merchant_id, come from the feature set's entities).
FEATURE_METADATA_COLUMNS = (
    "event_id",
    "event_time",
    "source_partition",
    "source_offset",
    "source_timestamp",
    "computed_at",
    "definition_version",
    "late",
    "event_date",
)
LABEL_COLUMNS = (
    "event_id",
    "is_fraud",
    "label_time",
    "reason",
    "source_partition",
    "source_offset",
    "label_date",
)


def table_uri(root: str, name: str) -> str:
    """`<root>/<name>`, for local paths and object-store URIs alike."""
    return f"{root.rstrip('/')}/{name}"
