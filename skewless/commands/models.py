"""`skewless train` and `skewless models list|show|promote|rollback`: the model registry.

The tracking store is `Settings.tracking_uri` (sqlite under `data_dir` unless
`SKEWLESS_MLFLOW_URI` says otherwise); with the default local store, artifacts go under
`<data_dir>/mlartifacts`. `--json PATH` writes the figures there (`-` prints them).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from offline.model_card import METRIC_LABELS
from offline.registry import (
    DEFAULT_MODEL_NAME,
    ModelVersionInfo,
    get_version,
    list_versions,
    promote,
    rollback,
)
from skewless.commands.offline_data import parse_cutoff, parse_duration
from skewless.output import console, write_json
from skewless.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from offline.pipeline import PipelineReport

__all__ = ["models_app", "print_model_card", "register", "train_command"]

models_app = typer.Typer(help="The model registry: versions, aliases, promotion, rollback.")

_Json = Annotated[
    Path | None, typer.Option("--json", help="Also write the figures as JSON here ('-': stdout).")
]
_Name = Annotated[str, typer.Option("--name", help="Registered model name.")]


def _emit_json(path: Path | None, data: Any) -> None:
    if path is not None and str(path) == "-":
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    else:
        write_json(path, data)


def _store(settings: Settings) -> tuple[str, Path | None]:
    """The tracking URI and, for the default local store, its artifact root."""
    if settings.mlflow_uri is not None:
        return settings.mlflow_uri, None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings.tracking_uri, (settings.data_dir / "mlartifacts").resolve()


def _metric(info: ModelVersionInfo, key: str) -> str:
    value = info.metrics.get(f"test_{key}")
    return "—" if value is None else f"{value:.4f}"


def _data_version(info: ModelVersionInfo, *, short: bool = False) -> str:
    text = info.tags.get("data_version")
    if text is None:
        return "—"
    versions = sorted(json.loads(text).items())
    if short:
        return "/".join(str(version) for _, version in versions)
    return ",".join(f"{table}@{version}" for table, version in versions)


def _versions_table(versions: list[ModelVersionInfo], name: str) -> Table:
    table = Table(title=f"{name}: test-split PR-AUC vs the rules baseline, recall @ 1% FPR")
    for header in ("ver", "alias", "PR-AUC", "baseline", "R@1%FPR", "data f/l"):
        table.add_column(header, no_wrap=True)
    table.add_column("sha256", no_wrap=True)
    for info in versions:
        baseline = info.metrics.get("baseline_pr_auc")
        blocked = info.tags.get("gate_status") == "failed"
        table.add_row(
            str(info.version),
            ", ".join(info.aliases) or ("[red]blocked[/]" if blocked else "—"),
            _metric(info, "pr_auc"),
            "—" if baseline is None else f"{baseline:.4f}",
            _metric(info, "recall_at_1pct_fpr"),
            _data_version(info, short=True),
            info.onnx_sha256[:8],
        )
    return table


@models_app.command("list")
def list_command(name: _Name = DEFAULT_MODEL_NAME, json_out: _Json = None) -> None:
    """Every version with its aliases, test metrics, data version and ONNX sha256."""
    uri, _ = _store(load_settings())
    versions = list_versions(uri, name)
    if json_out is None or str(json_out) != "-":
        console.print(_versions_table(versions, name))
    _emit_json(json_out, {"name": name, "versions": [v.to_json() for v in versions]})


@models_app.command("show")
def show_command(
    version: Annotated[str, typer.Argument(help="A version number or an alias (champion).")],
    name: _Name = DEFAULT_MODEL_NAME,
    json_out: _Json = None,
) -> None:
    """One version: aliases, tags (thresholds, lineage, gates) and run metrics."""
    uri, _ = _store(load_settings())
    info = get_version(uri, version, name=name)
    data = info.to_json()
    if json_out is None or str(json_out) != "-":
        table = Table(title=f"{name} v{info.version} ({', '.join(info.aliases) or 'no alias'})")
        table.add_column("field")
        table.add_column("value", overflow="fold")
        table.add_row("run_id", info.run_id)
        table.add_row("onnx_sha256", info.onnx_sha256)
        table.add_row("data_version", _data_version(info))
        for key in ("definition_version", "decision_threshold", "review_threshold"):
            table.add_row(key, info.tags.get(key, "—"))
        gates = json.loads(info.tags.get("gate_report", '{"results": []}'))["results"]
        for gate in gates:
            verdict = "pass" if gate["passed"] else "FAIL"
            table.add_row(
                f"gate {gate['gate']}", f"{verdict}: expected {gate['expected']}, got {gate['got']}"
            )
        for key, value in sorted(info.metrics.items()):
            table.add_row(key, f"{value:.6g}")
        console.print(table)
    _emit_json(json_out, data)


@models_app.command("promote")
def promote_command(name: _Name = DEFAULT_MODEL_NAME) -> None:
    """Make the challenger the champion (the old champion is kept for rollback)."""
    uri, _ = _store(load_settings())
    change = promote(uri, name=name)
    console.print(
        f"[green]promoted[/] {name} v{change.champion} to champion "
        f"(previous champion: {change.previous or 'none'})"
    )


@models_app.command("rollback")
def rollback_command(name: _Name = DEFAULT_MODEL_NAME) -> None:
    """Move the champion back to the version the last promotion replaced."""
    uri, _ = _store(load_settings())
    change = rollback(uri, name=name)
    console.print(
        f"[yellow]rolled back[/] {name}: champion is v{change.champion} again "
        f"(was v{change.previous})"
    )


def print_model_card(report: PipelineReport) -> None:
    """The model card of a training run: metrics vs baseline/champion, gates, lineage."""
    card = report.card
    if report.validation is not None:
        v = report.validation
        console.print(
            f"validation of the {v['subject']}: [green]passed[/] "
            f"({len(v['checks'])} checks, {v['warnings']} warnings)"
        )
    columns = {"model": report.model, "rules baseline": report.baseline}
    if report.champion is not None:
        columns[f"champion v{card['champion_version']}"] = report.champion
    table = Table(title=f"model card: {report.name} v{report.version} (test split)")
    table.add_column("metric")
    for column in columns:
        table.add_column(column, justify="right")
    for key, label in METRIC_LABELS.items():
        table.add_row(label, *(f"{getattr(m, key):.4f}" for m in columns.values()))
    table.add_row("rows / fraud", *(f"{m.rows:,} / {m.positives:,}" for m in columns.values()))
    console.print(table)
    t, on_test = report.thresholds, card["decision_on_test"]
    console.print(
        f"decline at score ≥ {t.decision:.4g} ({t.rule}), review at ≥ {t.review:.4g}; on test: "
        f"precision {on_test['precision']:.3f}, recall {on_test['recall']:.3f}, "
        f"decline rate {on_test['decline_rate']:.3%}"
    )
    for gate in report.gates.results:
        colour = "green" if gate.passed else "red"
        console.print(f"  [{colour}]{gate.describe()}[/]")
    lineage, data = card["lineage"], card["data"]
    console.print(
        f"data version {lineage['data_version']}, definition {lineage['definition_version']}, "
        f"rows {data['counts']}, training set {lineage['training_set_fingerprint'][:12]}, "
        f"git {lineage['git_commit'][:12]}, parity {report.parity.max_abs_diff:.2g}"
    )
    verdict = (
        f"[green]{report.alias}[/]" if report.alias else "[red]no alias (blocked by a gate)[/]"
    )
    console.print(
        f"registered {report.name} v{report.version} → {verdict}; run {report.run_id}, "
        f"onnx sha256 {report.onnx_sha256[:16]}…"
    )


def train_command(
    cutoff: Annotated[
        str, typer.Option(help="'latest' (the newest event or label time) or ISO 8601 UTC.")
    ] = "latest",
    maturity: Annotated[str, typer.Option(help="How long labels get to arrive (7d, 36h).")] = "7d",
    seed: Annotated[int, typer.Option(help="Seed of every random choice in training.")] = 7,
    epochs: Annotated[int, typer.Option(min=1, help="Maximum epochs (early stopping).")] = 30,
    name: _Name = DEFAULT_MODEL_NAME,
    pr_auc_tolerance: Annotated[
        float, typer.Option(help="Gate: PR-AUC may trail the champion by this much.")
    ] = 0.01,
    json_out: _Json = None,
) -> None:
    """Build, validate, train, export, evaluate, log and register a model; gate it."""
    try:
        from offline.gates import GateConfig
        from offline.pipeline import PipelineFailed, run_pipeline
        from offline.train import TrainConfig
    except ImportError as exc:
        msg = (
            f"skewless train needs the training extra ({exc.name} is missing): "
            "pip install 'skewless[train]'"
        )
        raise SettingsError(msg) from exc
    settings = load_settings()
    uri, artifact_root = _store(settings)
    at = parse_cutoff(cutoff)
    cutoff_ms = (
        None if at is None else (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    )
    try:
        with console.status("[bold]training[/] …"):
            report = run_pipeline(
                settings.delta_root,
                tracking_uri=uri,
                artifact_root=artifact_root,
                cutoff_ms=cutoff_ms,
                maturity=parse_duration(maturity, option="--maturity"),
                storage_options=settings.delta_storage_options or None,
                config=TrainConfig(seed=seed, epochs=epochs),
                gates=GateConfig(pr_auc_tolerance=pr_auc_tolerance),
                name=name,
            )
    except PipelineFailed as exc:
        console.print(exc.report.to_rich(problems_only=True))
        console.print("[bold red]validation failed: nothing was trained[/]")
        _emit_json(json_out, {"validation": exc.report.to_dict(), "trained": False})
        raise typer.Exit(1) from exc
    if json_out is None or str(json_out) != "-":
        print_model_card(report)
    _emit_json(json_out, report.to_json())


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
    app.command("train")(train_command)
