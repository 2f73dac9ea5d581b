"""Whole-image validation during training: the run's network through the same ``Predictor`` as
``unetkit predict`` (overlap-tile, the config's inference settings), scored by the run's task."""

from __future__ import annotations

from pathlib import Path

import torch

from unetkit.config import RunConfig
from unetkit.data.splits import SplitData
from unetkit.inference.predictor import Predictor


def validate(model: torch.nn.Module, val: SplitData, config: RunConfig, device: torch.device,
             overlay_dir: Path | None = None) -> dict[str, float]:
    """The task's validation scores (``val_*``) of ``model`` on ``val``; overlays of the first images.

    The network is left in training mode afterwards.
    """
    predictor = Predictor(model, config, device)
    try:
        return predictor.task.validate(predictor.output, val, config, overlay_dir)
    finally:
        model.train()
