"""Small pure helpers of the overlap-tile strategy: tile positions and blending windows.

Everything works per axis, so 2D images and 3D volumes share the code. Which tiles a network takes is
``tile_plan``; a tile's pixels are read with mirrored borders by ``unetkit.data.regions.read_region``.
"""

from __future__ import annotations

import functools
import math

import numpy as np


def valid_tile_starts(length: int, output_tile: int, align: int) -> list[int]:
    """Output-tile start positions along one axis for a valid (unpadded) net.

    Starts are multiples of ``align`` (the net's total pooling factor) so that every tile pools on
    the same grid as one whole-image pass would, which makes stitching exact. The step is the
    largest multiple of ``align`` not above the output tile; neighbouring tiles then overlap by
    ``output_tile - step`` px whose values agree.

    Example: length 1000, output tile 388, align 16 -> step 384, starts 0, 384, 624
    (624 = 1000 - 388 = 612 rounded up to a multiple of 16, so the last tile covers the end).
    """
    if length <= output_tile:
        return [0]
    if output_tile < align:  # aligned starts would leave gaps between tiles (plan_tiles never asks for this)
        raise ValueError(f"output tile {output_tile} is narrower than the pooling grid {align}")
    step = output_tile // align * align
    last = math.ceil((length - output_tile) / align) * align
    starts = list(range(0, last, step))
    if not starts or starts[-1] != last:
        starts.append(last)
    return starts


def overlapping_tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Evenly spread tile starts covering ``length`` with at least ``overlap`` shared between tiles.

    Example: length 1000, tile 256, overlap 0.25 -> target step 192, 5 tiles,
    starts 0, 186, 372, 558, 744 (the last ends exactly at 1000).
    """
    if length <= tile:
        return [0]
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1); got {overlap}")
    target_step = max(1, int(tile * (1 - overlap)))
    count = math.ceil((length - tile) / target_step) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


@functools.lru_cache(maxsize=8)
def gaussian_window(size: tuple[int, ...], sigma_fraction: float = 0.125) -> np.ndarray:
    """Gaussian importance map over a tile (peak 1 in the centre), floored to avoid zero weights.

    Centre pixels of a tile have the most context, so they count most where tiles overlap.
    """
    axes = []
    for n in size:
        x = np.arange(n, dtype=np.float64) - (n - 1) / 2
        axes.append(np.exp(-0.5 * (x / max(n * sigma_fraction, 1e-6)) ** 2))
    window = functools.reduce(np.multiply.outer, axes)
    window = window / window.max()
    return np.maximum(window, 1e-3).astype(np.float32)


def constant_window(size: tuple[int, ...]) -> np.ndarray:
    """Uniform weights: plain averaging of overlapping tiles."""
    return np.ones(size, dtype=np.float32)
