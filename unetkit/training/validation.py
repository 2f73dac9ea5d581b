"""Whole-image validation during training: the run's network through the same ``Predictor`` as
``unetkit predict`` (overlap-tile, the config's inference settings), scored by the run's task.

Besides the task's scores, ``val_loss`` is the run's loss of those whole-image predictions against the
validation targets (mean over images), so ``curves.png`` can show it beside the training loss. The
validation split carries no weight maps, so it is the loss without the paper's pixel weights: compare
its trend, not its level, with ``train_loss`` when ``data.weight_map`` is on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from unetkit.config import RunConfig
from unetkit.data.splits import SplitData
from unetkit.inference.predictor import Predictor


def validate(model: torch.nn.Module, val: SplitData, config: RunConfig, device: torch.device,
             overlay_dir: Path | None = None) -> dict[str, float]:
    """The task's validation scores (``val_*``) and ``val_loss`` of ``model`` on ``val``; overlays of the
    first images. The network is left in training mode afterwards.
    """
    return validate_pooled(model, val, config, device, overlay_dir)[0]


def validate_pooled(model: torch.nn.Module, val: SplitData, config: RunConfig, device: torch.device,
                    overlay_dir: Path | None = None) -> tuple[dict[str, float], Any]:
    """``validate``'s scores, and what the task pooled over the images (``Task.POOLED``: a multiclass confusion
    matrix; None for tasks that mean per-image scores), which torchrun's processes sum before scoring it."""
    predictor = Predictor(model, config, device)
    task = predictor.task
    loss_fn = task.loss(config)
    position = {id(image): i for i, image in enumerate(val.images)}
    losses: list[float] = []

    def predict_and_score(image: np.ndarray) -> np.ndarray:
        output = predictor.output(image)
        i = position.get(id(image))
        if i is not None and i < len(val.targets):  # the task predicts its own validation images in turn
            logits = torch.from_numpy(np.ascontiguousarray(task.loss_input(output, config), np.float32))[None]
            target = torch.from_numpy(np.asarray(val.targets[i]))[None]
            target = target.long() if not target.is_floating_point() else target
            with torch.no_grad():
                losses.append(float(loss_fn(logits, target)))
        return output

    try:
        scores = task.validate(predict_and_score, val, config, overlay_dir)
    finally:
        model.train()
    pooled = scores.pop(task.POOLED, None)
    if losses:
        scores["val_loss"] = float(np.mean(losses))
    return scores, pooled
