"""Turn a dataset folder and a RunConfig into in-memory training and validation arrays.

Images are decoded and normalised once (percentiles from the config, stored in checkpoints so that
prediction normalises the same way); targets and weight maps are derived once per image.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from unetkit.config import RunConfig
from unetkit.data.channels import match_channels
from unetkit.data.layouts import Sample, load_sample, split_samples
from unetkit.errors import InputError

# multiclass and regression targets come from the files as they are (unetkit.training.tasks)
TASK_TARGETS = {"binary": "binary", "instances": "three-class", "multiclass": "multiclass",
                "regression": "regression"}
TARGET_CLASSES = {"binary": 2, "three-class": 3}


@dataclass
class SplitData:
    """Arrays of one split: images (C, *S) float32, raw labels, class targets, optional weight maps."""

    names: list[str] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)  # instance ids (or values as stored)
    targets: list[np.ndarray] = field(default_factory=list)  # class index per pixel
    weights: list[np.ndarray] | None = None


def target_kind(config: RunConfig) -> str:
    """The training target derived from the task unless ``data.target`` names one."""
    if config.data.target != "auto":
        return config.data.target
    if config.task not in TASK_TARGETS:
        raise InputError(f"task '{config.task}' is not supported by this trainer; use binary or instances")
    return TASK_TARGETS[config.task]


def instance_labels(labels: np.ndarray) -> np.ndarray:
    """Instance ids from stored labels: a two-valued mask (0/255, ISBI interior/membrane) becomes its
    connected components; an instance label image is kept."""
    from unetkit.data.weightmaps import instance_labels_from_foreground

    values = np.unique(labels)
    if len(values) <= 2:
        return instance_labels_from_foreground(labels > 0)
    return labels


def is_volumetric(config: RunConfig) -> bool:
    """True when the model is 3D: datasets are then read as volumes (``unetkit.data.volumes``)."""
    from unetkit.models.registry import model_spatial_dims

    return model_spatial_dims(config.model) == 3


def _load(samples: list[Sample], config: RunConfig, desc: str) -> list[tuple[np.ndarray, np.ndarray]]:
    from unetkit.data.volumes import load_volume_sample

    loader = load_volume_sample if is_volumetric(config) else load_sample

    def one(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        return loader(sample, config.data.normalize_low, config.data.normalize_high)

    with ThreadPoolExecutor(max_workers=4) as pool:  # PNG decoding releases the GIL
        return list(tqdm(pool.map(one, samples), total=len(samples), desc=desc, unit="img", leave=False,
                         disable=None))  # no bars when not on a terminal


def build_split(samples: list[Sample], config: RunConfig, in_channels: int, desc: str,
                with_weights: bool = True) -> SplitData:
    """Load samples and derive targets (and weight maps when the config asks and ``with_weights``)."""
    from unetkit.data.targets import make_target
    from unetkit.data.weightmaps import WeightMapCache

    kind = target_kind(config)
    if kind in ("multiclass", "regression"):
        from unetkit.training.tasks import build_task_split

        return build_task_split(samples, config, in_channels, desc, with_weights)
    split = SplitData(weights=[] if config.data.weight_map and with_weights else None)
    cache = WeightMapCache()
    for sample, (image, labels) in zip(samples, _load(samples, config, desc), strict=True):
        if config.data.sparse_labels:  # unannotated voxels: ignore_label in target and truth
            from unetkit.data.sparse import sparse_target

            unannotated = labels == config.data.ignore_label
            instances = instance_labels(np.where(unannotated, 0, labels))
            target, geometry = sparse_target(instances, unannotated, kind, config.data.ignore_label,
                                             config.data.boundary_width)
            foreground = np.where(unannotated, 0, target)
            instances = np.where(unannotated, config.data.ignore_label, instances)
        else:
            instances = instance_labels(labels)
            target = make_target(instances, kind, config.data.boundary_width).astype(np.uint8)
            geometry, foreground = instances, target
        split.names.append(sample.name)
        split.images.append(match_channels(image, in_channels, sample.image_path))
        split.labels.append(instances)
        split.targets.append(target)
        if split.weights is not None:
            split.weights.append(cache.get(geometry, config.data.w0, config.data.sigma, foreground=foreground))
    return split


def _find(root: str | Path, config: RunConfig) -> list[Sample]:
    """Samples of a dataset folder as the config's task reads it (class folders, regression targets)."""
    if is_volumetric(config):
        from unetkit.data.volumes import find_volume_samples

        if config.task not in ("binary", "instances"):
            raise InputError(f"3D networks train the binary and instances tasks; task '{config.task}' is 2D only")
        return find_volume_samples(root, config.data.image_dir, config.data.mask_dir)
    from unetkit.training.tasks import find_task_samples

    return find_task_samples(root, config)


def prepare_data(config: RunConfig, train_dir: str | Path, val_dir: str | Path | None) -> tuple[
        SplitData, SplitData, int]:
    """(train, validation, image channels) for a run; validation is a fixed-seed split when no folder."""
    data = config.data
    samples = _find(train_dir, config)
    if val_dir:
        train_samples = samples
        val_samples = _find(val_dir, config)
    else:
        train_samples, val_samples = split_samples(samples, data.val_fraction, data.split_seed)
    if not train_samples:
        raise InputError(f"{train_dir}: no training images left after the validation split")
    in_channels = config.model.in_channels
    train = build_split(train_samples, config, in_channels, "loading train")
    val = build_split(val_samples, config, in_channels, "loading val", with_weights=False)
    return train, val, in_channels


def detect_channels(train_dir: str | Path, config: RunConfig) -> int:
    """Channels of the first training image after loading (1 gray, 3 colour): sets model.in_channels."""
    from unetkit.data.io import read_image, read_page

    sample = _find(train_dir, config)[0]
    if is_volumetric(config):
        from unetkit.data.io import read_volume

        return read_volume(sample.image_path).shape[0]
    if sample.index is not None:
        return read_page(sample.image_path, sample.index)[None].shape[0]
    return read_image(sample.image_path).shape[0]
