"""The HTML report renders every plot in a real browser (headless Chromium)."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from skewless.report import PLOTS, Curve, ModelCard, PsiPoint, ReportData, render_report


def _data() -> ReportData:
    grid = [i / 50 for i in range(51)]
    curve = Curve(
        label="champion",
        fpr=grid,
        tpr=[math.sqrt(x) for x in grid],
        recall=grid,
        precision=[1 - 0.8 * x for x in grid],
        roc_auc=0.91,
        pr_auc=0.62,
    )
    baseline = Curve("baseline", grid, grid, grid, [0.2] * 51, 0.5, 0.2)
    psi = [
        PsiPoint(
            1_767_225_600_000 + h * 3_600_000, f, 0.02 * h if f == "amount" else 0.01, "ok", "1"
        )
        for h in range(12)
        for f in ("amount", "__score__")
    ]
    return ReportData(
        title="test report",
        generated_at=1_767_225_600,
        models=[ModelCard("skewless-fraud", "1", ["champion"], {"pr_auc": 0.62}, {"data": "f@3"})],
        curves=[curve, baseline],
        psi=psi,
        scores={"champion": [i / 1000 for i in range(1000)]},
        latency_ms=[float(i % 40) for i in range(500)],
        throughput=[(1_767_225_600 + s, 1000.0 + s) for s in range(30)],
        summary={"events": 1000, "skew_mismatches": 0},
    )


def test_report_is_one_self_contained_file_with_every_plot(tmp_path: Path) -> None:
    path = render_report(_data(), tmp_path / "report.html")
    page = path.read_text()
    assert page.count('<figure class="plot"') == len(PLOTS)
    # No external assets: nothing is fetched (XML namespaces are names, not requests).
    assert not re.search(r"""(src|href)=["']https?:|url\(["']?https?:|@import""", page)


def test_roundtrip_of_report_data_through_json() -> None:
    data = _data()
    assert ReportData.from_json(data.to_json()) == data


@pytest.mark.integration
def test_every_plot_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium; .ci/run does)")
    path = render_report(_data(), tmp_path / "report.html")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
        "--window-size=1280,2400",
    ]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    match = re.search(r'data-plots-rendered="([^"]*)"', dom)
    assert match is not None, "the page's load probe did not run"
    assert set(match.group(1).split(",")) == set(PLOTS)

    screenshot = tmp_path / "report.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={screenshot}", path.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert screenshot.stat().st_size > 10_000
