"""Whole-image validation of multiclass and regression runs (binary/instances: ``validation.validate``).

multiclass: one confusion matrix pooled over the validation images (as ``unetkit evaluate`` does),
``val_mean_dice`` over classes 1..K-1 (the score that picks best.pt), ``val_mean_iou``,
``val_pixel_accuracy`` and ``val_dice_<class name>`` per class (NaN for a class absent from truth
and prediction). regression: per-image MAE / RMSE / PSNR / SSIM in the target's stored units (the
prediction is de-normalised first), averaged; ``val_psnr`` picks best.pt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unetkit.config import RunConfig
from unetkit.training.data import SplitData
from unetkit.visualize.images import class_overlay, save_rgb, side_by_side, to_display_rgb


def validate_multiclass(model, val: SplitData, config: RunConfig, device, out_channels: int,
                        overlay_dir: Path | None = None) -> dict[str, float]:
    """Pooled per-class Dice/IoU of overlap-tile predictions (argmax of the softmax) on ``val``."""
    from unetkit.metrics.multiclass import MulticlassMetric
    from unetkit.training.tasks import class_table
    from unetkit.training.validation import predict_probabilities
    from unetkit.visualize.legend import with_legend

    table = class_table(config)
    colours = table.display_colors()
    metric = MulticlassMetric(table.num_classes, table.ignore_label)
    for index, (name, image, labels) in enumerate(zip(val.names, val.images, val.labels, strict=True)):
        probs = predict_probabilities(model, image, config, device, out_channels)  # (K, *S)
        predicted = probs.argmax(0)
        metric.update(labels, predicted)
        if overlay_dir is not None and index < config.train.overlays:
            truth = np.where(labels == table.ignore_label, 0, labels)
            panel = side_by_side(class_overlay(image, predicted, colours),
                                 class_overlay(image, truth, colours))
            save_rgb(overlay_dir / f"{name}.png", with_legend(panel, table.names, colours))
    model.train()
    result = metric.compute()
    row = {"val_mean_dice": result["mean_dice"], "val_mean_iou": result["mean_iou"],
           "val_pixel_accuracy": result["pixel_accuracy"]}
    per_class = zip(table.names, result["per_class_dice"], strict=True)
    row.update({f"val_dice_{name}": float(dice) for name, dice in per_class})
    return row


def validate_regression(model, val: SplitData, config: RunConfig, device, out_channels: int,
                        overlay_dir: Path | None = None) -> dict[str, float]:
    """Mean MAE / RMSE / PSNR / SSIM of de-normalised overlap-tile predictions against ``val.labels``."""
    from unetkit.data.image_targets import TargetNorm
    from unetkit.metrics.regression import regression_scores
    from unetkit.training.validation import predict_probabilities

    norm = TargetNorm.from_config(config.data)
    scores: dict[str, list[float]] = {}
    for index, (name, image, truth) in enumerate(zip(val.names, val.images, val.labels, strict=True)):
        pred = norm.denormalize(predict_probabilities(model, image, config, device, out_channels))
        for key, value in regression_scores(truth, pred, spatial_dims=truth.ndim - 1).items():
            scores.setdefault(f"val_{key}", []).append(value)
        if overlay_dir is not None and index < config.train.overlays:
            save_rgb(overlay_dir / f"{name}.png", regression_panel(image, pred, truth))
    model.train()
    return {key: _finite_mean(values) for key, values in scores.items()}


def regression_panel(image: np.ndarray, pred: np.ndarray, truth: np.ndarray | None = None) -> np.ndarray:
    """input | prediction [| truth] as RGB; prediction and truth share one display stretch, so equal
    values look equal."""
    outputs = [pred] if truth is None else [pred, truth]
    joined = to_display_rgb(np.concatenate(outputs, axis=-1))  # one stretch for both
    width = pred.shape[-1]
    parts = [joined[:, i * width:(i + 1) * width] for i in range(len(outputs))]
    return side_by_side(to_display_rgb(image), *parts)


def _finite_mean(values: list[float]) -> float:
    """Mean of the finite values (PSNR is inf for an exact image); NaN when none is finite."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def validate_task(model, val: SplitData, config: RunConfig, device, out_channels: int,
                  overlay_dir: Path | None = None) -> dict[str, float]:
    """Validation of a multiclass or regression run."""
    if config.task == "regression":
        return validate_regression(model, val, config, device, out_channels, overlay_dir)
    return validate_multiclass(model, val, config, device, out_channels, overlay_dir)
