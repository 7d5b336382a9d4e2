"""Which modules of this checkout run compiled (setup.py), and the source of one of them."""

from __future__ import annotations

import importlib.util
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def compiled_modules() -> dict[str, Path]:
    """Dotted name → extension file, for each compiled module that has its `.py` beside it."""
    found: dict[str, Path] = {}
    for suffix in EXTENSION_SUFFIXES:
        for path in (ROOT / "schemas").rglob(f"*{suffix}"):
            source = path.with_name(path.name.removesuffix(suffix) + ".py")
            if source.exists():
                dotted = source.relative_to(ROOT).with_suffix("").parts
                found[".".join(dotted)] = path
    return found


def stale_modules() -> list[str]:
    """Compiled modules changed since the last build: what runs is not what the file says.

    mypyc builds the compiled code of all of them into one shared library and rewrites only
    the files that changed, so the newest extension file is when they were last built.
    """
    compiled = compiled_modules()
    if not compiled:
        return []
    built = max(path.stat().st_mtime for path in (ROOT / "schemas").rglob("*.so"))
    return sorted(
        name
        for name in compiled
        if ROOT.joinpath(*name.split(".")).with_suffix(".py").stat().st_mtime > built
    )


def source_module(name: str) -> ModuleType:
    """Module `name` loaded from its `.py` as plain Python, beside the compiled one."""
    path = ROOT.joinpath(*name.split(".")).with_suffix(".py")
    spec = importlib.util.spec_from_file_location(f"_source_of_{name.replace('.', '_')}", path)
    if spec is None or spec.loader is None:
        msg = f"cannot load {path}"
        raise ImportError(msg)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
