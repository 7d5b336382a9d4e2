"""`skewless features run` refuses a bad option before it touches a service."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from skewless.cli import app


def test_a_bad_merge_tolerance_names_the_option_and_what_was_expected() -> None:
    result = CliRunner().invoke(app, ["features", "run", "--merge-tolerance", "5x"])
    assert result.exit_code != 0
    message = str(result.exception)
    assert "--merge-tolerance: expected a duration like 30d" in message
    assert "'5x'" in message


def test_a_delta_retention_under_an_hour_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SKEWLESS_DELTA_RETENTION_HOURS", "0")
    result = CliRunner().invoke(app, ["features", "run"])
    assert result.exit_code != 0
    message = str(result.exception)
    assert "delta_retention_hours" in message
    assert "greater than or equal to 1" in message
