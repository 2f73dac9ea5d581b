"""Random training patches from images of mixed sizes, with foreground oversampling.

A patch is drawn around a random foreground pixel (share ``foreground_fraction``) or anywhere; regions
outside the image are mirrored (as the paper does at image borders), so small images work too. The
input patch is larger than the target patch for valid nets: augmentations run on the input-sized
arrays, then target and weights are centre-cropped to the network's output size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from unetkit.inference.tiling import read_region

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
    """

    def __init__(self, images: list[np.ndarray], targets: list[np.ndarray], input_size: Sequence[int],
                 output_size: Sequence[int], samples_per_epoch: int = 256, foreground_fraction: float = 0.5,
                 weights: list[np.ndarray] | None = None, transform: Transform | None = None, seed: int = 0,
                 ignore_label: int | None = None):
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
        self.foreground = [_foreground_points(t, rng, ignore_label) for t in targets]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch: patches differ per epoch but are reproducible (exact resume)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.samples_per_epoch

    def _output_start(self, index: int, rng: np.random.Generator) -> list[int]:
        spatial = self.images[index].shape[1:]
        points = self.foreground[index]
        if len(points) and rng.random() < self.foreground_fraction:
            centre = np.unravel_index(points[rng.integers(len(points))], spatial)
            # jitter so foreground does not always sit in the patch centre
            return [int(c) - o // 2 + int(rng.integers(-(o // 4), o // 4 + 1))
                    for c, o in zip(centre, self.output_size, strict=True)]
        return [int(rng.integers(min(0, length - o), max(0, length - o) + 1))
                for length, o in zip(spatial, self.output_size, strict=True)]

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, item])
        index = int(rng.integers(len(self.images)))
        start = [s - m for s, m in zip(self._output_start(index, rng), self.margin, strict=True)]
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
