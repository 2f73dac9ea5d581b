"""Binary segmentation metrics in two steps: pixel counts (tp, fp, fn, tn), then scores from counts.

Counting first means scores can be pooled over many images or batches by adding counts (a pooled
Dice over a validation set is not the mean of per-image Dice). Foreground is every non-zero pixel,
for arrays of any shape (2D images, 3D volumes, batches).

Convention for 0/0: a score whose denominator is empty is 1.0 when truth and prediction are both
empty (nothing to find, nothing found) and 0.0 otherwise. So Dice = IoU = 1.0 for an empty truth
and an empty prediction; precision with no predicted pixels is 1.0 if the truth is empty too,
else 0.0; recall with no truth pixels is 1.0 if nothing is predicted, else 0.0.

Example::

    >>> counts = binary_counts(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]))
    >>> counts, dice(counts)        # 2*1 / (2*1 + 1 + 1) = 0.5
    (BinaryCounts(tp=1, fp=1, fn=1, tn=1), 0.5)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from unetkit.errors import InputError


@dataclass(frozen=True)
class BinaryCounts:
    """Pixel counts of a binary comparison; add two to pool them."""

    tp: int  # truth and prediction foreground
    fp: int  # predicted foreground on truth background
    fn: int  # truth foreground missed by the prediction
    tn: int  # background in both

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    def __add__(self, other: BinaryCounts) -> BinaryCounts:
        return BinaryCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)


def _torch_tensor_type() -> Any:
    """``torch.Tensor`` if torch is already imported, else None (so numpy users never import torch)."""
    torch = sys.modules.get("torch")
    return torch.Tensor if torch is not None else None


def _is_tensor(value: Any) -> bool:
    tensor = _torch_tensor_type()
    return tensor is not None and isinstance(value, tensor)


def _check_shapes(truth_shape: tuple[int, ...], pred_shape: tuple[int, ...]) -> None:
    if tuple(truth_shape) != tuple(pred_shape):
        raise InputError(
            f"truth and prediction shapes differ: {tuple(truth_shape)} vs {tuple(pred_shape)}; "
            "predict on the full image (or crop the truth the same way) before scoring"
        )


def _count_vector(truth: Any, pred: Any, ignore_label: int | None) -> Any:
    """Counts [tp, fp, fn, tn] as a length-4 int64 array, or a torch tensor on the inputs' device.

    Counting stays in torch when both inputs are tensors, so training validation does not copy
    whole batches to the CPU; one small tensor is synchronised only when scores are computed.
    """
    if _is_tensor(truth) and _is_tensor(pred):
        import torch

        _check_shapes(tuple(truth.shape), tuple(pred.shape))
        pred = pred.to(truth.device)
        t, p = truth != 0, pred != 0
        valid = truth != ignore_label if ignore_label is not None else None
        if valid is not None:
            t, p = t & valid, p & valid
            n = valid.sum()
        else:
            n = torch.tensor(truth.numel(), device=truth.device)
        tp = (t & p).sum()
        fp = p.sum() - tp
        fn = t.sum() - tp
        return torch.stack([tp, fp, fn, n - tp - fp - fn]).to(torch.int64)
    truth = truth.detach().cpu().numpy() if _is_tensor(truth) else np.asarray(truth)
    pred = pred.detach().cpu().numpy() if _is_tensor(pred) else np.asarray(pred)
    _check_shapes(truth.shape, pred.shape)
    t, p = truth != 0, pred != 0
    if ignore_label is not None:
        valid = truth != ignore_label
        t, p = t & valid, p & valid
        n = int(np.count_nonzero(valid))
    else:
        n = truth.size
    tp = int(np.count_nonzero(t & p))
    fp = int(np.count_nonzero(p)) - tp
    fn = int(np.count_nonzero(t)) - tp
    return np.array([tp, fp, fn, n - tp - fp - fn], dtype=np.int64)


def _to_counts(vector: Any) -> BinaryCounts:
    if _is_tensor(vector):
        vector = vector.detach().cpu().numpy()
    tp, fp, fn, tn = (int(v) for v in vector)
    return BinaryCounts(tp=tp, fp=fp, fn=fn, tn=tn)


def binary_counts(truth: Any, pred: Any, ignore_label: int | None = None) -> BinaryCounts:
    """Pixel counts of ``pred`` against ``truth``; foreground = non-zero.

    Args:
        truth: ground truth of any shape, e.g. (H, W) or (D, H, W); numpy array or torch tensor.
        pred: binary prediction of the same shape (threshold probabilities before calling).
        ignore_label: truth value whose pixels are left out of every count (None = keep all).
    """
    return _to_counts(_count_vector(truth, pred, ignore_label))


def _ratio(numerator: int, denominator: int, both_empty: bool) -> float:
    if denominator == 0:
        return 1.0 if both_empty else 0.0
    return numerator / denominator


def _both_empty(c: BinaryCounts) -> bool:
    return c.tp + c.fp + c.fn == 0


def dice(counts: BinaryCounts) -> float:
    """Dice = 2TP / (2TP + FP + FN); 1.0 when truth and prediction are both empty."""
    c = counts
    return _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn, _both_empty(c))


def iou(counts: BinaryCounts) -> float:
    """IoU (Jaccard) = TP / (TP + FP + FN); 1.0 when truth and prediction are both empty."""
    c = counts
    return _ratio(c.tp, c.tp + c.fp + c.fn, _both_empty(c))


def precision(counts: BinaryCounts) -> float:
    """TP / (TP + FP); with no predicted pixels: 1.0 if the truth is empty too, else 0.0."""
    c = counts
    return _ratio(c.tp, c.tp + c.fp, _both_empty(c))


def recall(counts: BinaryCounts) -> float:
    """TP / (TP + FN); with no truth pixels: 1.0 if nothing is predicted either, else 0.0."""
    c = counts
    return _ratio(c.tp, c.tp + c.fn, _both_empty(c))


def pixel_error(counts: BinaryCounts) -> float:
    """Share of wrongly classified pixels, (FP + FN) / total (the ISBI 2012 pixel error); 0.0 if empty."""
    c = counts
    return (c.fp + c.fn) / c.total if c.total else 0.0


def binary_scores(counts: BinaryCounts) -> dict[str, float]:
    """All scores of ``counts`` by name: dice, iou, precision, recall, pixel_error."""
    return {
        "dice": dice(counts),
        "iou": iou(counts),
        "precision": precision(counts),
        "recall": recall(counts),
        "pixel_error": pixel_error(counts),
    }


class BinaryMetric:
    """Streaming binary metric: pools counts over ``update`` calls; ``compute`` scores the pool.

    Accepts numpy arrays or torch tensors on any device (counted in torch without copying the
    batch to the CPU). Predictions must already be binary (non-zero = foreground), e.g.
    ``logits.argmax(1)`` or ``prob > 0.5``.

    Example::

        metric = BinaryMetric()
        for truth, pred in batches:
            metric.update(truth, pred)
        metric.compute()   # {'dice': ..., 'iou': ..., 'precision': ..., 'recall': ..., 'pixel_error': ...}
    """

    def __init__(self, ignore_label: int | None = None) -> None:
        self.ignore_label = ignore_label
        self._total: Any = None  # length-4 int64 array or tensor [tp, fp, fn, tn]

    def reset(self) -> None:
        self._total = None

    def update(self, truth: Any, pred: Any) -> None:
        counts = _count_vector(truth, pred, self.ignore_label)
        if self._total is None:
            self._total = counts
        elif _is_tensor(self._total) and _is_tensor(counts) and self._total.device == counts.device:
            self._total = self._total + counts
        else:
            self._total = _as_numpy(self._total) + _as_numpy(counts)

    @property
    def counts(self) -> BinaryCounts:
        """The pooled counts so far (all zero before the first update)."""
        return BinaryCounts(0, 0, 0, 0) if self._total is None else _to_counts(self._total)

    def compute(self) -> dict[str, float]:
        """Scores of the pooled counts (see :func:`binary_scores`)."""
        return binary_scores(self.counts)


def _as_numpy(vector: Any) -> np.ndarray:
    return vector.detach().cpu().numpy() if _is_tensor(vector) else np.asarray(vector)
