"""Regression targets: image files paired with the inputs, and their dataset-wide normalisation.

Layout: ``root/images/<name>.<ext>`` with ``root/targets/<name>.<ext>`` (folder names from
``data.image_dir`` / ``data.target_dir``), paired by file stem. Targets may be 8/16-bit PNG/TIFF or
float TIFF, with one or more channels.

Inputs are normalised per image (as for segmentation), but targets cannot be: at prediction time the
target's own percentiles are unknown. So one affine map per target channel is fitted on the training
targets, ``t_norm = (t - offset) / scale``, stored in the config (and so in every checkpoint), and
undone on the network output at prediction: ``t = t_norm * scale + offset``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetkit.config import DataConfig
from unetkit.data.io import read_image
from unetkit.data.layouts import Sample, find_samples
from unetkit.errors import InputError

TARGET_NORMS = ("percentile", "none")
MAX_VALUES_PER_IMAGE = 250_000  # pixels per image and channel drawn to estimate the percentiles


def find_regression_samples(root: str | Path, image_dir: str = "images", target_dir: str = "targets",
                            require_labels: bool = True) -> list[Sample]:
    """(image, target) samples of a regression dataset, paired by file name without extension."""
    root = Path(root)
    if require_labels and not (root / target_dir).is_dir() and not (root / "labels").is_dir():
        raise InputError(
            f"{root}: no '{target_dir}/' folder of target images next to '{image_dir}/'; regression reads "
            f"{image_dir}/<name> with {target_dir}/<name> (set data.target_dir for another folder name)"
        )
    return find_samples(root, "folders", image_dir, target_dir, require_labels)


def read_target(path: str | Path, shape: Sequence[int] | None = None) -> np.ndarray:
    """A target image as (C, *S) float32 in its stored units (8/16-bit or float), finite values only.

    ``shape`` (the image's spatial shape) is checked when given.
    """
    path = Path(path)
    stored = read_image(path)
    if not np.all(np.isfinite(stored)):
        raise InputError(f"{path}: the target holds NaN or infinite values; replace them with numbers")
    largest = float(np.abs(stored).max(initial=0))
    if largest > float(np.finfo(np.float32).max):  # finite in float64, infinite as the float32 training uses
        raise InputError(f"{path}: the target reaches {largest:.3g}, past float32's range (3.4e38) that training "
                         "computes in; rescale it (e.g. to its units' thousands, or a log scale)")
    target = stored.astype(np.float32)
    if shape is not None and tuple(target.shape[1:]) != tuple(shape):
        raise InputError(
            f"{path}: target of size {target.shape[1:]} but its image is {tuple(shape)}; targets must have "
            "their image's size"
        )
    if not np.all(np.isfinite(target)):
        raise InputError(f"{path}: the target holds NaN or infinite values; replace them with numbers")
    return target


@dataclass(frozen=True)
class TargetNorm:
    """Per-channel affine target normalisation: ``(t - offset) / scale`` and back."""

    offset: tuple[float, ...]
    scale: tuple[float, ...]

    @property
    def channels(self) -> int:
        return len(self.offset)

    def _shape(self, array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if array.shape[0] != self.channels:
            raise InputError(
                f"target has {array.shape[0]} channel(s) but the normalisation has {self.channels}; all "
                "targets of a dataset need the same channels"
            )
        extra = (1,) * (array.ndim - 1)
        return (np.asarray(self.offset, dtype=np.float32).reshape(-1, *extra),
                np.asarray(self.scale, dtype=np.float32).reshape(-1, *extra))

    def normalize(self, target: np.ndarray) -> np.ndarray:
        """(C, *S) stored units -> normalised float32."""
        offset, scale = self._shape(target)
        return ((target - offset) / scale).astype(np.float32)

    def denormalize(self, values: np.ndarray) -> np.ndarray:
        """(C, *S) normalised (network output) -> stored units, float32."""
        offset, scale = self._shape(values)
        return (values * scale + offset).astype(np.float32)

    @classmethod
    def from_config(cls, data: DataConfig) -> TargetNorm:
        """The normalisation stored in a config; an error if training never filled it in."""
        if not data.target_offset or len(data.target_offset) != len(data.target_scale):
            raise InputError(
                "the config has no target normalisation (data.target_offset / data.target_scale); it is "
                "set when a regression model is trained, so use a checkpoint of a regression run"
            )
        if any(s == 0 for s in data.target_scale):
            raise InputError(f"data.target_scale must be non-zero, got {list(data.target_scale)}")
        return cls(tuple(float(v) for v in data.target_offset), tuple(float(v) for v in data.target_scale))


def fit_target_norm(targets: Sequence[np.ndarray], mode: str = "percentile", low: float = 1.0,
                    high: float = 99.8, seed: int = 0) -> TargetNorm:
    """Fit the normalisation on training targets (C, *S): per channel, the ``low`` / ``high``
    percentiles of all targets pooled map to 0 / 1 (``mode="percentile"``), or identity (``"none"``).

    Example: 16-bit stain with background ~100 and bright nuclei ~6000 -> offset ~100, scale ~5900,
    so the network learns values in ~0..1 whatever the file's bit depth. A constant channel keeps
    scale 1 (its min/max span is 0).
    """
    if mode not in TARGET_NORMS:
        raise InputError(f"data.target_norm must be one of {', '.join(TARGET_NORMS)}; got '{mode}'")
    if not targets:
        raise InputError("no training targets to fit the target normalisation on")
    channels = targets[0].shape[0]
    if any(t.shape[0] != channels for t in targets):
        raise InputError(f"targets have different channel counts {sorted({t.shape[0] for t in targets})}; "
                         "all targets of a dataset need the same channels")
    if mode == "none":
        return TargetNorm((0.0,) * channels, (1.0,) * channels)
    rng = np.random.default_rng(seed)
    offsets, scales = [], []
    for c in range(channels):
        pooled = []
        for target in targets:
            values = target[c].ravel()
            if values.size > MAX_VALUES_PER_IMAGE:
                values = values[rng.choice(values.size, MAX_VALUES_PER_IMAGE, replace=False)]
            pooled.append(values)
        values = np.concatenate(pooled).astype(np.float64)
        lo, hi = np.percentile(values, [low, high])
        if hi <= lo:
            lo, hi = float(values.min()), float(values.max())
        offsets.append(float(lo))
        scales.append(float(hi - lo) if hi > lo else 1.0)
    return TargetNorm(tuple(offsets), tuple(scales))
