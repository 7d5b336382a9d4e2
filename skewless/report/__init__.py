"""The HTML report: model cards, curves, drift, scores, latency, throughput in one file."""

from skewless.report.data import Curve, ModelCard, PsiPoint, ReportData
from skewless.report.render import PLOTS, render_report

__all__ = ["PLOTS", "Curve", "ModelCard", "PsiPoint", "ReportData", "render_report"]
