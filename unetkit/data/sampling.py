"""Random training patches from images of mixed sizes, with foreground oversampling.

A patch is drawn around a random foreground pixel (share ``foreground_fraction``) or anywhere; with
``balance_classes`` the foreground pixel is of a class drawn uniformly from the classes present, so a
rare class (a synapse's PSD: 0.3 % of the pixels) is a patch centre as often as a common one. Regions
outside the image are mirrored (as the paper does at image borders), so small images work too. The
input patch is larger than the target patch for valid nets: augmentations run on the input-sized
arrays, then target and weights are centre-cropped to the network's output size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from unetkit.data.regions import read_region

Transform = Callable[[dict[str, np.ndarray], np.random.Generator], dict[str, np.ndarray]]
MAX_FOREGROUND_POINTS = 20_000  # per image: a random subset is plenty to pick patch centres from


def _foreground_points(target: np.ndarray, rng: np.random.Generator, ignore_label: int | None = None) -> np.ndarray:
    """Flat indices of (a random subset of) the foreground pixels of a target (*S); pixels equal to
    ``ignore_label`` (unannotated, sparse labels) are not foreground."""
    if target.dtype.kind in "iub":
        foreground = target > 0 if ignore_label is None else (target > 0) & (target != ignore_label)
        points = np.flatnonzero(foreground)
    else:
        points = np.flatnonzero(np.any(target != 0, 0))
    if len(points) > MAX_FOREGROUND_POINTS:
        points = rng.choice(points, MAX_FOREGROUND_POINTS, replace=False)
    return points


def _class_points(targets: list[np.ndarray], rng: np.random.Generator,
                  ignore_label: int | None) -> dict[int, list[tuple[int, np.ndarray]]]:
    """Per foreground class: (image index, flat indices of a random subset of its pixels) for every
    image holding that class; background (0) and ``ignore_label`` are no class to balance."""
    per_class: dict[int, list[tuple[int, np.ndarray]]] = {}
    for index, target in enumerate(targets):
        if target.dtype.kind not in "iub":
            raise ValueError("balance_classes needs integer class targets")
        flat = target.ravel()
        for label in np.unique(flat):
            if label == 0 or (ignore_label is not None and label == ignore_label):
                continue
            points = np.flatnonzero(flat == label)
            if len(points) > MAX_FOREGROUND_POINTS:
                points = rng.choice(points, MAX_FOREGROUND_POINTS, replace=False)
            per_class.setdefault(int(label), []).append((index, points))
    return dict(sorted(per_class.items()))


def centre_crop(array: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Crop the centre of the last ``len(size)`` axes."""
    slices = [slice(None)] * (array.ndim - len(size))
    for have, want in zip(array.shape[-len(size):], size, strict=True):
        start = (have - want) // 2
        slices.append(slice(start, start + want))
    return array[tuple(slices)]


class PatchDataset(Dataset):
    """``samples_per_epoch`` random patches per epoch; deterministic given (seed, epoch, index).

    Args:
        images: channels-first float32 arrays (C, *S), normalised.
        targets: integer class targets (*S) (or float regression targets (C', *S)), same S as images.
        input_size / output_size: network input and output patch sizes (equal for same nets).
        weights: optional per-image weight maps (*S) (paper eq. 2), cropped and transformed alike.
        transform: paired augmentation ``(sample, rng) -> sample`` applied on input-sized arrays.
        ignore_label: target value of unannotated pixels (sparse labels): never a patch centre for
            foreground oversampling; it passes through crops, mirroring and transforms unchanged.
        balance_classes: foreground centres drawn class by class (uniform over the classes present, then
            over the images holding the class), instead of uniform over all foreground pixels.
    """

    def __init__(self, images: list[np.ndarray], targets: list[np.ndarray], input_size: Sequence[int],
                 output_size: Sequence[int], samples_per_epoch: int = 256, foreground_fraction: float = 0.5,
                 weights: list[np.ndarray] | None = None, transform: Transform | None = None, seed: int = 0,
                 ignore_label: int | None = None, balance_classes: bool = False):
        if len(images) != len(targets) or not images:
            raise ValueError("need the same non-zero number of images and targets")
        self.images = images
        self.targets = targets
        self.weights = weights
        self.input_size = tuple(int(s) for s in input_size)
        self.output_size = tuple(int(s) for s in output_size)
        self.margin = tuple((i - o) // 2 for i, o in zip(self.input_size, self.output_size, strict=True))
        self.samples_per_epoch = samples_per_epoch
        self.foreground_fraction = foreground_fraction
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        rng = np.random.default_rng(seed)
        # foreground centres: per image (all foreground pixels alike), or per class when balancing
        self.class_points = _class_points(targets, rng, ignore_label) if balance_classes else None
        self.foreground = [] if balance_classes else [_foreground_points(t, rng, ignore_label) for t in targets]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch: patches differ per epoch but are reproducible (exact resume)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.samples_per_epoch

    def _around(self, index: int, points: np.ndarray, rng: np.random.Generator) -> list[int]:
        """Output-patch start around a random one of ``points`` (flat indices into image ``index``)."""
        centre = np.unravel_index(points[rng.integers(len(points))], self.images[index].shape[1:])
        # jitter so foreground does not always sit in the patch centre
        return [int(c) - o // 2 + int(rng.integers(-(o // 4), o // 4 + 1))
                for c, o in zip(centre, self.output_size, strict=True)]

    def _anywhere(self, index: int, rng: np.random.Generator) -> list[int]:
        """Output-patch start anywhere in image ``index`` (overhanging where the image is smaller)."""
        return [int(rng.integers(min(0, length - o), max(0, length - o) + 1))
                for length, o in zip(self.images[index].shape[1:], self.output_size, strict=True)]

    def _pick(self, rng: np.random.Generator) -> tuple[int, list[int]]:
        """(image index, output-patch start) of the next patch."""
        if self.class_points is not None:
            return self._pick_balanced(self.class_points, rng)
        index = int(rng.integers(len(self.images)))
        points = self.foreground[index]
        if len(points) and rng.random() < self.foreground_fraction:
            return index, self._around(index, points, rng)
        return index, self._anywhere(index, rng)

    def _pick_balanced(self, class_points: dict[int, list[tuple[int, np.ndarray]]],
                       rng: np.random.Generator) -> tuple[int, list[int]]:
        """A foreground patch of a uniformly drawn class (then image holding it), or one anywhere."""
        if class_points and rng.random() < self.foreground_fraction:
            holders = list(class_points.values())[int(rng.integers(len(class_points)))]
            index, points = holders[int(rng.integers(len(holders)))]
            return index, self._around(index, points, rng)
        index = int(rng.integers(len(self.images)))
        return index, self._anywhere(index, rng)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, item])
        index, output_start = self._pick(rng)
        start = [s - m for s, m in zip(output_start, self.margin, strict=True)]
        target = self.targets[index]
        target_dtype = np.int64 if target.dtype.kind in "iub" else np.float32
        channel_target = target.ndim == self.images[index].ndim  # regression targets have channels
        sample = {
            "image": read_region(self.images[index], start, self.input_size),
            "target": read_region(target if channel_target else target[None], start, self.input_size,
                                  target_dtype),
        }
        if not channel_target:
            sample["target"] = sample["target"][0]
        if self.weights is not None:
            sample["weights"] = read_region(self.weights[index][None], start, self.input_size)[0]
        if self.transform is not None:
            sample = self.transform(sample, rng)
        sample["target"] = centre_crop(sample["target"], self.output_size)
        if "weights" in sample:
            sample["weights"] = centre_crop(sample["weights"], self.output_size)
        return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in sample.items()}
