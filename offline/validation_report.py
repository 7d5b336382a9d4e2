"""The outcome of validating a training set: one row per check, rendered as a rich table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rich.markup import escape
from rich.table import Table

from offline.errors import ValidationFailed

__all__ = ["Check", "CheckStatus", "ValidationReport"]

CheckStatus = Literal["ok", "warn", "fail"]
_STYLE: dict[str, str] = {"ok": "green", "warn": "yellow", "fail": "bold red"}


@dataclass(frozen=True, slots=True)
class Check:
    """One check on one column (`*` for the whole set): what was expected, what was found."""

    name: str
    column: str
    status: CheckStatus
    expected: str
    got: str

    @property
    def message(self) -> str:
        return (
            f"{self.name} [{self.column}] {self.status}: expected {self.expected}, got {self.got}"
        )

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "column": self.column,
            "status": self.status,
            "expected": self.expected,
            "got": self.got,
        }


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """Every check run on a training set; `ok` unless one failed (warnings pass)."""

    checks: tuple[Check, ...]
    subject: str = "training set"

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == "fail")

    @property
    def warnings(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == "warn")

    def find(self, name: str, column: str | None = None) -> tuple[Check, ...]:
        """The checks called `name` (on `column`, if given)."""
        return tuple(
            c for c in self.checks if c.name == name and (column is None or c.column == column)
        )

    def raise_for_failures(self) -> None:
        """Raise `ValidationFailed` listing every failed check; return if none failed."""
        if self.ok:
            return
        lines = "; ".join(c.message for c in self.failures)
        msg = f"{self.subject} failed {len(self.failures)} validation check(s): {lines}"
        raise ValidationFailed(msg)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "ok": self.ok,
            "failures": len(self.failures),
            "warnings": len(self.warnings),
            "checks": [c.to_dict() for c in self.checks],
        }

    def to_rich(self, *, problems_only: bool = False) -> Table:
        """A rich table of the checks (only the failed and warned ones if `problems_only`)."""
        shown = [c for c in self.checks if c.status != "ok"] if problems_only else self.checks
        verdict = "[green]passed[/]" if self.ok else "[bold red]FAILED[/]"
        table = Table(
            title=f"validation of the {self.subject}: {verdict} "
            f"({len(self.failures)} failed, {len(self.warnings)} warnings, "
            f"{len(self.checks)} checks)"
        )
        for header in ("check", "column", "status", "expected", "got"):
            table.add_column(header, overflow="fold")
        for c in shown:
            status = f"[{_STYLE[c.status]}]{c.status}[/]"
            table.add_row(
                escape(c.name), escape(c.column), status, escape(c.expected), escape(c.got)
            )
        if not shown:
            table.add_row("*", "*", "[green]ok[/]", f"all {len(self.checks)} checks", "ok")
        return table
