"""Which modules run compiled (`setup.py`), and whether a checkout's compiled files are stale.

In a source checkout `make` compiles the hot modules in place. Edit one, and until `make`
rebuilds it the old compiled code runs, not the file: the test session refuses to start
then, and the CLI warns. Only a checkout is checked (`setup.py` beside the packages): an
installed wheel's files come from one build.
"""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

__all__ = ["ROOT", "compiled_modules", "stale_modules"]

ROOT = Path(__file__).resolve().parent.parent


def compiled_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name → extension file, for each compiled module that has its `.py` beside it."""
    found: dict[str, Path] = {}
    for suffix in EXTENSION_SUFFIXES:
        for path in (root / "schemas").rglob(f"*{suffix}"):
            source = path.with_name(path.name.removesuffix(suffix) + ".py")
            if source.exists():
                found[".".join(source.relative_to(root).with_suffix("").parts)] = path
    return found


def stale_modules(root: Path = ROOT) -> list[str]:
    """Compiled modules of a checkout changed since its last build (none outside a checkout).

    mypyc builds the code of all of them into one shared library and rewrites only the
    files that changed, so the newest extension file is when they were last built.
    """
    if not (root / "setup.py").exists():
        return []
    compiled = compiled_modules(root)
    if not compiled:
        return []
    built = max(path.stat().st_mtime for path in (root / "schemas").rglob("*.so"))
    return sorted(
        name
        for name in compiled
        if root.joinpath(*name.split(".")).with_suffix(".py").stat().st_mtime > built
    )
