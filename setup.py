"""Optional native build of the workers' hot modules (everything else is in pyproject.toml).

With `SKEWLESS_COMPILE=1`, mypyc compiles `COMPILED` to C extensions: `make` does it in
place (`setup.py build_ext --inplace`), and a wheel built with it set ships them. The
modules stay the source of truth: they are plain, strictly typed Python, and an install
without the extensions runs them as Python with the same results, bit for bit (the
tests run against whichever is installed). Measured on the feature worker with every
sink on: ~1.1x events/s; the window kernels alone 1.3-1.6x (README, Performance).
"""

from __future__ import annotations

import os

from setuptools import setup

# Pure modules only (no I/O), each on the per-event path of a worker.
COMPILED = [
    "schemas/features/kernels.py",  # window kernels
    "schemas/features/request.py",  # request-time features
    "schemas/features/online.py",  # the Redis hash of a vector
    "schemas/features/vector_avro.py",  # FeatureVector Avro writer and reader
    "schemas/records_avro.py",  # Transaction Avro reader
    "schemas/_avro_binary.py",  # their Avro primitives
]


def _extensions() -> list[object]:
    if os.environ.get("SKEWLESS_COMPILE") != "1":
        return []
    from mypyc.build import mypycify

    return list(mypycify(COMPILED, opt_level="3", group_name="schemas._native"))


setup(ext_modules=_extensions())
