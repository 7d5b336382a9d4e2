"""Stale compiled files in a checkout are found; outside a checkout nothing is checked."""

from __future__ import annotations

import os
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from skewless.native import compiled_modules, stale_modules

_SUFFIX = EXTENSION_SUFFIXES[0]


def _checkout(root: Path, *, setup: bool = True) -> None:
    """A checkout with two compiled modules, built at t=200, sources written at t=100."""
    if setup:
        (root / "setup.py").write_text("")
    for name in ("schemas/a", "schemas/features/b"):
        source = root / f"{name}.py"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("")
        os.utime(source, (100, 100))
        built = root / f"{name}{_SUFFIX}"
        built.write_bytes(b"")
        os.utime(built, (200, 200))


def test_a_source_edited_after_the_build_is_stale(tmp_path: Path) -> None:
    _checkout(tmp_path)
    assert set(compiled_modules(tmp_path)) == {"schemas.a", "schemas.features.b"}
    assert stale_modules(tmp_path) == []
    os.utime(tmp_path / "schemas/features/b.py", (300, 300))
    assert stale_modules(tmp_path) == ["schemas.features.b"]


def test_an_unchanged_file_mypyc_did_not_rewrite_is_not_stale(tmp_path: Path) -> None:
    """A rebuild rewrites only changed files; the newest one dates the build."""
    _checkout(tmp_path)
    os.utime(tmp_path / "schemas/a.py", (300, 300))
    (tmp_path / f"schemas/_native__mypyc{_SUFFIX}").write_bytes(b"")  # the rebuild, now
    assert stale_modules(tmp_path) == []


def test_outside_a_checkout_nothing_is_stale(tmp_path: Path) -> None:
    _checkout(tmp_path, setup=False)
    os.utime(tmp_path / "schemas/a.py", (300, 300))
    assert stale_modules(tmp_path) == []
