"""What loading the `skewless` command line imports: no training library for any command."""

from __future__ import annotations

import subprocess
import sys

TRAINING_LIBRARIES = ("torch", "sklearn", "offline.pipeline", "offline.onnx_export")


def test_the_command_line_loads_without_training_libraries() -> None:
    """`skewless score run` (the scoring worker) and every other command start without torch.

    Only `skewless demo` and the training commands import them, when they run.
    """
    probe = (
        "import sys, skewless.cli; "
        f"print(','.join(m for m in {TRAINING_LIBRARIES!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""
