"""`skewless offline pit-join|versions` and `skewless validate`: the data half of training."""

from __future__ import annotations

import re
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.parquet as pq
import typer

from offline.delta_reader import DataVersion, current_versions, read_delta
from offline.errors import OfflineError
from offline.reference_stats import ReferenceStats
from offline.tables import FEATURES, LABELS, TRANSACTIONS
from offline.training_set import build_training_set, data_end_ms
from offline.validation import validate_training_set
from schemas.features.fraud import FRAUD_FEATURES
from skewless.output import console, write_json
from skewless.settings import load_settings

__all__ = ["offline_app", "parse_cutoff", "parse_duration", "register"]

offline_app = typer.Typer(help="Offline data: Delta versions and point-in-time joins.")

_Json = Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON here.")]
_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")


def parse_duration(value: str, *, option: str = "duration") -> timedelta:
    """`30d`, `12h`, `15m`, `90s`, `500ms`, `1w`, or combined like `1d12h`."""
    text = value.strip().lower()
    parts = _PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        msg = f"{option}: expected a duration like 30d, 12h, 15m, 90s or 1d12h, got {value!r}"
        raise OfflineError(msg)
    return sum((int(n) * _UNITS[u] for n, u in parts), timedelta(0))


def parse_cutoff(value: str) -> datetime | None:
    """`latest` (None) or an ISO 8601 instant; a time without a zone is taken as UTC."""
    if value.strip().lower() == "latest":
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        msg = (
            f"--cutoff: expected 'latest' or an ISO 8601 time like 2026-01-20T00:00Z, got {value!r}"
        )
        raise OfflineError(msg) from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _read_input(location: str, role: str) -> pa.Table:
    """A Parquet file or directory, or a Delta table directory (one with a `_delta_log`)."""
    if "://" in location:
        return read_delta(location)
    path = Path(location)
    if not path.exists():
        msg = f"{role}: no such file or directory {location!r} (expected Parquet or a Delta table)"
        raise OfflineError(msg)
    if path.is_dir() and (path / "_delta_log").is_dir():
        return read_delta(str(path))
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        msg = f"{role}: {location!r} is neither a Parquet file nor a Delta table ({exc})"
        raise OfflineError(msg) from exc


@offline_app.command("pit-join")
def pit_join(
    spine: Annotated[str, typer.Argument(help="Parquet file or Delta table: rows to enrich.")],
    features: Annotated[str, typer.Argument(help="Parquet file or Delta table of features.")],
    entity: Annotated[str, typer.Option(help="Entity key column, in both inputs.")],
    timestamp: Annotated[str, typer.Option(help="Timestamp column, in both inputs.")],
    out: Annotated[Path, typer.Option(help="Write the joined rows here (Parquet).")],
    ttl: Annotated[
        str | None, typer.Option(help="Ignore feature rows this old or older (30d, 12h, 15m).")
    ] = None,
    json_out: _Json = None,
) -> None:
    """Per spine row, the newest feature row of its entity with spine_ts - ttl < ts <= spine_ts."""
    from offline.pit import point_in_time_join  # needs pandas (the train extra)

    ttl_delta = parse_duration(ttl, option="--ttl") if ttl is not None else None
    left = _read_input(spine, "SPINE")
    right = _read_input(features, "FEATURES")
    joined = point_in_time_join(left, right, entity=entity, timestamp=timestamp, ttl=ttl_delta)
    added = joined.columns[len(left.column_names) :]
    matched = int(joined[added].notna().any(axis=1).sum()) if len(added) else 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # pyarrow's pandas shim reads tz-aware columns through Series.values, which
        # pandas 3.1 deprecates; the values written are the same UTC instants.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        table = pa.Table.from_pandas(joined, preserve_index=False)
    pq.write_table(table, out)
    figures = {"rows": len(joined), "matched": matched, "feature_columns": len(added)}
    console.print(
        f"pit-join: {len(joined):,} spine rows, {matched:,} matched, "
        f"{len(added)} feature columns → {out}"
    )
    write_json(json_out, {**figures, "out": str(out)})


@offline_app.command("versions")
def versions_command(json_out: _Json = None) -> None:
    """The current version of each skewless Delta table (what a training set would pin)."""
    settings = load_settings()
    options = settings.delta_storage_options or None
    found: dict[str, int] = {}
    for name in (TRANSACTIONS, FEATURES, LABELS):
        try:
            found.update(
                current_versions(settings.delta_root, [name], storage_options=options).as_dict()
            )
        except OfflineError as exc:
            console.print(f"{name}: [yellow]{exc}[/]")
    console.print(f"data version: {DataVersion.of(found)}")
    write_json(json_out, found)


def _print_summary(summary: dict[str, Any]) -> None:
    counts, positives, rates = summary["counts"], summary["positives"], summary["label_rates"]
    console.print(
        f"training set {summary['fingerprint'][:12]}: {summary['rows']:,} rows, "
        f"{summary['features']} features, label rate {summary['label_rate']:.4%}, "
        f"data version {DataVersion.of(summary['data_version'])}"
    )
    for split in counts:
        console.print(
            f"  {split:>5}: {counts[split]:>9,} rows, {positives[split]:>6,} positives "
            f"({rates[split]:.4%})"
        )


def validate_command(
    cutoff: Annotated[
        str, typer.Option(help="'latest' (the newest event or label time) or ISO 8601 UTC.")
    ] = "latest",
    maturity: Annotated[str, typer.Option(help="How long labels get to arrive (7d, 36h).")] = "7d",
    reference: Annotated[
        Path | None, typer.Option(help="Reference stats JSON of a previous version (drift).")
    ] = None,
    save_reference: Annotated[
        Path | None, typer.Option(help="Write this set's reference stats JSON here.")
    ] = None,
    show_all: Annotated[bool, typer.Option("--all", help="List passing checks too.")] = False,
    json_out: _Json = None,
) -> None:
    """Build the training set from the configured Delta root and validate it (exit 1 on failure)."""
    settings = load_settings()
    root, options = settings.delta_root, settings.delta_storage_options or None
    maturity_delta = parse_duration(maturity, option="--maturity")
    at = parse_cutoff(cutoff)
    versions = current_versions(root, (FEATURES, LABELS), storage_options=options)
    cutoff_ms = (
        data_end_ms(root, versions, storage_options=options)
        if at is None
        else (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    )
    ts = build_training_set(
        root,
        cutoff_ms=cutoff_ms,
        maturity=maturity_delta,
        feature_set=FRAUD_FEATURES,
        versions=versions,
        storage_options=options,
    )
    previous = None
    if reference is not None:
        if not reference.is_file():
            msg = f"--reference: no such file {str(reference)!r}"
            raise OfflineError(msg)
        previous = ReferenceStats.from_json(reference.read_text())
    report = validate_training_set(ts, feature_set=FRAUD_FEATURES, previous=previous)
    summary = ts.summary()
    summary["cutoff"] = datetime.fromtimestamp(cutoff_ms / 1000, tz=UTC).isoformat()
    console.print(report.to_rich(problems_only=not show_all))
    _print_summary(summary)
    if save_reference is not None:
        save_reference.parent.mkdir(parents=True, exist_ok=True)
        save_reference.write_text(ReferenceStats.from_training_set(ts).to_json() + "\n")
    write_json(json_out, {"training_set": summary, "validation": report.to_dict()})
    if not report.ok:
        console.print("[bold red]validation failed: nothing may be trained on this set[/]")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(offline_app, name="offline")
    app.command("validate")(validate_command)
