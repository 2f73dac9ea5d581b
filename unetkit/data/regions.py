"""Boxes of an image read with mirrored borders: the one reader of training patches and prediction tiles.

Channels-first arrays of any kind (numpy, memory-mapped, zarr, the lazy views of ``data.ome``): only the
in-bounds box is read, so a large image is never loaded whole.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def reflect_indices(start: int, stop: int, length: int) -> np.ndarray:
    """Indices ``start..stop-1`` folded into ``[0, length)`` by mirroring at the borders.

    The mirror excludes the edge pixel (numpy's ``reflect``): for length 5, -2 -> 2, -1 -> 1, 5 -> 3.
    Repeats for ranges far outside the image (a 3-px image padded by 10).
    """
    index = np.arange(start, stop)
    if length == 1:
        return np.zeros_like(index)
    period = 2 * (length - 1)
    index = np.mod(index, period)
    return np.where(index >= length, period - index, index)


def read_region(image, starts: Sequence[int], size: Sequence[int], dtype=np.float32) -> np.ndarray:
    """Read the box ``[starts, starts + size)`` of a channels-first array, mirroring outside it.

    Only the in-bounds bounding box of the mirrored indices is read from ``image``, so a memory-mapped
    or zarr array is never loaded whole. Returns (C, *size) of ``dtype`` (float32 by default).
    """
    spatial = image.shape[1:]
    indices = [reflect_indices(s, s + n, length) for s, n, length in zip(starts, size, spatial, strict=True)]
    box = tuple(slice(int(ix.min()), int(ix.max()) + 1) for ix in indices)
    block = np.asarray(image[(slice(None), *box)], dtype=dtype)
    local = [ix - ix.min() for ix in indices]
    if all(np.array_equal(ix, np.arange(len(ix))) for ix in local):
        return block
    return block[(slice(None), *np.ix_(*local))]
