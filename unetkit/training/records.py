"""What a run records so that it can be understood and repeated: the software and machine it ran on, its command,
and the weights it started from (``summary.json``)."""

from __future__ import annotations

import hashlib
import platform
import sys
from pathlib import Path
from typing import Any


def environment(device: str, precision: str) -> dict[str, Any]:
    """The versions, machine and command of this process: what a second run must match to give the same weights
    (``train.precision`` and ``train.device`` may say ``auto``; ``device`` and ``precision`` are what they chose)."""
    import numpy as np
    import torch

    from unetkit import __version__
    from unetkit.cpu.info import cpu_model

    return {"unetkit": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "cpu": cpu_model(),
            "device": device, "precision": precision, "command": [Path(sys.argv[0]).name, *sys.argv[1:]]}


def file_sha256(path: str | Path | None) -> str | None:
    """sha256 of a file, or None for no file: which weights a fine-tune started from."""
    if not path:
        return None
    path = Path(path)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
