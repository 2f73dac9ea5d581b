"""What a run records so that it can be understood and repeated: the software and machine it ran on, and its
command (``summary.json``)."""

from __future__ import annotations

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
