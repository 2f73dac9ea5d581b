"""What each task changes in training: samples, targets, output channels, loss, activation, score.

| task       | target                              | outputs | loss             | activation | score         |
| ---------- | ----------------------------------- | ------- | ---------------- | ---------- | ------------- |
| binary     | 0/1 from the mask (*S)              | 2       | CE + Dice        | softmax    | val_dice      |
| instances  | background/interior/boundary (*S)   | 3       | CE + Dice        | softmax    | val_dsb_score |
| multiclass | class ids 0..K-1, ignore label (*S) | K       | CE + Dice        | softmax    | val_mean_dice |
| regression | target, normalised (C', *S)         | C'      | l1/mse/smooth_l1 | none       | val_psnr      |

binary and instances live in ``unetkit.training.data``; this module adds multiclass and regression.
``resolve_task`` fills in what depends on the data (class names, K, class weights, target
normalisation) before training, so that the saved config and every checkpoint carry it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from unetkit.config import RunConfig, apply_overrides
from unetkit.data.channels import match_channels
from unetkit.data.class_folders import (
    class_folder_names,
    find_class_folder_samples,
    is_class_folders,
    load_class_folder_labels,
)
from unetkit.data.layouts import Sample, find_samples, load_image, load_sample, split_samples
from unetkit.data.masks import (
    ClassTable,
    check_class_ids,
    class_dtype,
    class_pixel_counts,
    default_class_names,
    frequency_class_weights,
    priority_order,
    read_class_mask,
)
from unetkit.errors import InputError
from unetkit.safety.labels import check_contiguous_class_ids

SCORE_KEYS = {"binary": "val_dice", "instances": "val_dsb_score", "multiclass": "val_mean_dice",
              "regression": "val_psnr"}
TASKS = tuple(SCORE_KEYS)
NEW_TASKS = ("multiclass", "regression")  # handled here rather than by the binary/instances code


def score_key(config: RunConfig) -> str:
    """The validation score that picks ``best.pt`` (higher is better)."""
    if config.task not in SCORE_KEYS:
        raise InputError(f"unknown task '{config.task}'; choose one of {', '.join(TASKS)}")
    return SCORE_KEYS[config.task]


def output_activation(config: RunConfig) -> str:
    """Activation applied to the logits at prediction: ``none`` for regression, else ``softmax``."""
    return "none" if config.task == "regression" else "softmax"


def build_loss(config: RunConfig):
    """The loss module of a task: ``RegressionLoss`` for regression, else ``SegmentationLoss``."""
    from unetkit.losses import RegressionLoss, SegmentationLoss

    if config.task == "regression":
        return RegressionLoss(config.loss)
    return SegmentationLoss(config.loss, config.data.ignore_label)


# --------------------------------------------------------------------------------------------------
# finding samples


def uses_class_folders(root: str | Path, config: RunConfig) -> bool:
    """True when ``root`` is read with the class-folders layout (asked for, or detected for multiclass)."""
    if config.data.layout == "class-folders":
        return True
    return config.data.layout == "auto" and config.task == "multiclass" and is_class_folders(
        root, config.data.image_dir)


def find_task_samples(root: str | Path, config: RunConfig, require_labels: bool = True) -> list[Sample]:
    """The samples of a dataset folder as the task reads it.

    multiclass: class-folders layout (one mask folder per class) or any ``find_samples`` layout with one
    class-id (or colour-coded) mask per image; regression: ``image_dir/`` with ``target_dir/``;
    binary / instances: ``find_samples``.
    """
    data = config.data
    if uses_class_folders(root, config):
        if config.task != "multiclass":
            raise InputError(f"{root}: the class-folders layout is for --task multiclass, "
                             f"not '{config.task}'")
        return find_class_folder_samples(root, data.image_dir, data.class_names, require_labels)
    if config.task == "regression":
        if data.layout not in ("auto", "folders"):
            raise InputError(f"regression reads the folders layout ({data.image_dir}/ + {data.target_dir}/); "
                             f"data.layout={data.layout} is not supported")
        from unetkit.data.image_targets import find_regression_samples

        return find_regression_samples(root, data.image_dir, data.target_dir, require_labels)
    return find_samples(root, data.layout, data.image_dir, data.mask_dir, require_labels)


def _training_samples(config: RunConfig, train_dir: str | Path, has_val_dir: bool) -> list[Sample]:
    """The samples training learns from (the fixed-seed split leaves validation out)."""
    samples = find_task_samples(train_dir, config)
    if has_val_dir:
        return samples
    return split_samples(samples, config.data.val_fraction, config.data.split_seed)[0] or samples


# --------------------------------------------------------------------------------------------------
# multiclass labels


def class_table(config: RunConfig) -> ClassTable:
    """The class table of a resolved multiclass config (names, colours, ignore label)."""
    return ClassTable.from_config(config.data, config.model.out_channels)


def _is_class_folder_sample(sample: Sample, names: list[str]) -> bool:
    """A class-folders sample has one mask per class, in ``<root>/<class name>/`` next to the images."""
    root = sample.image_path.parent.parent
    if len(sample.label_paths) != len(names) - 1:
        return False
    pairs = zip(sample.label_paths, names[1:], strict=True)
    return all(path.parent.name == name and path.parent.parent == root for path, name in pairs)


def load_multiclass_sample(sample: Sample, config: RunConfig, table: ClassTable
                           ) -> tuple[np.ndarray, np.ndarray]:
    """(image (C, *S) float32 normalised, class map (*S) int32 with the ignore label kept) of a sample."""
    low, high = config.data.normalize_low, config.data.normalize_high
    if _is_class_folder_sample(sample, list(table.names)):
        image = load_image(sample, low, high)
        priority = priority_order(table.names, config.data.class_priority)
        return image, load_class_folder_labels(sample, priority, image.shape[1:])
    if table.colors and sample.index is None:
        image = load_image(sample, low, high)
        labels = read_class_mask(sample.label_paths[0], table)
        if labels.shape != image.shape[1:]:
            raise InputError(f"{sample.label_paths[0]}: mask of size {labels.shape} but its image "
                             f"{sample.image_path} is {image.shape[1:]}; masks must have their image's size")
        return image, labels
    image, labels = load_sample(sample, low, high)
    where = sample.label_paths[0] if sample.label_paths else sample.image_path
    return image, check_class_ids(labels, table, where)


def _max_class_id(samples: list[Sample], config: RunConfig) -> int:
    """Largest class id (ignore label left out) over the index masks of ``samples``."""
    from unetkit.data.layouts import load_labels

    found: dict[int, str] = {}  # class id -> first file holding it
    for sample in tqdm(samples, desc="counting classes", unit="img", leave=False):
        labels = load_labels(sample)
        values = labels[labels != config.data.ignore_label]
        for value in np.unique(values).tolist():
            found.setdefault(int(value), str(sample.label_paths[0] if sample.label_paths else sample.image_path))
    return check_contiguous_class_ids(found)  # a stray id (e.g. 7 among 0..2) is refused, not made a class


def _multiclass_names(config: RunConfig, train_dir: str | Path, samples: list[Sample]) -> list[str]:
    data = config.data
    if uses_class_folders(train_dir, config):
        return class_folder_names(train_dir, data.image_dir, data.class_names)
    if data.class_names:
        return list(data.class_names)
    if data.class_colors:
        return default_class_names(len(data.class_colors))
    top = _max_class_id(samples, config)
    if top >= 255:  # more likely instance ids than classes
        raise InputError(
            f"the masks in {train_dir} hold ids up to {top}; multiclass masks hold class ids 0..K-1. If "
            "these are object ids use --task instances; if there really are that many classes set "
            "data.class_names")
    return default_class_names(max(top + 1, 2))


# --------------------------------------------------------------------------------------------------
# resolving the config from the data


def resolve_task(config: RunConfig, train_dir: str | Path, val_dir: str | Path | None = None) -> RunConfig:
    """Fill in the data-dependent values of a multiclass or regression config.

    multiclass: ``data.class_names`` (class folders, the config, or ``class1..`` up to the largest id in
    the masks), ``model.out_channels`` = K, and with ``loss.auto_class_weights`` the class weights from
    the training pixel counts. regression: ``model.out_channels`` = target channels and the target
    normalisation. Both: ``model.in_channels`` from the first image.
    """
    from unetkit.training.data import detect_channels

    data = config.data
    if config.task not in NEW_TASKS:
        raise InputError(f"resolve_task handles {', '.join(NEW_TASKS)}, not '{config.task}'")
    if data.target != "auto":
        raise InputError(f"data.target={data.target} applies to binary and instances; the {config.task} task "
                         "derives its target from the files, so leave data.target at auto")
    samples = find_task_samples(train_dir, config)
    values: dict[str, Any] = {"model.in_channels": detect_channels(train_dir, config)}
    if config.task == "multiclass":
        names = _multiclass_names(config, train_dir, samples)
        table = ClassTable.from_config(dataclasses.replace(data, class_names=names))
        priority_order(table.names, data.class_priority)  # unknown names fail here, before any run folder
        values.update({"data.class_names": list(table.names), "model.out_channels": table.num_classes})
        weights = list(config.loss.class_weights)
        if weights and len(weights) != table.num_classes:
            raise InputError(f"loss.class_weights has {len(weights)} values for {table.num_classes} classes "
                             f"({', '.join(table.names)}); give one weight per class, background first")
        if config.loss.auto_class_weights and not weights:
            resolved = apply_overrides(config, values)
            train = _training_samples(resolved, train_dir, val_dir is not None)
            maps = _map_samples(train, lambda s: load_multiclass_sample(s, resolved, table)[1],
                                "class counts")
            counts = class_pixel_counts(maps, table.num_classes, table.ignore_label)
            values["loss.class_weights"] = frequency_class_weights(counts)
    else:
        from unetkit.data.image_targets import fit_target_norm, read_target

        if data.weight_map:
            raise InputError("data.weight_map is for segmentation tasks; turn it off for regression")
        train = _training_samples(config, train_dir, val_dir is not None)
        targets = _map_samples(train, lambda s: read_target(s.label_paths[0]), "target statistics")
        channels = targets[0].shape[0]
        if data.target_offset:
            if len(data.target_offset) != channels or len(data.target_scale) != channels:
                raise InputError(
                    f"data.target_offset / target_scale need {channels} value(s) (one per target channel); "
                    f"got {list(data.target_offset)} / {list(data.target_scale)}")
        else:
            norm = fit_target_norm(targets, data.target_norm, data.normalize_low, data.normalize_high)
            values.update({"data.target_offset": list(norm.offset), "data.target_scale": list(norm.scale)})
        values["model.out_channels"] = channels
    return apply_overrides(config, values)


def _map_samples(samples: list[Sample], function: Callable[[Sample], Any], desc: str) -> list[Any]:
    with ThreadPoolExecutor(max_workers=4) as pool:  # PNG/TIFF decoding releases the GIL
        return list(tqdm(pool.map(function, samples), total=len(samples), desc=desc, unit="img", leave=False))


# --------------------------------------------------------------------------------------------------
# loading a split


def build_task_split(samples: list[Sample], config: RunConfig, in_channels: int, desc: str,
                     with_weights: bool = True):
    """SplitData of a multiclass or regression split.

    multiclass: ``labels`` and ``targets`` are the class map (targets uint8 when ids fit), weight maps
    (``data.weight_map``) use the connected foreground regions as objects and the class map for the
    class balance. regression: ``labels`` the target in stored units (for validation scores),
    ``targets`` the normalised target (C', *S) float32.
    """
    from unetkit.training.data import SplitData

    split = SplitData()
    if config.task == "multiclass":
        table = class_table(config)
        dtype = class_dtype(table.num_classes, table.ignore_label)
        pairs = _map_samples(samples, lambda s: load_multiclass_sample(s, config, table), desc)
        if config.data.weight_map and with_weights:
            split.weights = []
        for sample, (image, labels) in zip(samples, pairs, strict=True):
            split.names.append(sample.name)
            split.images.append(match_channels(image, in_channels, sample.image_path))
            split.labels.append(labels)
            split.targets.append(labels.astype(dtype))
            if split.weights is not None:
                split.weights.append(_multiclass_weights(labels, config, table))
        return split
    from unetkit.data.image_targets import TargetNorm, read_target

    norm = TargetNorm.from_config(config.data)
    low, high = config.data.normalize_low, config.data.normalize_high

    def one(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        image = load_image(sample, low, high)
        return image, read_target(sample.label_paths[0], image.shape[1:])

    for sample, (image, target) in zip(samples, _map_samples(samples, one, desc), strict=True):
        split.names.append(sample.name)
        split.images.append(match_channels(image, in_channels, sample.image_path))
        split.labels.append(target)
        split.targets.append(norm.normalize(target))
    return split


def _multiclass_weights(labels: np.ndarray, config: RunConfig, table: ClassTable) -> np.ndarray:
    """Paper eq. 2 weight map for a class map: objects are connected foreground regions (so the border
    term falls on background gaps between them), class balance over the classes; 0 on ignored pixels
    (the loss leaves them out anyway)."""
    from unetkit.data.weightmaps import instance_labels_from_foreground, weight_map

    classes = np.where(labels == table.ignore_label, 0, labels)
    objects = instance_labels_from_foreground(classes > 0)
    weights = weight_map(objects, config.data.w0, config.data.sigma, foreground=classes)
    weights[labels == table.ignore_label] = 0
    return weights
