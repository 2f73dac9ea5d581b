"""Make an image's channel count match what a network expects."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unetkit.errors import InputError


def match_channels(image: np.ndarray, channels: int, path: str | Path | None = None) -> np.ndarray:
    """(C, *S) -> (channels, *S): gray is replicated to RGB, RGB averaged to gray; nothing else is guessed.

    Mixed datasets (the DSB set has gray images stored as RGB) can then train one network.
    Any other mismatch is an error naming the file.
    """
    have = image.shape[0]
    if have == channels:
        return image
    if have == 1:
        return np.repeat(image, channels, axis=0)
    if channels == 1 and have == 3:
        return image[:3].mean(axis=0, keepdims=True).astype(image.dtype)
    where = f"{path}: " if path else ""
    # 4 channels reach here only when they are 4 real channels (tagged alpha is dropped on reading):
    # averaging 3 of them, as before, silently discarded the 4th
    raise InputError(f"{where}image has {have} channels but the model expects {channels}; save the image with "
                     f"{channels} channel(s) (gray or RGB) or train a model on {have}-channel images")
