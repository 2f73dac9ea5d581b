"""Instance labels of images larger than memory: post-processing in overlapping chunks.

The image is cut into a grid of ``chunk``-sized *cores*; each chunk runs ``postprocess`` on its core
grown by ``halo`` px on every side (its *window*) and writes labels into the shared output.

Seam rule. Objects are grouped into *clumps* (connected groups of touching objects, full
connectivity); post-processing treats every clump on its own, so a clump lying wholly inside a window
comes out as in one whole-image run (exactly, except where the watershed breaks ties on perfectly flat
plateaus of a synthetic map, which depend on the flooding order).

1. A clump belongs to the chunk whose core holds the top-left (minimum) corner of its bounding box:
   that chunk writes the whole clump, so objects crossing a seam are neither cut nor counted twice.
   Every clump up to ``halo`` px across fits in its owner's window (its corner lies in the core).
2. Clumps larger than that do not fit: each chunk then writes the part of them inside its own core
   (new ids per piece, so such clumps are split at the seams); ``ChunkedStats.cut_pieces`` counts them.

Chunks run in row-major order and only write pixels still 0, so a clump written whole under rule 1
(by an earlier chunk: a clump has no pixel in a core before its owner's) is never overwritten.

One exception to "as in one whole-image run": a model with an object filter (``postprocess.object_weights``)
scores each object's size against the median object size of the image it sees, here its window (2304 px
across by default, hundreds of nuclei), so a filter decision can differ from a whole-image run where the
windows' nuclei differ in size from the image's as a whole.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from tqdm.auto import tqdm

from unetkit.config import PostprocessConfig
from unetkit.errors import InputError
from unetkit.inference.postprocess import postprocess


@dataclass
class ChunkedStats:
    """Result of chunked post-processing."""

    objects: int  # ids written (1..objects)
    cut_pieces: int  # pieces of clumps too large for the halo (split at chunk seams)
    chunks: int
    seconds: float


def _as_probabilities(block: np.ndarray) -> np.ndarray:
    """float32 probabilities; uint8 maps written as probability x 255 are scaled back."""
    if block.dtype == np.uint8:
        return block.astype(np.float32) / 255.0
    return block.astype(np.float32, copy=False)


def _write_new_ids(output, region: tuple[slice, ...], ids: np.ndarray, where: np.ndarray, next_id: int) -> int:
    """Write ``ids`` (renumbered from ``next_id``) into ``output[region]`` at ``where`` & still-0 pixels.

    Returns the next free id.
    """
    current = np.asarray(output[region])
    where = where & (current == 0)
    if not where.any():
        return next_id
    values = ids[where]
    unique = np.unique(values)
    current[where] = np.searchsorted(unique, values) + next_id
    output[region] = current
    return next_id + len(unique)


def postprocess_chunked(probs, output, config: PostprocessConfig, kind: str, chunk: int = 2048, halo: int = 128,
                        progress: bool = False) -> ChunkedStats:
    """Instance labels of model output ``probs`` (K, *S) written into ``output`` (*S, integer, zeros).

    ``probs`` and ``output`` are array-likes read and written by boxes (numpy, ``RawArray``, zarr), so
    memory holds one window of (K, chunk + 2 halo, ...) at a time. ``kind`` is the training target
    ("binary", "three-class", "distance") as for ``postprocess``. See the module doc for the seam rule.
    """
    started = time.perf_counter()
    spatial = tuple(int(n) for n in probs.shape[1:])
    if tuple(output.shape) != spatial:
        raise InputError(f"label output has shape {tuple(output.shape)}, expected {spatial}")
    if chunk < 1 or halo < 0:
        raise InputError(f"chunk must be >= 1 and halo >= 0; got chunk {chunk}, halo {halo}")
    full = np.ones((3,) * len(spatial), dtype=bool)
    cores = list(itertools.product(*(range(0, n, chunk) for n in spatial)))
    next_id, cut = 1, 0
    for core_start in tqdm(cores, desc="chunks", unit="chunk", disable=not progress, leave=False):
        core_stop = [min(s + chunk, n) for s, n in zip(core_start, spatial, strict=True)]
        low = [max(0, s - halo) for s in core_start]
        high = [min(n, e + halo) for e, n in zip(core_stop, spatial, strict=True)]
        window = tuple(slice(a, b) for a, b in zip(low, high, strict=True))
        labels = postprocess(_as_probabilities(np.asarray(probs[(slice(None), *window)])), config, kind)
        clumps, _ = ndi.label(labels > 0, structure=full)
        for index, box in enumerate(ndi.find_objects(clumps), start=1):
            if box is None:
                continue
            corner = [b.start + lo for b, lo in zip(box, low, strict=True)]
            if not all(s <= c < e for c, s, e in zip(corner, core_start, core_stop, strict=True)):
                continue
            region = tuple(slice(b.start + lo, b.stop + lo) for b, lo in zip(box, low, strict=True))
            next_id = _write_new_ids(output, region, labels[box], clumps[box] == index, next_id)
        # rule 2: what is left of this core belongs to clumps too large for the halo
        core = tuple(slice(s, e) for s, e in zip(core_start, core_stop, strict=True))
        local = tuple(slice(s - lo, e - lo) for s, e, lo in zip(core_start, core_stop, low, strict=True))
        before = next_id
        next_id = _write_new_ids(output, core, labels[local], labels[local] > 0, next_id)
        cut += next_id - before
    return ChunkedStats(next_id - 1, cut, len(cores), time.perf_counter() - started)


def instances_large(probabilities: str | Path, labels: str | Path, config: PostprocessConfig, kind: str,
                    chunk: int = 2048, halo: int = 128, progress: bool = True,
                    spacing: Sequence[float] | None = None) -> ChunkedStats:
    """Chunked instance labels from a probability file (.npy/.tif/.zarr, (K, *S)) into ``labels``
    (.npy/.zarr, uint32 (*S), or .tif with the pixel size ``spacing``)."""
    from unetkit.inference.streaming import create_label_sink, open_source

    probs = open_source(probabilities, spatial_dims=None)
    sink = create_label_sink(labels, probs.shape[1:], spacing)
    try:
        return postprocess_chunked(probs, sink, config, kind, chunk, halo, progress)
    finally:
        if hasattr(sink, "close"):
            sink.close()
