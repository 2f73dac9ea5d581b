"""The binary task: object vs background from masks or instance labels, 2D images or 3D volumes.

Targets 0/1 from the mask (touching objects merge); 2 softmax outputs; CE + Dice; ``val_dice`` picks
best.pt. ``data.target=three-class`` trains the background/interior/boundary target instead (what the
instances task uses). Outputs: foreground probabilities, 0/255 masks, overlays, and on request
instance labels from post-processing. The instances task (``unetkit.tasks.instances``) builds on this.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unetkit.config import RunConfig, apply_overrides
from unetkit.data.layouts import Sample, find_samples, load_sample
from unetkit.data.splits import SplitData, map_samples, model_channels
from unetkit.data.targets import instance_labels
from unetkit.errors import InputError
from unetkit.models.registry import model_spatial_dims
from unetkit.tasks.base import OutputOptions, PredictFn, Result, Task

TARGET_CLASSES = {"binary": 2, "three-class": 3}  # output channels of each segmentation target


def is_volumetric(config: RunConfig) -> bool:
    """True when the model is 3D: datasets are then read as volumes (``unetkit.data.volumes``)."""
    return model_spatial_dims(config.model) == 3


class BinaryTask(Task):
    """Foreground segmentation; see the module docstring."""

    name = "binary"
    scored_as = ("binary", "instances")  # masks/ are binary, and with --instances labels/ are instances
    score_key = "val_dice"
    volumes = True
    default_target = "binary"
    evaluate_options = ("threshold",)
    map_options = ("save_probabilities",)

    # ---------------------------------------------------------------------------------------------
    # training

    def target_kind(self, config: RunConfig) -> str:
        kind = config.data.target if config.data.target != "auto" else self.default_target
        if kind not in TARGET_CLASSES:
            raise InputError(f"data.target={kind} cannot be trained by the {self.name} task; use auto, "
                             f"{' or '.join(TARGET_CLASSES)}")
        return kind

    def find_samples(self, root: str | Path, config: RunConfig, require_labels: bool = True) -> list[Sample]:
        data = config.data
        if is_volumetric(config):
            from unetkit.data.volumes import find_volume_samples

            return find_volume_samples(root, data.image_dir, data.mask_dir)
        if data.layout == "class-folders":
            raise InputError(f"{root}: the class-folders layout is for --task multiclass, not '{self.name}'")
        return find_samples(root, data.layout, data.image_dir, data.mask_dir, require_labels)

    def resolve(self, config: RunConfig, train_dir: str | Path, val_dir: str | Path | None = None) -> RunConfig:
        sample = self.find_samples(train_dir, config)[0]
        channels = model_channels(config, sample, is_volumetric(config))
        classes = TARGET_CLASSES[self.target_kind(config)]
        return apply_overrides(config, {"model.in_channels": channels, "model.out_channels": classes})

    def build_split(self, samples: list[Sample], config: RunConfig, desc: str,
                    with_weights: bool = True) -> SplitData:
        from unetkit.data.targets import BOUNDARY, make_target
        from unetkit.data.weightmaps import WeightMapCache

        data = config.data
        kind = self.target_kind(config)
        loader = load_sample
        if is_volumetric(config):
            from unetkit.data.volumes import load_volume_sample as loader
        pairs = map_samples(samples, lambda s: loader(s, data.normalize_low, data.normalize_high), desc)
        split = SplitData(weights=[] if data.weight_map and with_weights else None)
        cache = WeightMapCache()
        # touching cells meet in boundary pixels, not background: the border term goes there too
        border_classes = (BOUNDARY,) if kind == "three-class" else ()
        for sample, (image, labels) in zip(samples, pairs, strict=True):
            if data.sparse_labels:  # unannotated voxels: ignore_label in target and truth
                from unetkit.data.sparse import sparse_target

                unannotated = labels == data.ignore_label
                instances = instance_labels(np.where(unannotated, 0, labels))
                target, geometry = sparse_target(instances, unannotated, kind, data.ignore_label,
                                                 data.boundary_width)
                foreground = np.where(unannotated, 0, target)
                instances = np.where(unannotated, data.ignore_label, instances)
            else:
                instances = instance_labels(labels)
                split.one_valued += int(instances is not labels and bool(instances.any()))  # split into components
                target = make_target(instances, kind, data.boundary_width).astype(np.uint8)
                geometry, foreground = instances, target
            split.add_image(sample.name, image, config.model.in_channels, sample.image_path)
            split.labels.append(instances)
            split.targets.append(target)
            if split.weights is not None:
                split.weights.append(cache.get(geometry, data.w0, data.sigma, foreground=foreground,
                                               border_classes=border_classes, balance=data.weight_balance,
                                               small_object_area=data.small_object_area))
        return split

    def validate(self, predict: PredictFn, val: SplitData, config: RunConfig,
                 overlay_dir: Path | None = None) -> dict[str, float]:
        """Mean per-image Dice/IoU of the foreground (``prob > inference.threshold``)."""
        from unetkit.metrics.binary import binary_counts, dice, iou

        scores: dict[str, list[float]] = {"val_dice": [], "val_iou": []}
        ignore = config.data.ignore_label if config.data.sparse_labels else None  # unannotated voxels
        for index, (name, image, labels) in enumerate(zip(val.names, val.images, val.labels, strict=True)):
            probs = predict(image)
            foreground = (1.0 - probs[0]) > config.inference.threshold
            counts = binary_counts(labels, foreground, ignore)
            scores["val_dice"].append(dice(counts))
            scores["val_iou"].append(iou(counts))
            for key, value in self.extra_scores(probs, labels, config).items():
                scores.setdefault(key, []).append(value)
            if overlay_dir is not None and index < config.train.overlays:
                _save_overlay(overlay_dir / f"{name}.png", image, foreground, labels)
        return {key: float(np.mean(values)) for key, values in scores.items() if values}

    def extra_scores(self, probs: np.ndarray, labels: np.ndarray, config: RunConfig) -> dict[str, float]:
        """Scores beyond Dice/IoU of one validation image (the instances task adds DSB / AP50)."""
        return {}

    # ---------------------------------------------------------------------------------------------
    # prediction

    def instance_kind(self, config: RunConfig) -> str:
        return self.target_kind(config)

    def output_names(self, config: RunConfig) -> list[str]:
        """The target's channels: background / foreground, or background / interior / boundary (three-class)."""
        names = {"binary": ["background", "foreground"], "three-class": ["background", "interior", "boundary"]}
        return names.get(self.target_kind(config), super().output_names(config))

    def result(self, output: np.ndarray, config: RunConfig, instances: bool = False,
               labels: np.ndarray | None = None) -> Result:
        result = Result(probabilities=output)
        result.mask = result.foreground > config.inference.threshold
        if labels is not None:
            result.labels = labels
        elif instances:
            from unetkit.inference.postprocess import postprocess

            result.labels = postprocess(output, config.postprocess, self.instance_kind(config))
        return result

    def write_outputs(self, result: Result, image: np.ndarray, writer, config: RunConfig,
                      options: OutputOptions) -> dict[str, Any]:
        from unetkit.visualize.images import mask_overlay

        if options.save_probabilities:
            writer.float_map("probabilities", result.foreground)
        writer.mask("masks", result.mask.astype(np.uint8) * 255)
        writer.picture("overlays", mask_overlay(writer.display(image), writer.display(result.mask)))
        row: dict[str, Any] = {"foreground_fraction": round(float(result.mask.mean()), 4)}
        if result.labels is not None:
            from unetkit.visualize.instances import instance_overlay

            writer.labels("labels", result.labels)
            writer.picture("instances", instance_overlay(writer.display(image), writer.display(result.labels)))
            writer.objects("objects", result.labels, image)
            row["objects"] = result.num_objects
        return row

    # ---------------------------------------------------------------------------------------------
    # evaluation

    def evaluate(self, truth: str | Path, pred: str | Path, **options: Any):
        from unetkit.metrics.folders import evaluate_binary

        self.check_options(options)
        threshold = options.get("threshold")
        return evaluate_binary(truth, pred, threshold=0.5 if threshold is None else threshold)


def _save_overlay(path: Path, image: np.ndarray, foreground: np.ndarray, labels: np.ndarray) -> None:
    """Validation picture: prediction in magenta, truth outlined (middle slice of volumes)."""
    from unetkit.data.volumes import middle_slice
    from unetkit.visualize.images import mask_overlay, save_rgb, side_by_side, to_display_rgb

    if image.ndim == 4:  # volumes: the middle slice
        image, foreground, labels = (middle_slice(a) for a in (image, foreground, labels))
    save_rgb(path, side_by_side(to_display_rgb(image), mask_overlay(image, foreground, labels > 0)))
