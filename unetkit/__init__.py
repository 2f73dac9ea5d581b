"""unetkit: U-Net biomedical image segmentation, as a library and a command line.

::

    import unetkit

    model = unetkit.load("runs/nuclei/best.pt")     # any task, 2D or 3D; normalisation inside
    result = model.predict(image)                     # numpy, or a zarr/dask array read tile by tile
    result.probabilities, result.mask, result.labels  # what the task gives; labels for instances
    run = unetkit.train("data/train", out="runs/x", task="instances", epochs=30,
                        **{"model.base_channels": 32})
    scores = unetkit.evaluate(truth="data/val/masks", pred="runs/x/val/masks", task="binary")

``Predictor`` (what ``load`` returns) and ``Result`` (what ``predict`` returns) are importable from
here too. The main ``unetkit`` commands (train, predict, predict-large, evaluate, export) call these functions.
"""

from __future__ import annotations

from typing import Any

from unetkit.api import evaluate, export_model, load, predict_files, predict_large, train

__version__ = "0.1.0"

__all__ = ["Predictor", "Result", "evaluate", "export_model", "load", "predict_files", "predict_large", "train"]


def __getattr__(name: str) -> Any:
    """``Predictor`` and ``Result`` on first use (they import torch; ``import unetkit`` stays quick)."""
    if name == "Predictor":
        from unetkit.inference.predictor import Predictor

        return Predictor
    if name == "Result":
        from unetkit.tasks.base import Result

        return Result
    raise AttributeError(f"module 'unetkit' has no attribute {name!r}")
