"""The ISBI 2012 challenge's warping error: topology-preserving warping of the truth onto a proposal.

Jain et al. 2010 ("Boundary learning by optimization with topological constraints") compare a proposal
``T`` with a truth ``L*`` after warping ``L*`` towards ``T`` by flipping only *simple points*: pixels
whose flip changes no topology (foreground 4-connected, background 8-connected). The mismatches left
are the topological disagreements. The ISBI 2012 challenge scored the *minimum splits and mergers
warping error* of Fiji's Trainable Segmentation (``metrics.WarpingError``,
``getMinimumSplitsAndMergersErrorValue(0.0, 0.9, 0.1, false)`` on its wiki page), which this module
follows (read, not translated). For one binarisation threshold ``t`` and one 2D slice:

1. Truth: non-zero = 1 (cell). Proposal: ``prob > t`` = 1, else 0. Both are padded with a 0 frame, so
   pixels outside the image count as background in the simple-point test.
2. Warping, in passes: the current mismatches are ordered by ``|prob - t|`` descending (computed in
   float32 as Fiji's ``Point3f``; ties in column-major order, x outer, y inner, by a stable sort), then
   each in turn is flipped if it is simple *in the current state* (earlier flips of the pass count).
   Passes repeat until one flips nothing. Flipping a mismatch always removes it, so the mismatch set
   only shrinks. Simple = (4, 8) simple point: in the 8 neighbours, the foreground 4-neighbours form
   exactly one 4-connected run (the challenge tests it as a (6, 26) simple point of a one-slice 3D
   patch, which is the same thing; ``tests/metrics/test_warping.py`` checks all 256 patterns).
3. Each remaining mismatch is classified on the warped truth ``W`` (4-connected components of its
   foreground, background 0), from the component ids among its 8 neighbours (inside the image):
   only 0 -> object addition / deletion; one object only -> hole deletion / addition; 0 and one
   object -> background pixel: hole addition; foreground pixel: a *split* if removing it breaks that
   object into pieces touching the pixel, else hole deletion; 0 and two or more objects -> background
   pixel: *merge*, foreground pixel: *split*.
4. Error at ``t`` = (split pixels + merge pixels) summed over slices / all pixels of the stack.

The warping error is the minimum over ``t`` in 0.0, 0.1, ..., 0.9 (the lowest such ``t`` on ties; the
grid accumulated in floating point as the challenge's loop does, reported rounded to 10 decimals).
Over a folder, split and merge pixels and pixel counts are summed over images before the division.

This is exact, not approximate: pixels whose 8 neighbours did not change since they were last found
non-simple are not tested again (their answer cannot change), which makes the passes cost about one
test per mismatch plus eight updates per flip. The coarse 10-threshold grid is the challenge's, not a
speed-up: a 512 x 512 ISBI slice takes about 0.1 CPU-s per threshold (the ``em-membranes`` maps,
BENCHMARKS.md), up to ~0.6 s where a quarter of the pixels disagree.

A binary mask (not a probability map) is warped once, every pixel's ``|prob - t|`` tied (the order is
column-major), where Fiji's sweep of a 0/1 image would order the mismatches of the two values first
or last by threshold; the outcome differs from Fiji's only in how ties are broken.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from unetkit.errors import InputError


def _challenge_grid() -> np.ndarray:
    """0.0, 0.1, ..., 0.9 as the challenge's loop makes them (``t += 0.1`` while ``t <= 0.9``), so
    0.30000000000000004 and 0.7999999999999999 among them: the same float32 maps binarise alike either
    way, but the float32 key ``|p - t|`` could round differently and break a tie otherwise."""
    grid, t = [], 0.0
    while t <= 0.9:
        grid.append(t)
        t += 0.1
    return np.asarray(grid)


WARPING_THRESHOLDS = _challenge_grid()  # 10 thresholds, the challenge's grid for this metric
_FOUR = ndi.generate_binary_structure(2, 1)

# Neighbour (dy, dx) -> bit of the 8-neighbour code, row-major around the centre.
_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
_CODE_KERNEL = np.array([[1, 2, 4], [8, 0, 16], [32, 64, 128]], dtype=np.int32)


def _simple_table() -> np.ndarray:
    """(256,) bool: is the centre a (4, 8) simple point, by 8-neighbour code (bits as ``_CODE_KERNEL``).

    Counted around the ring E, NE, N, NW, W, SW, S, SE: the number of 4-connected foreground runs
    that hold a 4-neighbour is ``sum over 4-neighbours k of x_k - x_k * x_corner * x_next`` (a run
    ends after k unless the corner and the next 4-neighbour continue it; Yokoi's connectivity number).
    Simple iff that number is 1, which also leaves exactly one 8-connected background run unless all
    8 neighbours are foreground (number 0 then: not simple, a hole would open or close).
    """
    ring_bits = (16, 4, 2, 1, 8, 32, 64, 128)  # E, NE, N, NW, W, SW, S, SE
    table = np.zeros(256, dtype=bool)
    for code in range(256):
        x = [1 if code & bit else 0 for bit in ring_bits]
        runs = sum(x[k] - x[k] * x[k + 1] * x[(k + 2) % 8] for k in (0, 2, 4, 6))
        table[code] = runs == 1
    return table


SIMPLE = _simple_table()


def neighbour_codes(mask: np.ndarray) -> np.ndarray:
    """(H, W) int: 8-neighbour code of every pixel of a binary image, outside the image = 0."""
    return ndi.correlate(np.asarray(mask, dtype=np.int32), _CODE_KERNEL, mode="constant", cval=0)


def is_simple(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: which pixels of a binary image are (4, 8) simple points (outside = background)."""
    return SIMPLE[neighbour_codes(mask)]


def warp_truth(truth: np.ndarray, proposal: np.ndarray, threshold: float) -> np.ndarray:
    """The truth warped onto ``proposal > threshold`` by simple-point flips, as the challenge orders them.

    ``truth`` (H, W): non-zero = foreground. ``proposal`` (H, W): float map. Returns the warped binary
    image (H, W) bool; its disagreements with ``proposal > threshold`` are the non-simple mismatches.
    """
    truth, proposal = np.asarray(truth) != 0, np.asarray(proposal)
    height, width = truth.shape
    stride = width + 2
    source = np.zeros((height + 2, stride), dtype=np.uint8)  # 0 frame: outside is background
    source[1:-1, 1:-1] = truth
    target = np.zeros_like(source)
    target[1:-1, 1:-1] = proposal > threshold
    mismatch = source != target
    if not mismatch.any():
        return truth.copy()

    # Fixed order of all mismatches: |prob - t| (float32) descending, then column-major (x outer).
    key = np.zeros(source.shape, dtype=np.float32)
    key[1:-1, 1:-1] = np.abs(proposal.astype(np.float64) - threshold).astype(np.float32)
    flat = np.flatnonzero(mismatch.T.ravel())  # column-major positions in the padded image
    rows, cols = flat % (height + 2), flat // (height + 2)
    index = rows * stride + cols  # row-major flat index into the padded image
    order = np.argsort(-key[rows, cols], kind="stable")
    index = index[order]
    rank = np.full(source.size, -1, dtype=np.int64)
    rank[index] = np.arange(index.size)

    state = source.ravel().tolist()
    codes = neighbour_codes(source).ravel().tolist()
    rank_of = rank.tolist()
    simple = SIMPLE.tolist()
    # neighbour offset in the flat padded image -> bit the centre holds in that neighbour's code
    steps = [(dy * stride + dx, int(_CODE_KERNEL[1 - dy, 1 - dx])) for dy, dx in _OFFSETS]

    remaining = bytearray(source.size)  # 1 = still a mismatch
    for i in index.tolist():
        remaining[i] = 1
    pending = bytearray(source.size)  # 1 = neighbourhood changed since its last test (queued)
    heap = list(range(index.size))  # ranks; sorted, hence already a heap
    position = index.tolist()  # rank -> flat index
    for r in heap:
        pending[position[r]] = 1
    while heap:
        later: list[int] = []  # changed behind the pass's position: tested next pass
        while heap:
            current = heapq.heappop(heap)
            i = position[current]
            pending[i] = 0
            if not simple[codes[i]]:
                continue
            state[i] ^= 1
            remaining[i] = 0
            for step, bit in steps:
                j = i + step
                codes[j] ^= bit
                if remaining[j] and not pending[j]:
                    pending[j] = 1
                    if rank_of[j] > current:
                        heapq.heappush(heap, rank_of[j])
                    else:
                        later.append(rank_of[j])
        heap = sorted(later)
    warped = np.asarray(state, dtype=np.uint8).reshape(source.shape)[1:-1, 1:-1]
    return warped.astype(bool)


@dataclass(frozen=True)
class WarpingCounts:
    """Non-simple mismatches left after warping, by kind, and the pixels they were counted over."""

    splits: int
    merges: int
    other: int  # object / hole additions and deletions (not part of the challenge's score)
    pixels: int

    def __add__(self, other: WarpingCounts) -> WarpingCounts:
        return WarpingCounts(self.splits + other.splits, self.merges + other.merges,
                             self.other + other.other, self.pixels + other.pixels)

    @property
    def error(self) -> float:
        """Split and merge pixels per pixel (the challenge's warping error); 0 without pixels."""
        return 0.0 if self.pixels == 0 else (self.splits + self.merges) / self.pixels


def _splits_object(objects: np.ndarray, boxes: list, y: int, x: int) -> bool:
    """Would removing foreground pixel (y, x) split its neighbouring object into pieces around it?

    Only the object's bounding box (with the pixel) is relabelled: other objects cannot change."""
    ids = objects[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2]
    label = int(ids[ids > 0][0])  # the one object among the neighbours
    box = boxes[label - 1]
    top, left = min(box[0].start, y), min(box[1].start, x)
    crop = objects[top:max(box[0].stop, y + 1), left:max(box[1].stop, x + 1)] == label
    crop[y - top, x - left] = False
    pieces = ndi.label(crop, structure=_FOUR)[0]
    around = pieces[max(y - 1 - top, 0):y + 2 - top, max(x - 1 - left, 0):x + 2 - left]
    return np.unique(around[around > 0]).size > 1


def classify_mismatches(warped: np.ndarray, target: np.ndarray) -> WarpingCounts:
    """Split / merge / other pixels among the disagreements of a warped truth and a binary proposal.

    Rules as in the module docstring (component ids among the 8 neighbours inside the image).
    Example: a background pixel closing a one-pixel gap between two cells is a merge.
    """
    warped, target = np.asarray(warped, dtype=bool), np.asarray(target, dtype=bool)
    objects, count = ndi.label(warped, structure=_FOUR)
    boxes = ndi.find_objects(objects) if count else []
    height, width = warped.shape
    ys, xs = np.nonzero(warped != target)
    # ids of the 8 neighbours of every mismatch, -1 outside the image: (n, 8) -> distinct ids per row
    padded = np.pad(objects, 1, constant_values=-1)
    ids = np.sort(np.stack([padded[ys + 1 + dy, xs + 1 + dx] for dy, dx in _OFFSETS], axis=1), axis=1)
    distinct = np.sum((np.diff(ids, axis=1) != 0) & (ids[:, 1:] >= 0), axis=1) + (ids[:, 0] >= 0)
    foreground = warped[ys, xs]
    several = distinct >= 3  # background and two or more objects around it
    splits = int(np.count_nonzero(several & foreground))
    merges = int(np.count_nonzero(several & ~foreground))
    # Two ids are background and one object (8 foreground neighbours are one 4-connected ring):
    # a foreground pixel there is a split only if removing it cuts its object around it.
    for y, x in zip(ys[(distinct == 2) & foreground], xs[(distinct == 2) & foreground], strict=True):
        splits += _splits_object(objects, boxes, int(y), int(x))
    other = ys.size - splits - merges  # object addition/deletion, hole addition/deletion
    return WarpingCounts(splits, merges, other, height * width)


def warping_counts(truth: np.ndarray, proposal: np.ndarray, threshold: float) -> WarpingCounts:
    """Warp one 2D truth onto ``proposal > threshold`` and classify what is left."""
    truth, proposal = np.asarray(truth), np.asarray(proposal)
    if truth.ndim != 2 or truth.shape != proposal.shape:
        raise InputError(f"warping error needs two 2D images of one shape, got {truth.shape} and {proposal.shape}")
    return classify_mismatches(warp_truth(truth, proposal, threshold), proposal > threshold)


def warping_curve(truth: np.ndarray, proposal: np.ndarray, is_probability: bool = True,
                  thresholds: Sequence[float] = WARPING_THRESHOLDS) -> list[WarpingCounts]:
    """Counts per threshold of one 2D image, to be summed over slices/images and minimised.

    ``proposal``: a foreground probability map (foreground = ``proposal > t``), or with
    ``is_probability=False`` a mask (non-zero = foreground), warped once and repeated over the grid.
    """
    if is_probability:
        return [warping_counts(truth, proposal, float(t)) for t in thresholds]
    counts = warping_counts(truth, (np.asarray(proposal) != 0).astype(np.float32), 0.5)
    return [counts] * len(thresholds)


def warping_error(curves: Sequence[Sequence[WarpingCounts]],
                  thresholds: Sequence[float] = WARPING_THRESHOLDS) -> tuple[float, float, WarpingCounts]:
    """(minimum error, its threshold, its summed counts) over slices/images given per threshold."""
    if not curves:
        raise InputError("no images to score")
    totals = [sum((c[k] for c in curves), WarpingCounts(0, 0, 0, 0)) for k in range(len(thresholds))]
    errors = np.array([t.error for t in totals])
    best = int(np.argmin(errors))  # the first (lowest) threshold on ties, as Fiji's strict '<'
    return float(errors[best]), round(float(thresholds[best]), 10), totals[best]
