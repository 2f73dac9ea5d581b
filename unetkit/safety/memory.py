"""Refuse to read an image whose header asks for more memory than the machine has, before allocating it.

A TIFF header can claim any size (a 1 KB file may ask for 9 GiB); reading it whole would either exhaust
memory or fail deep inside a library. Images larger than half the physical memory are for
``predict-large``, which reads them tile by tile.
"""

from __future__ import annotations

import os
from pathlib import Path

from unetkit.errors import InputError


def physical_memory_bytes() -> int:
    """Physical memory of this machine (0 when unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def check_fits_in_memory(path: str | Path, shape: tuple[int, ...], itemsize: int, share: float = 0.5) -> None:
    """InputError when an array of ``shape`` x ``itemsize`` bytes needs more than ``share`` of the memory."""
    need = itemsize
    for n in shape:
        need *= int(n)
    limit = physical_memory_bytes() * share
    if limit and need > limit:
        raise InputError(f"{Path(path)}: the image needs {need / 2**30:.1f} GiB to read whole (shape {tuple(shape)}), "
                         f"more than half of this machine's memory; use predict-large, which reads it tile by tile")


# Bytes per pixel that ``predict`` holds for a whole 2D image, beside the network: the normalised input
# (4 x channels), the stitched class scores and probabilities (12 x classes), the mask and the pictures (8), and
# for instances the watershed, the labels and the object table (32 more). Measured at 36 MP (BENCHMARKS.md,
# "Memory of a whole-image prediction"): 24-31 bytes per pixel for gray 2-class models, 82 for the RGB 3-class
# `nuclei` with instances; the estimates are 36 and 88.
PREDICT_BYTES_PER_CHANNEL, PREDICT_BYTES_PER_CLASS, PREDICT_BYTES_FIXED, PREDICT_BYTES_INSTANCES = 4, 12, 8, 32


def predict_bytes(pixels: int, channels: int, classes: int, instances: bool = False) -> int:
    """Estimated peak memory of predicting ``pixels`` whole (besides the network and torch itself)."""
    per_pixel = (PREDICT_BYTES_PER_CHANNEL * channels + PREDICT_BYTES_PER_CLASS * classes + PREDICT_BYTES_FIXED
                 + (PREDICT_BYTES_INSTANCES if instances else 0))
    return int(pixels) * per_pixel


def check_prediction_fits(path: str | Path, shape: tuple[int, ...], channels: int, classes: int,
                          instances: bool = False, share: float = 0.8, noun: str = "MP image") -> None:
    """InputError, before the image is read, when predicting it whole would need more than ``share`` of the
    memory: the process would be killed by the system (a 3600 MP TIFF was, after minutes) instead of told."""
    pixels = 1
    for n in shape:
        pixels *= int(n)
    need = predict_bytes(pixels, channels, classes, instances)
    memory = physical_memory_bytes()
    if memory and need > memory * share:
        raise InputError(f"{Path(path)}: predicting this {pixels / 1e6:.0f} {noun} whole needs about "
                         f"{need / 2**30:.1f} GiB, more than {share:.0%} of this machine's {memory / 2**30:.1f} GiB; "
                         "use `unetkit predict-large`, which reads and writes it tile by tile")
