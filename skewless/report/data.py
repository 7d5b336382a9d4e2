"""What a report shows, as plain JSON-able records (collected from the real stores)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Curve", "ModelCard", "PsiPoint", "ReportData"]


@dataclass(frozen=True)
class Curve:
    """ROC and precision-recall points of one scorer on the test split."""

    label: str
    fpr: list[float]
    tpr: list[float]
    recall: list[float]
    precision: list[float]
    roc_auc: float
    pr_auc: float


@dataclass(frozen=True)
class ModelCard:
    """One registered model version with its metrics and lineage."""

    name: str
    version: str
    aliases: list[str]
    metrics: dict[str, float]
    lineage: dict[str, str]


@dataclass(frozen=True)
class PsiPoint:
    """PSI of one feature (or `__score__`) in one event-time window."""

    window_start: int
    feature: str
    psi: float
    level: str
    model_version: str


@dataclass
class ReportData:
    """Everything the report plots; missing parts render as an explained empty plot."""

    title: str = "skewless report"
    generated_at: int = 0
    models: list[ModelCard] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)
    psi: list[PsiPoint] = field(default_factory=list)
    psi_warn: float = 0.1
    psi_alert: float = 0.25
    scores: dict[str, list[float]] = field(default_factory=dict)
    latency_ms: list[float] = field(default_factory=list)
    throughput: list[tuple[int, float]] = field(default_factory=list)  # (epoch s, events/s)
    summary: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReportData:
        return cls(
            title=data.get("title", "skewless report"),
            generated_at=int(data.get("generated_at", 0)),
            models=[ModelCard(**m) for m in data.get("models", [])],
            curves=[Curve(**c) for c in data.get("curves", [])],
            psi=[PsiPoint(**p) for p in data.get("psi", [])],
            psi_warn=float(data.get("psi_warn", 0.1)),
            psi_alert=float(data.get("psi_alert", 0.25)),
            scores={k: list(v) for k, v in data.get("scores", {}).items()},
            latency_ms=list(data.get("latency_ms", [])),
            throughput=[(int(t), float(r)) for t, r in data.get("throughput", [])],
            summary=dict(data.get("summary", {})),
        )
