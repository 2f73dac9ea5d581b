"""The small-object rule for images read and written box by box (``predict-large``).

``unetkit.inference.small_objects`` predicts an in-memory image of small objects again at 2x. An image larger
than memory takes the same road in three lazy pieces:

- ``sampled_median_area``: the median object of the first answer, from the whole image up to
  ``WHOLE_DECISION_PIXELS`` (then exactly the in-memory decision), else from evenly spaced blocks, leaving out
  the objects a block's cut edge cuts;
- ``Enlarged``: a lazy 2x bicubic view of the normalised image, each box enlarged from the box around it with
  ``MARGIN`` px of context (the cubic spline's reach decays by 0.27 per pixel, so 16 px give the whole image's
  values to float rounding);
- ``ShrinkingSink``: a sink of twice the size whose box writes land in the real one as 2x2 block means.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

from unetkit.config import RunConfig
from unetkit.errors import InputError
from unetkit.inference.small_objects import FACTOR, block_mean, enlarge

MARGIN = 16  # px of 1x context around each enlarged box
WHOLE_DECISION_PIXELS = 4_000_000  # images up to this size decide on their whole first answer, as in memory


def sampled_median_area(predict: Callable[[np.ndarray], np.ndarray], source, config: RunConfig, kind: str,
                        block: int = 512, blocks_per_axis: int = 4) -> float:
    """Median object area (px) of the first answer of a lazy normalised (C, H, W) image.

    ``predict``: (C, h, w) float32 -> (K, h, w) output at the image's own size. Images up to
    ``WHOLE_DECISION_PIXELS`` are predicted whole; larger ones in ``blocks_per_axis`` x ``blocks_per_axis``
    evenly spaced blocks of ``block`` px (4 x 4 x 512^2 = 4.2 MP), where objects touching an edge that cuts the
    image are left out (their size is not theirs).
    """
    from unetkit.inference.postprocess import postprocess

    spatial = tuple(int(n) for n in source.shape[1:])
    if math.prod(spatial) <= WHOLE_DECISION_PIXELS:
        boxes = [tuple(slice(0, n) for n in spatial)]
    else:
        starts = [np.unique(np.linspace(0, max(0, n - block), blocks_per_axis).astype(int)) for n in spatial]
        boxes = [tuple(slice(s, min(s + block, n)) for s, n in zip(start, spatial, strict=True))
                 for start in itertools.product(*starts)]
    sizes = []
    for box in boxes:
        image = np.asarray(source[(slice(None), *box)], dtype=np.float32)
        labels = postprocess(predict(image), config.postprocess, kind)
        counts = np.bincount(labels.ravel())
        cut = np.zeros(counts.size, dtype=bool)
        for axis, part in enumerate(box):
            if part.start > 0:
                cut[np.take(labels, 0, axis=axis)] = True
            if part.stop < spatial[axis]:
                cut[np.take(labels, -1, axis=axis)] = True
        cut[0] = True
        sizes.append(counts[(counts > 0) & ~cut])
    kept = np.concatenate(sizes)
    return float(np.median(kept)) if kept.size else 0.0


class Enlarged:
    """Lazy ``enlarge`` of a lazy channels-first 2D image: ``view[(slice(None), rows, cols)]`` (contiguous slices, as
    ``data.regions.read_region`` reads) at 2x coordinates reads the 1x box around it (``MARGIN`` px more each side) and
    enlarges that (see the module docstring)."""

    def __init__(self, source, factor: int = FACTOR):
        if len(source.shape) != 3:
            raise InputError(f"the 2x road is for 2D images (C, H, W); got shape {tuple(source.shape)}")
        self.source = source
        self.factor = factor
        channels, height, width = (int(n) for n in source.shape)
        self.shape = (channels, height * factor, width * factor)
        self.ndim = 3
        self.dtype = np.dtype(np.float32)

    def __getitem__(self, key) -> np.ndarray:
        wanted = [part.indices(n)[:2] for part, n in zip(key[1:], self.shape[1:], strict=True)]
        f = self.factor
        read = [(max(0, start // f - MARGIN), min(n // f, -(-stop // f) + MARGIN))
                for (start, stop), n in zip(wanted, self.shape[1:], strict=True)]
        block = np.asarray(self.source[(slice(None), *(slice(a, b) for a, b in read))], dtype=np.float32)
        big = enlarge(block, f)  # its pixel (i, j) is pixel (f * a0 + i, f * a1 + j) of the whole enlarged image
        return big[(slice(None), *(slice(start - f * a, stop - f * a)
                                   for (start, stop), (a, _) in zip(wanted, read, strict=True)))]


class ShrinkingSink:
    """A sink of ``factor`` times the spatial size of ``sink``: each box written lands in ``sink`` as the mean of
    its ``factor`` x ``factor`` blocks, converted by ``convert``.

    Writes must come as ``predict_streaming`` makes them: whole bands of a strip, top to bottom, strip after
    strip, with strip edges on multiples of ``factor`` (other writes are a programming error: RuntimeError). A
    band that ends inside a block keeps its last row until the next band of the strip brings the block's other row.
    """

    def __init__(self, sink, factor: int = FACTOR, convert: Callable[[np.ndarray], np.ndarray] | None = None):
        self.sink = sink
        self.factor = factor
        self.convert = convert or (lambda block: block)
        channels, *spatial = (int(n) for n in sink.shape)
        self.shape = (channels, *(n * factor for n in spatial))
        self.pending: tuple[int, tuple[int, int], np.ndarray] | None = None  # (row, columns, rows kept)

    def __setitem__(self, key, block: np.ndarray) -> None:
        rows, cols = (part.indices(n)[:2] for part, n in zip(key[1:], self.shape[1:], strict=True))
        f = self.factor
        if cols[0] % f or cols[1] % f:
            raise RuntimeError(f"a shrinking sink needs columns on multiples of {f}; got {cols}")
        block = np.asarray(block, dtype=np.float32)
        top = rows[0]
        if self.pending is not None:
            row, columns, kept = self.pending
            if (row + kept.shape[1], columns) != (top, cols):
                raise RuntimeError(f"rows {row}..{top} of columns {columns} were left unwritten")
            block, top, self.pending = np.concatenate([kept, block], axis=1), row, None
        if top % f:
            raise RuntimeError(f"a shrinking sink needs bands that start on multiples of {f}; got row {top}")
        whole = block.shape[1] - block.shape[1] % f
        if whole < block.shape[1]:
            self.pending = (top + whole, cols, block[:, whole:])
        if whole:
            self.sink[(slice(None), slice(top // f, (top + whole) // f), slice(cols[0] // f, cols[1] // f))] = \
                self.convert(block_mean(block[:, :whole], f))

    def finish(self) -> None:
        """Check that no row is left waiting for its pair (the last band of every strip ends on the last row)."""
        if self.pending is not None:
            raise RuntimeError(f"rows from {self.pending[0]} of columns {self.pending[1]} were never completed")


def even_strip(strip_width: int, factor: int = FACTOR) -> int:
    """The strip width rounded up to a multiple of ``factor`` (strips must not cut a block)."""
    return int(math.ceil(strip_width / factor) * factor) if strip_width > 0 else strip_width

