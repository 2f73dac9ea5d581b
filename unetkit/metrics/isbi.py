"""The ISBI 2012 EM segmentation challenge metrics, both generations, as its scripts define them.

The challenge scored membrane probability maps against truth where non-zero = cell interior and
0 = membrane (border). Its evaluation scripts are the ``metrics`` package of Fiji's Trainable
Segmentation (classes ``RandError``, ``PixelError``, ``VariationOfInformation``); this module follows
their definitions (read, not translated line by line), with numpy/scipy doing the counting.

Original metrics (2012; the U-Net paper's Rand error 0.0382 and pixel error 0.0611):

- **Rand error** = 1 - the maximal F-score, over thresholds of the probability map, of the
  foreground-restricted Rand index. Truth and thresholded proposal become 4-connected components;
  pairs of pixels are counted only inside truth cells (truth border pixels excluded); every proposal
  border pixel inside a truth cell is a segment of its own. With ``c_ij`` the pixels of truth cell i
  in proposal segment j (j >= 1), ``s_i`` the proposal-border pixels in cell i, ``a_i = sum_j c_ij +
  s_i`` and ``b_j = sum_i c_ij``, pairs are counted with self-pairs (``n^2`` normalisation)::

      tp = sum_ij c_ij^2 + sum_i s_i      precision = tp / (sum_j b_j^2 + sum_i s_i)
                                          recall    = tp / sum_i a_i^2

  Precision is the merge score (merging segments grows ``sum b_j^2``), recall the split score.
- **pixel error** = 1 - the maximal F-score of pixel classification (positive = truth non-zero).

Over a stack of slices (or a folder of images) one threshold is chosen for all: pair counts and
pixel counts are summed over slices before the F-score (``getForegroundRestrictedRandIndexStats``,
``getPrecisionRecallStats``).

Newer metrics (2013 on; Arganda-Carreras et al. 2015): **V_rand** and **V_info after border
thinning**. The thresholded proposal's borders are thinned to one-pixel lines by the classic
watershed (Vincent & Soille, 4-connectivity) of the binary border image: cells are the minima, border
pixels are flooded from them in breadth-first order, pixels where two segments meet stay border.
Then V_rand is the foreground-restricted Rand F-score above and V_info the information-theoretic one:
with ``p`` the joint distribution of (truth cell, proposal segment) over truth foreground pixels
(border pixels again singletons), ``I`` the mutual information, ``H(T)``, ``H(S)`` the entropies::

      merge score = I / H(T)      split score = I / H(S)      V_info = 2 I / (H(T) + H(S))

Both are averaged over slices at each threshold (the challenge script's ``perSliceAverage = true``),
then maximised over the thresholds 0.0, 0.1, ..., 1.0 of its script. They are reported here as
errors ``1 - score``, with their split and merge parts (``1 - split score``, ``1 - merge score``).

Deviations, both in degenerate cases only: a truth without foreground scores error 0 (Fiji divides
by zero); where an entropy is 0 (one truth cell, or one proposal segment) the information scores take
their limits (no merge is possible with one truth cell: merge score 1; no split with one segment:
split score 1) where Fiji returns an F-score of 0.

The third original metric, the **warping error** (minimum splits and mergers warping error over
thresholds 0.0..0.9, pixels summed over slices), lives in ``unetkit.metrics.warping`` (no maintained
Python library provides the challenge's simple-point warping); ``isbi_curves`` / ``isbi_scores`` carry it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from unetkit.errors import InputError
from unetkit.metrics.warping import WARPING_THRESHOLDS, WarpingCounts, warping_curve, warping_error

ORIGINAL_THRESHOLDS = np.arange(101) / 100  # 0.00, 0.01, ..., 1.00: a fine grid for probability maps
THINNED_THRESHOLDS = np.arange(11) / 10  # 0.0, 0.1, ..., 1.0: the challenge script's grid
_FOUR = ndi.generate_binary_structure(2, 1)

# Vincent-Soille states of a border pixel during flooding (labels are > 0, lines 0)
_WSHED, _MASK, _INQUEUE = 0, -2, -3


@dataclass(frozen=True)
class Counts:
    """True positives, false positives, false negatives (pairs of pixels or pixels) and their F-score.

    As Fiji's ``ClassificationStatistics``: precision 1 without predicted positives, recall 1 without
    true positives to find, F-score 0 when both are 0.
    """

    tp: float
    fp: float
    fn: float

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def precision(self) -> float:
        return 1.0 if self.tp + self.fp == 0 else self.tp / (self.tp + self.fp)

    @property
    def recall(self) -> float:
        return 1.0 if self.tp + self.fn == 0 else self.tp / (self.tp + self.fn)

    @property
    def fscore(self) -> float:
        p, r = self.precision, self.recall
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _cells(mask: np.ndarray) -> np.ndarray:
    """4-connected components of a 2D mask's non-zero pixels (the challenge's ``connectedComponents(.., 4)``)."""
    return ndi.label(mask, structure=_FOUR)[0]


def _contingency(truth_cells: np.ndarray, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Over truth foreground: (pixels per (cell, segment) pair with segment >= 1, pixels per cell,
    proposal-border (segment 0) pixels per cell). Cells with no pixel are dropped."""
    inside = truth_cells > 0
    cells, segs = truth_cells[inside].astype(np.int64), segments[inside].astype(np.int64)
    per_cell = np.bincount(cells)[1:]
    singletons = np.bincount(cells[segs == 0], minlength=per_cell.size + 1)[1:]
    assigned = segs > 0
    keys = cells[assigned] * (int(segs.max(initial=0)) + 1) + segs[assigned]
    if keys.size and keys.max() < 8 * keys.size:  # a dense count is cheaper than sorting
        pairs = np.bincount(keys)
        pairs = pairs[pairs > 0]
    else:
        pairs = np.unique(keys, return_counts=True)[1]
    present = per_cell > 0
    return pairs.astype(np.float64), per_cell[present].astype(np.float64), singletons[present].astype(np.float64)


def _segment_sizes(truth_cells: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Pixels of each proposal segment (>= 1) inside truth foreground (``b_j``)."""
    inside = (truth_cells > 0) & (segments > 0)
    sizes = np.bincount(segments[inside].astype(np.int64))
    return sizes[sizes > 0].astype(np.float64)


def rand_counts(truth_cells: np.ndarray, segments: np.ndarray) -> Counts:
    """Foreground-restricted Rand pair counts (n^2 normalisation) of two 2D label images.

    ``truth_cells``: truth objects (> 0), 0 = border, excluded. ``segments``: proposal segments (> 0),
    0 = proposal border, each such pixel inside a truth cell its own segment. Precision is the merge
    score, recall the split score, F-score V_rand.
    """
    pairs, per_cell, singletons = _contingency(truth_cells, segments)
    tp = float(np.sum(pairs**2) + singletons.sum())
    predicted = float(np.sum(_segment_sizes(truth_cells, segments) ** 2) + singletons.sum())
    actual = float(np.sum(per_cell**2))
    return Counts(tp, predicted - tp, actual - tp)


@dataclass(frozen=True)
class InfoScores:
    """Information-theoretic scores: V_info (F-score), its split part I/H(S) and merge part I/H(T)."""

    score: float
    split: float
    merge: float


def info_scores(truth_cells: np.ndarray, segments: np.ndarray) -> InfoScores:
    """Foreground-restricted information-theoretic scores of two 2D label images (as ``rand_counts``).

    Entropies in nats over truth foreground pixels; proposal border pixels are singletons. Perfect
    agreement gives 1.0 for all three (see the module docstring for one-cell / one-segment limits).
    """
    pairs, per_cell, singletons = _contingency(truth_cells, segments)
    n = float(per_cell.sum())
    if n == 0:
        return InfoScores(1.0, 1.0, 1.0)

    def plogp(counts: np.ndarray) -> float:
        p = counts[counts > 0] / n
        return float(np.sum(p * np.log(p)))

    single = float(singletons.sum())
    h_truth = -plogp(per_cell)
    h_seg = -(plogp(_segment_sizes(truth_cells, segments)) - single / n * np.log(n))
    h_joint = -(plogp(pairs) - single / n * np.log(n))
    mutual = max(0.0, h_truth + h_seg - h_joint)
    tiny = 1e-12 * max(1.0, np.log(n))  # entropies below this are 0 up to rounding
    merge = 1.0 if h_truth <= tiny else min(1.0, mutual / h_truth)
    split = 1.0 if h_seg <= tiny else min(1.0, mutual / h_seg)
    score = 0.0 if merge + split == 0 else 2 * merge * split / (merge + split)
    return InfoScores(score, split, merge)


def pixel_counts(truth_mask: np.ndarray, pred_mask: np.ndarray) -> Counts:
    """Pixel classification counts, positive = non-zero (cell interior in ISBI 2012)."""
    truth, pred = np.asarray(truth_mask) != 0, np.asarray(pred_mask) != 0
    tp = int(np.count_nonzero(truth & pred))
    return Counts(float(tp), float(np.count_nonzero(pred) - tp), float(np.count_nonzero(truth) - tp))


def thin_borders(mask: np.ndarray) -> np.ndarray:
    """Proposal segments after border thinning: int32 labels (> 0), one-pixel lines 0.

    ``mask`` (H, W): non-zero = cell, 0 = border. The classic watershed of the binary border image
    (4-connectivity, Vincent & Soille as in the challenge's ``WatershedTransform2D``): the cells are
    the minima, labelled by their 4-connected components; border pixels are flooded from them in
    breadth-first order (pixels visited column by column, neighbours left, up, right, down), a pixel
    reached from two different segments becomes a line; an image without cells is one segment.
    Example: two cells separated by a 3-pixel border keep a 1-pixel line.
    """
    mask = np.asarray(mask) != 0
    if mask.ndim != 2:
        raise InputError(f"border thinning needs a 2D mask, got shape {mask.shape}")
    height, width = mask.shape
    cells = _cells(mask)
    border = ~mask
    if not border.any() or not mask.any():  # nothing to thin, or one plateau: a single new minimum
        return cells.astype(np.int32) if mask.any() else np.ones(mask.shape, np.int32)
    # Column-major flat order reproduces the challenge's pixel order (x outer, y inner).
    state = np.where(border, _MASK, cells).T.ravel().tolist()
    touching = border & ndi.binary_dilation(mask, _FOUR)
    queue = deque(np.flatnonzero(touching.T.ravel()).tolist())
    for index in queue:
        state[index] = _INQUEUE
    last = width * height
    flag = False
    while queue:
        index = queue.popleft()
        row = index % height
        neighbours = (index - height if index >= height else -1, index - 1 if row > 0 else -1,
                      index + height if index + height < last else -1, index + 1 if row < height - 1 else -1)
        for other in neighbours:
            if other < 0:
                continue
            theirs, mine = state[other], state[index]
            if theirs > 0:  # a labelled segment
                if mine == _INQUEUE or (mine == _WSHED and flag):
                    state[index] = theirs
                elif mine > 0 and mine != theirs:
                    state[index] = _WSHED
                    flag = False
            elif theirs == _WSHED:
                if mine == _INQUEUE:
                    state[index] = _WSHED
                    flag = True
            elif theirs == _MASK:
                state[other] = _INQUEUE
                queue.append(other)
    # Every border region touches a cell here (the all-border image returned above), so flooding
    # reaches every pixel: no new minima appear at the border level.
    labels = np.asarray(state, dtype=np.int64).reshape(width, height).T
    return labels.astype(np.int32)


def _slices(array: np.ndarray) -> list[np.ndarray]:
    """(H, W) -> [it]; (D, H, W) -> its D slices (the challenge scores a stack slice by slice)."""
    if array.ndim == 2:
        return [array]
    if array.ndim == 3:
        return list(array)
    raise InputError(f"ISBI metrics need a 2D image or a 3D stack, got shape {array.shape}")


def _original_stats(truth: np.ndarray, truth_cells: np.ndarray, mask: np.ndarray) -> tuple[Counts, Counts]:
    """Rand pair counts and pixel counts of one thresholded slice."""
    return rand_counts(truth_cells, _cells(mask)), pixel_counts(truth, mask)


def _thinned_stats(truth_cells: np.ndarray, mask: np.ndarray) -> tuple[list[float], list[float]]:
    """(V_rand, split, merge) and (V_info, split, merge) of one thresholded slice after thinning."""
    segments = thin_borders(mask)
    counts, info = rand_counts(truth_cells, segments), info_scores(truth_cells, segments)
    return [counts.fscore, counts.recall, counts.precision], [info.score, info.split, info.merge]


@dataclass
class IsbiCurves:
    """Per-threshold statistics of one image or stack, to be combined over a folder by ``isbi_scores``.

    ``rand`` / ``pixel``: one ``Counts`` per threshold of ``original_thresholds`` (summed over slices);
    ``vrand`` / ``vinfo``: rows (score, split score, merge score) per threshold of ``thinned_thresholds``,
    one list entry per slice; ``warping``: one ``WarpingCounts`` per threshold of ``warping_thresholds``
    (summed over slices).
    """

    original_thresholds: np.ndarray
    thinned_thresholds: np.ndarray
    warping_thresholds: np.ndarray = field(default_factory=lambda: WARPING_THRESHOLDS.copy())
    warping: list[WarpingCounts] = field(default_factory=list)
    rand: list[Counts] = field(default_factory=list)
    pixel: list[Counts] = field(default_factory=list)
    vrand: list[np.ndarray] = field(default_factory=list)  # per slice: (T, 3)
    vinfo: list[np.ndarray] = field(default_factory=list)  # per slice: (T, 3)


def isbi_curves(truth_mask: np.ndarray, proposal: np.ndarray, is_probability: bool = True,
                original_thresholds: Sequence[float] = ORIGINAL_THRESHOLDS,
                thinned_thresholds: Sequence[float] = THINNED_THRESHOLDS,
                warping_thresholds: Sequence[float] = WARPING_THRESHOLDS) -> IsbiCurves:
    """Statistics of both metric generations (and the warping error) for one image (H, W) or stack (D, H, W).

    ``truth_mask``: non-zero = cell interior. ``proposal``: a cell probability map in [0, 1] (cell =
    ``proposal > threshold``), or with ``is_probability=False`` a mask (non-zero = cell) scored as
    it is, the same at every threshold.
    """
    truth_mask, proposal = np.asarray(truth_mask), np.asarray(proposal)
    if truth_mask.shape != proposal.shape:
        raise InputError(f"truth and proposal shapes differ: {truth_mask.shape} vs {proposal.shape}")
    original = np.asarray(original_thresholds, dtype=float)
    thinned = np.asarray(thinned_thresholds, dtype=float)
    warping = np.asarray(warping_thresholds, dtype=float)
    if original.size == 0 or thinned.size == 0 or warping.size == 0:
        raise InputError("ISBI metrics need at least one threshold in each grid")
    curves = IsbiCurves(original, thinned, warping)
    rand = [Counts(0, 0, 0)] * original.size
    pixel = [Counts(0, 0, 0)] * original.size
    warped = [WarpingCounts(0, 0, 0, 0)] * warping.size
    for truth, prop in zip(_slices(truth_mask != 0), _slices(proposal), strict=True):
        truth_cells = _cells(truth)

        if is_probability:
            stats = [_original_stats(truth, truth_cells, prop > t) for t in original]
            thinned_rows = [_thinned_stats(truth_cells, prop > t) for t in thinned]
        else:  # one mask: computed once, repeated over the grids so that folders combine alike
            stats = [_original_stats(truth, truth_cells, prop != 0)] * original.size
            thinned_rows = [_thinned_stats(truth_cells, prop != 0)] * thinned.size
        warp_row = warping_curve(truth, prop, is_probability, warping)
        warped = [total + w for total, w in zip(warped, warp_row, strict=True)]
        rand = [total + r for total, (r, _) in zip(rand, stats, strict=True)]
        pixel = [total + p for total, (_, p) in zip(pixel, stats, strict=True)]
        curves.vrand.append(np.asarray([row[0] for row in thinned_rows]))
        curves.vinfo.append(np.asarray([row[1] for row in thinned_rows]))
    curves.rand, curves.pixel, curves.warping = rand, pixel, warped
    return curves


def isbi_scores(curves: Sequence[IsbiCurves]) -> dict[str, float]:
    """Both generations over images or slices, one threshold chosen for all (the challenge's way).

    Keys: ``rand_error_original``, ``pixel_error_original`` (1 - maximal F-score of the summed counts)
    with their ``*_threshold``, and ``rand_error_original_split`` / ``_merge`` (1 - recall / 1 - precision
    of the pair counts at that threshold: which kind of error the original Rand error is made of);
    ``rand_error_thinned`` and ``info_error_thinned`` (1 - maximal mean
    per-slice score) with ``*_split``, ``*_merge`` (1 - the split / merge score at that threshold)
    and ``*_threshold``; ``warping_error`` (minimum over its grid of split + merge pixels per pixel,
    summed over slices) with ``warping_error_threshold`` and its ``warping_error_splits`` /
    ``warping_error_merges`` pixel counts. Ties keep the lowest threshold.
    """
    if not curves:
        raise InputError("no images to score")
    first = curves[0]
    for other in curves[1:]:
        if not (np.array_equal(other.original_thresholds, first.original_thresholds)
                and np.array_equal(other.thinned_thresholds, first.thinned_thresholds)
                and np.array_equal(other.warping_thresholds, first.warping_thresholds)):
            raise InputError("ISBI curves of one folder must share their threshold grids")
    out: dict[str, float] = {}
    for name, attr in (("rand_error_original", "rand"), ("pixel_error_original", "pixel")):
        totals = [sum((getattr(c, attr)[k] for c in curves), Counts(0, 0, 0))
                  for k in range(first.original_thresholds.size)]
        fscores = np.array([t.fscore for t in totals])
        best = int(np.argmax(fscores))
        out[name] = float(1 - fscores[best])
        if attr == "rand":  # recall is the split score, precision the merge score (module docstring)
            out[f"{name}_split"] = float(1 - totals[best].recall)
            out[f"{name}_merge"] = float(1 - totals[best].precision)
        out[f"{name}_threshold"] = float(first.original_thresholds[best])
    for name, attr in (("rand_error_thinned", "vrand"), ("info_error_thinned", "vinfo")):
        per_slice = np.stack([s for c in curves for s in getattr(c, attr)])  # (slices, T, 3)
        mean = per_slice.mean(axis=0)
        best = int(np.argmax(mean[:, 0]))
        out[name] = float(1 - mean[best, 0])
        out[f"{name}_split"] = float(1 - mean[best, 1])
        out[f"{name}_merge"] = float(1 - mean[best, 2])
        out[f"{name}_threshold"] = float(first.thinned_thresholds[best])
    error, threshold, counts = warping_error([c.warping for c in curves], first.warping_thresholds)
    out["warping_error"], out["warping_error_threshold"] = error, threshold
    out["warping_error_splits"], out["warping_error_merges"] = counts.splits, counts.merges  # pixels
    return out
