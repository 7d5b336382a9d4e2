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


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("delta_retention_hours", "0", "greater than or equal to 1"),
        ("delta_commit_seconds", "-1", "greater than or equal to 0"),
    ],
)
def test_a_bad_delta_setting_is_refused_naming_it_and_what_was_expected(
    setting: str, value: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"SKEWLESS_{setting.upper()}", value)
    result = CliRunner().invoke(app, ["features", "run"])
    assert result.exit_code != 0
    message = str(result.exception)
    assert setting in message
    assert expected in message
