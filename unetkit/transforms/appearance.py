"""Appearance changes across imaging modalities, on the image only; target and weights pass.

Why: a light-microscopy nuclei set mixes fluorescence (bright nuclei on a dark background), brightfield
(dark nuclei on a light background) and stained histology (coloured nuclei on a light background). A
network that saw few light-background images fails on them; inverting the polarity of the many dark-
background images and varying the colour of stained ones shows it the other appearances (measured on
DSB 2018 in BENCHMARKS.md, "Light-background images").

Images arrive normalised per image (percentiles mapped to ~0..1), so inversion is ``1 - x``: the low
percentile becomes 1 and the high one 0, the same mapping the other polarity would have got.
"""

from __future__ import annotations

import numpy as np

from unetkit.errors import InputError
from unetkit.transforms.base import Sample, check_probability


class RandomInvert:
    """With probability ``p``: ``image -> 1 - image`` (all channels), i.e. light objects on dark become
    dark objects on light and back."""

    def __init__(self, p: float = 0.5):
        self.p = check_probability(p)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        out = dict(sample)
        if rng.random() < self.p:
            out["image"] = np.float32(1.0) - sample["image"].astype(np.float32, copy=False)
        return out

    def __repr__(self) -> str:
        return f"RandomInvert(p={self.p})"


class RandomColor:
    """With probability ``p``, for images of 2+ channels: each channel ``c`` becomes
    ``(x_c - m) * g_c + m + o_c`` (``m`` the image mean, gain ``g_c ~ U(1 - gain, 1 + gain)``, offset
    ``o_c ~ U(-offset, offset)``), a stain or white-balance change; then, with probability ``gray``, every
    channel is replaced by the channel mean (a gray image in an RGB network, as gray inputs arrive).
    Single-channel images pass unchanged.
    """

    def __init__(self, p: float = 0.5, gain: float = 0.2, offset: float = 0.1, gray: float = 0.25):
        if not 0 <= gain < 1:
            raise InputError(f"RandomColor gain must be in [0, 1) (factor 1 +- gain), got {gain}")
        if offset < 0:
            raise InputError(f"RandomColor offset must be >= 0, got {offset}")
        self.p = check_probability(p)
        self.gain = float(gain)
        self.offset = float(offset)
        self.gray = check_probability(gray)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        out = dict(sample)
        image = sample["image"]
        if image.shape[0] < 2 or rng.random() >= self.p:
            return out
        channels = image.shape[0]
        shape = (channels,) + (1,) * (image.ndim - 1)
        gains = rng.uniform(1 - self.gain, 1 + self.gain, channels).astype(np.float32).reshape(shape)
        offsets = rng.uniform(-self.offset, self.offset, channels).astype(np.float32).reshape(shape)
        mean = np.float32(image.mean())
        changed = (image.astype(np.float32) - mean) * gains + mean + offsets
        if rng.random() < self.gray:
            changed = np.repeat(changed.mean(axis=0, keepdims=True), channels, axis=0)
        out["image"] = changed.astype(np.float32, copy=False)
        return out

    def __repr__(self) -> str:
        return f"RandomColor(p={self.p}, gain={self.gain}, offset={self.offset}, gray={self.gray})"
