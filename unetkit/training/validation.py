"""Whole-image prediction and validation during training (overlap-tile, the config's inference settings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unetkit.config import RunConfig
from unetkit.data.volumes import middle_slice
from unetkit.errors import InputError
from unetkit.inference.predict import NetGeometry, TorchPredictor, plan_tiles, predict_tiled
from unetkit.models.registry import resolve_model_config
from unetkit.training.data import SplitData, target_kind
from unetkit.training.tasks import NEW_TASKS, output_activation
from unetkit.visualize.images import mask_overlay, save_rgb, side_by_side, to_display_rgb


def predict_probabilities(model, image: np.ndarray, config: RunConfig, device, out_channels: int,
                          progress: bool = False) -> np.ndarray:
    """Overlap-tile softmax probabilities (K, *S) of one normalised image with a config's settings
    (regression: the linear output (C', *S), still normalised)."""
    geometry = NetGeometry.from_config(resolve_model_config(config.model))
    predictor = TorchPredictor(model, device, activation=output_activation(config), tta=config.inference.tta,
                               amp=config.train.amp)
    tile, batch = prediction_tile(config, image.shape[1:], device)
    return predict_tiled(image, predictor, geometry, out_channels, tile, config.inference.overlap, batch,
                         config.inference.blend, progress=progress)


def prediction_tile(config: RunConfig, spatial_shape, device) -> tuple[int | tuple[int, ...], int]:
    """(tile size, tiles per batch) for an image: ``inference.tile_shape`` or ``tile_size``; 3D nets
    shrink the batch, then the tile, to what fits the memory budget (``unetkit.models.memory``)."""
    from unetkit.models.memory import fit_prediction_tile

    inference = config.inference
    model = resolve_model_config(config.model)
    tile = list(inference.tile_shape) or inference.tile_size
    if inference.tile_shape and len(inference.tile_shape) != len(spatial_shape):
        raise InputError(f"inference.tile_shape needs {len(spatial_shape)} sizes, got {inference.tile_shape}")
    if model.spatial_dims != 3:
        return (tuple(tile) if isinstance(tile, list) else tile), inference.batch_size
    planned = plan_tiles(tuple(spatial_shape), NetGeometry.from_config(model), tile, inference.overlap)[0]
    return fit_prediction_tile(model, planned, inference.batch_size, device, inference.memory_limit_gb)


def validate(model, val: SplitData, config: RunConfig, device, out_channels: int,
             overlay_dir: Path | None = None) -> dict[str, float]:
    """Whole-image validation by overlap-tile prediction: mean per-image Dice/IoU of the foreground,
    and for the instances task the DSB score after post-processing (multiclass and regression:
    ``unetkit.training.task_validation``)."""
    from unetkit.metrics.binary import binary_counts, dice, iou

    if config.task in NEW_TASKS:
        from unetkit.training.task_validation import validate_task

        return validate_task(model, val, config, device, out_channels, overlay_dir)
    scores: dict[str, list[float]] = {"val_dice": [], "val_iou": []}
    kind = target_kind(config)
    for index, (name, image, labels) in enumerate(zip(val.names, val.images, val.labels, strict=True)):
        probs = predict_probabilities(model, image, config, device, out_channels)
        foreground = (1.0 - probs[0]) > config.inference.threshold
        ignore = config.data.ignore_label if config.data.sparse_labels else None  # unannotated voxels
        counts = binary_counts(labels, foreground, ignore)
        scores["val_dice"].append(dice(counts))
        scores["val_iou"].append(iou(counts))
        if config.task == "instances" and ignore is None:
            from unetkit.inference.postprocess import postprocess
            from unetkit.metrics.instances import instance_scores

            predicted = postprocess(probs, config.postprocess, kind)
            result = instance_scores(labels, predicted)
            scores.setdefault("val_dsb_score", []).append(result.dsb_score)
            scores.setdefault("val_ap50", []).append(result.ap50)
        if overlay_dir is not None and index < config.train.overlays:
            if image.ndim == 4:  # volumes: the middle slice
                image, foreground, labels = (middle_slice(a) for a in (image, foreground, labels))
            panel = side_by_side(to_display_rgb(image), mask_overlay(image, foreground, labels > 0))
            save_rgb(overlay_dir / f"{name}.png", panel)
    model.train()
    return {key: float(np.mean(values)) for key, values in scores.items() if values}
