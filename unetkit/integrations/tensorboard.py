"""TensorBoard logging of a training run (``train.tensorboard: true``), next to metrics.csv.

Per epoch: every numeric column of the metrics.csv row as a scalar (``train/loss``, ``val/dice``,
``lr`` ...) and, after a validation, the overlay panels written to ``<run>/overlays/`` as images, so
``tensorboard --logdir runs/`` shows the curves and how the masks evolve. Needs the ``tensorboard``
package (extra ``unetkit[tensorboard]``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from unetkit.errors import InputError

_WRITERS: dict[Path, Any] = {}
_SKIP = {"epoch"}


def _writer(run_dir: Path):
    run_dir = Path(run_dir)
    if run_dir not in _WRITERS:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise InputError("train.tensorboard needs the tensorboard package: pip install 'unetkit[tensorboard]' "
                             "(or set train.tensorboard=false)") from error
        _WRITERS[run_dir] = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
    return _WRITERS[run_dir]


def scalar_tag(column: str) -> str:
    """metrics.csv column -> TensorBoard tag: val_dice -> val/dice, train_loss -> train/loss, lr -> lr."""
    for prefix in ("val_", "train_"):
        if column.startswith(prefix):
            return f"{prefix[:-1]}/{column[len(prefix):]}"
    return column


def log_epoch(run_dir: str | Path, row: dict[str, Any], overlays: int = 4) -> None:
    """Write one epoch's metrics row (and the validation overlays it produced) to ``<run>/tensorboard``."""
    writer = _writer(Path(run_dir))
    epoch = int(row["epoch"])
    for key, value in row.items():
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if key not in _SKIP and numeric and math.isfinite(value):
            writer.add_scalar(scalar_tag(key), float(value), epoch)
    if any(key.startswith("val_") for key in row):
        from PIL import Image

        for path in sorted((Path(run_dir) / "overlays").glob("*.png"))[:overlays]:
            with Image.open(path) as image:
                writer.add_image(f"overlays/{path.stem}", np.asarray(image.convert("RGB")), epoch, dataformats="HWC")
    writer.flush()


def close(run_dir: str | Path) -> None:
    """Close the run's event file (the training loop calls it at the end)."""
    writer = _WRITERS.pop(Path(run_dir), None)
    if writer is not None:
        writer.close()
