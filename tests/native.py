"""A compiled module's source, loaded as plain Python beside it (see `skewless.native`)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from skewless.native import ROOT


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
