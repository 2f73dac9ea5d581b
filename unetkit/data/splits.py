"""In-memory arrays of a dataset split, and the helpers every task uses to fill them.

A task (``unetkit.tasks``) decides *what* a sample's target is; this module holds the container and the
plumbing: decoding samples on a few threads (PNG/TIFF decoding releases the GIL) and the channels of
a dataset's first image.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from unetkit.config import RunConfig
from unetkit.data.layouts import Sample


@dataclass
class SplitData:
    """Arrays of one split: images (C, *S) float32, raw labels, training targets, optional weight maps."""

    names: list[str] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)  # instance ids, class ids or targets in stored units
    targets: list[np.ndarray] = field(default_factory=list)  # what the loss compares with (class index per pixel)
    weights: list[np.ndarray] | None = None
    one_valued: int = 0  # masks whose objects all share one value (0/255): objects are connected components
    colour_averaged: list[str] = field(default_factory=list)  # colour images averaged into a gray model

    def add_image(self, name: str, image: np.ndarray, channels: int, path: str | Path | None = None) -> None:
        """Append a sample's image with the model's channels (``match_channels``), noting colour lost to gray."""
        from unetkit.data.channels import is_colour, match_channels

        if channels == 1 and image.shape[0] == 3 and is_colour(image):
            self.colour_averaged.append(name)
        self.names.append(name)
        self.images.append(match_channels(image, channels, path))


LOAD_BAR_DELAY_S = 5.0  # seconds of loading before its bar appears


def map_samples(samples: list[Sample], function: Callable[[Sample], Any], desc: str) -> list[Any]:
    """``[function(s) for s in samples]`` on 4 threads with a progress bar, shown only once loading has taken
    ``LOAD_BAR_DELAY_S`` (a log gets it too, throttled by the CLI; short loads print nothing)."""
    with ThreadPoolExecutor(max_workers=4) as pool:  # PNG/TIFF decoding releases the GIL
        return list(tqdm(pool.map(function, samples), total=len(samples), desc=desc, unit="img", leave=False,
                         delay=LOAD_BAR_DELAY_S))


def model_channels(config: RunConfig, sample: Sample, volumetric: bool = False) -> int:
    """``model.in_channels`` for a dataset: its first image's channels, or more where the config asks.

    Gray images are repeated for a colour model, so ``--set model.in_channels=3`` keeps the colour of a
    folder whose first image is gray; a value below the data's is raised to it.
    """
    return max(config.model.in_channels, image_channels(sample, volumetric))


def image_channels(sample: Sample, volumetric: bool = False) -> int:
    """Channels of a sample's image after loading (1 gray, 3 colour)."""
    from unetkit.data.io import read_image, read_page, read_volume

    if volumetric:
        return read_volume(sample.image_path).shape[0]
    if sample.index is not None:
        return read_page(sample.image_path, sample.index)[None].shape[0]
    return read_image(sample.image_path).shape[0]
