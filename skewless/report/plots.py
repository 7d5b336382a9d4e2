"""The report's plots, each drawn with matplotlib (Agg) and returned as an inline SVG."""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

from skewless.report.data import ReportData

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["PLOT_FUNCTIONS"]

_SIZE = (6.4, 3.6)


def _svg(draw: Callable[[Axes], None]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=_SIZE, layout="constrained")
    try:
        draw(axes)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    finally:
        plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _empty(axes: Axes, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes)
    axes.set_axis_off()


def roc(data: ReportData) -> str:
    def draw(ax: Axes) -> None:
        if not data.curves:
            return _empty(ax, "no evaluated models")
        for c in data.curves:
            ax.plot(c.fpr, c.tpr, label=f"{c.label} (AUC {c.roc_auc:.3f})")
        ax.plot([0, 1], [0, 1], ls=":", color="grey")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
        ax.legend(loc="lower right")
        return None

    return _svg(draw)


def pr(data: ReportData) -> str:
    def draw(ax: Axes) -> None:
        if not data.curves:
            return _empty(ax, "no evaluated models")
        for c in data.curves:
            ax.plot(c.recall, c.precision, label=f"{c.label} (AP {c.pr_auc:.3f})")
        ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
        ax.legend(loc="upper right")
        return None

    return _svg(draw)


def psi(data: ReportData) -> str:
    def draw(ax: Axes) -> None:
        if not data.psi:
            return _empty(ax, "no drift windows closed yet")
        series: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for p in data.psi:
            series[p.feature].append((p.window_start, p.psi))
        # The score and the features that drifted most, so the plot stays readable.
        ranked = sorted(series, key=lambda f: (f != "__score__", -max(v for _, v in series[f])))
        for feature in ranked[:8]:
            points = sorted(series[feature])
            hours = [(t - points[0][0]) / 3_600_000 for t, _ in points]
            ax.plot(hours, [v for _, v in points], marker=".", label=feature)
        ax.axhline(data.psi_warn, color="orange", ls="--", label=f"warn {data.psi_warn}")
        ax.axhline(data.psi_alert, color="red", ls="--", label=f"alert {data.psi_alert}")
        ax.set(xlabel="event time (hours from first window)", ylabel="PSI", title="Drift (PSI)")
        ax.legend(fontsize="x-small", ncol=2)
        return None

    return _svg(draw)


def scores(data: ReportData) -> str:
    def draw(ax: Axes) -> None:
        if not data.scores:
            return _empty(ax, "no predictions yet")
        for label, values in sorted(data.scores.items()):
            ax.hist(values, bins=50, range=(0, 1), histtype="step", log=True, label=label)
        ax.set(xlabel="score", ylabel="predictions (log)", title="Score distributions")
        ax.legend()
        return None

    return _svg(draw)


def latency(data: ReportData) -> str:
    def draw(ax: Axes) -> None:
        if not data.latency_ms:
            return _empty(ax, "no latency samples")
        ax.hist(data.latency_ms, bins=60)
        ax.set(xlabel="event → prediction (ms)", ylabel="predictions", title="End-to-end latency")
        return None

    return _svg(draw)


def throughput(data: ReportData) -> str:
    def draw(ax: Axes) -> None:
        if not data.throughput:
            return _empty(ax, "no throughput samples")
        start = data.throughput[0][0]
        ax.plot([t - start for t, _ in data.throughput], [r for _, r in data.throughput])
        ax.set(xlabel="seconds", ylabel="predictions/s", title="Throughput")
        return None

    return _svg(draw)


PLOT_FUNCTIONS: dict[str, Callable[[ReportData], str]] = {
    "roc": roc,
    "pr": pr,
    "psi": psi,
    "scores": scores,
    "latency": latency,
    "throughput": throughput,
}
