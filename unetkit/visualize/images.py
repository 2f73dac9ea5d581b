"""Pictures a person looks at: display conversion and prediction-vs-truth overlays (RGB uint8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from unetkit.safety.atomic import atomic_path

_DISPLAY_ROWS = 256  # rows stretched at a time: float temporaries of a band, not of the image


def to_display_rgb(image: np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) image of any range -> (H, W, 3) uint8 with a 1-99.5 percentile stretch.

    Gray images (and those of two channels: the first is shown) are stretched once and copied into the three
    colours; the stretch runs band by band, so a picture costs ~8 bytes per pixel beside the image, where
    whole-image float copies of three repeated channels cost 63 (BENCHMARKS.md, "Memory of a whole-image
    prediction").
    """
    array = np.asarray(image)
    if array.ndim == 3:
        channels = array[:1] if array.shape[0] < 3 else array[:3]
    else:
        channels = array[None]
    low, high = (float(v) for v in np.percentile(channels.astype(np.float32, copy=False), (1, 99.5)))
    spread = max(high - low, 1e-6)
    height, width = channels.shape[1:]
    rgb = np.empty((height, width, 3), np.uint8)
    for top in range(0, height, _DISPLAY_ROWS):
        band = channels[:, top:top + _DISPLAY_ROWS].astype(np.float32)
        band -= low
        band /= spread
        np.clip(band, 0, 1, out=band)
        band *= 255
        rgb[top:top + _DISPLAY_ROWS] = np.moveaxis(band.astype(np.uint8), 0, -1)  # (c, h, W) -> (h, W, c), c: 1 or 3
    return rgb


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it."""
    padded = np.pad(mask, 1, mode="edge")
    inner = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def mask_overlay(image: np.ndarray, prediction: np.ndarray, truth: np.ndarray | None = None,
                 alpha: float = 0.4) -> np.ndarray:
    """Prediction tinted magenta over the image; truth, when given, outlined in green.

    Returns (H, W, 3) uint8. Where prediction and truth disagree is what a person wants to see.
    """
    rgb = to_display_rgb(image)  # uint8: only the predicted pixels are blended in float
    predicted = np.asarray(prediction) > 0
    tinted = (1 - alpha) * rgb[predicted].astype(np.float32) + alpha * np.array([255, 0, 255], dtype=np.float32)
    rgb[predicted] = tinted.astype(np.uint8)
    rgb[_outline(predicted)] = (255, 0, 255)
    if truth is not None:
        rgb[_outline(np.asarray(truth) > 0)] = (0, 255, 0)
    return rgb


def class_overlay(image: np.ndarray, classes: np.ndarray, colours: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Class index map (H, W) blended over the image with one colour per class (class 0 left clear)."""
    rgb = to_display_rgb(image)  # uint8: each class's pixels are blended in float, the rest left as they are
    classes = np.asarray(classes)
    for index in range(1, len(colours)):
        where = classes == index
        tinted = (1 - alpha) * rgb[where].astype(np.float32) + alpha * np.asarray(colours[index], dtype=np.float32)
        rgb[where] = tinted.astype(np.uint8)
    return rgb


def side_by_side(*panels: np.ndarray, gap: int = 4) -> np.ndarray:
    """Join RGB panels of equal height horizontally with a white gap."""
    height = max(p.shape[0] for p in panels)
    spacer = np.full((height, gap, 3), 255, dtype=np.uint8)
    parts = []
    for panel in panels:
        if panel.shape[0] < height:
            panel = np.pad(panel, ((0, height - panel.shape[0]), (0, 0), (0, 0)), constant_values=255)
        parts += [panel, spacer]
    return np.concatenate(parts[:-1], axis=1)


def save_rgb(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 array as PNG, creating the folder."""
    path = Path(path)
    with atomic_path(path) as tmp:  # temporary name, renamed when complete
        Image.fromarray(rgb).save(tmp, format="PNG")
    return path
