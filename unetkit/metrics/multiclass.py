"""Multiclass segmentation metrics from a pooled confusion matrix (rows truth, columns prediction).

For class c with TP_c = cm[c, c], FP_c = column sum - TP_c, FN_c = row sum - TP_c:
Dice_c = 2 TP_c / (2 TP_c + FP_c + FN_c) and IoU_c = TP_c / (TP_c + FP_c + FN_c). A class absent
from both truth and prediction has 0/0: its score is NaN (not 1.0, which would inflate the mean with
classes that were never there, nor 0.0, which would punish a correct "absent"), and NaN classes are
left out of means. Class 0 is background; ``mean_foreground`` averages classes 1..K-1.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from unetkit.errors import InputError
from unetkit.metrics.binary import _is_tensor


def _check_values(values: np.ndarray, num_classes: int, what: str) -> None:
    bad = (values < 0) | (values >= num_classes)
    if bad.any():
        found = np.unique(values[bad])[:10].tolist()
        raise InputError(
            f"{what} has class ids {found} outside 0..{num_classes - 1}; "
            f"set the number of classes (got {num_classes}) or mark such pixels with the ignore label"
        )


def confusion_matrix(
    truth: Any, pred: Any, num_classes: int, ignore_label: int | None = 255
) -> np.ndarray:
    """Pixel confusion matrix (K, K) int64: ``cm[i, j]`` = pixels of truth class i predicted as j.

    Args:
        truth: class ids of any shape, e.g. (H, W) or (D, H, W); numpy array or torch tensor.
        pred: predicted class ids of the same shape (take ``argmax`` of logits first).
        num_classes: K, including background class 0.
        ignore_label: truth value whose pixels are not counted (None = count all).
    """
    return _as_numpy(_confusion(truth, pred, num_classes, ignore_label))


def _confusion(truth: Any, pred: Any, num_classes: int, ignore_label: int | None) -> Any:
    """Confusion matrix as numpy, or as a torch tensor on the device when both inputs are tensors."""
    if num_classes < 1:
        raise InputError(f"num_classes must be at least 1, got {num_classes}")
    if tuple(truth.shape) != tuple(pred.shape):
        raise InputError(f"truth and prediction shapes differ: {tuple(truth.shape)} vs {tuple(pred.shape)}")
    if _is_tensor(truth) and _is_tensor(pred):
        import torch

        t, p = truth.reshape(-1).long(), pred.to(truth.device).reshape(-1).long()
        if ignore_label is not None:
            keep = t != ignore_label
            t, p = t[keep], p[keep]
        if t.numel() and (t.min() < 0 or t.max() >= num_classes or p.min() < 0 or p.max() >= num_classes):
            _check_values(t.cpu().numpy(), num_classes, "truth")
            _check_values(p.cpu().numpy(), num_classes, "prediction")
        counts = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
        return counts.reshape(num_classes, num_classes)
    t = _as_numpy(truth).reshape(-1).astype(np.int64)
    p = _as_numpy(pred).reshape(-1).astype(np.int64)
    if ignore_label is not None:
        keep = t != ignore_label
        t, p = t[keep], p[keep]
    _check_values(t, num_classes, "truth")
    _check_values(p, num_classes, "prediction")
    # One bin per (truth, pred) pair: key = truth * K + pred, e.g. K = 3, truth 2, pred 1 -> bin 7.
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def _as_numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if _is_tensor(value) else np.asarray(value)


def _tp_fp_fn(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise InputError(f"confusion matrix must be square (K, K), got shape {cm.shape}")
    tp = np.diag(cm)
    return tp, cm.sum(axis=0) - tp, cm.sum(axis=1) - tp


def per_class_dice(cm: np.ndarray) -> np.ndarray:
    """Dice per class (K,) float64; NaN for classes absent from truth and prediction."""
    tp, fp, fn = _tp_fp_fn(cm)
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / denominator, np.nan)


def per_class_iou(cm: np.ndarray) -> np.ndarray:
    """IoU per class (K,) float64; NaN for classes absent from truth and prediction."""
    tp, fp, fn = _tp_fp_fn(cm)
    denominator = tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, tp / denominator, np.nan)


def mean_foreground(values: np.ndarray) -> float:
    """Mean over classes 1..K-1 ignoring NaN; NaN when no foreground class has a score."""
    foreground = np.asarray(values, dtype=np.float64)[1:]
    if foreground.size == 0 or np.all(np.isnan(foreground)):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(foreground))


def pixel_accuracy(cm: np.ndarray) -> float:
    """Share of counted pixels whose class is right, trace / total; NaN when nothing was counted."""
    cm = np.asarray(cm)
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


class MulticlassMetric:
    """Streaming multiclass metric pooling one confusion matrix over ``update`` calls.

    Accepts numpy arrays or torch tensors on any device (counted with ``torch.bincount`` on the
    device; the (K, K) matrix is copied to the CPU only in ``compute``).

    Example::

        metric = MulticlassMetric(num_classes=3)
        metric.update(labels, logits.argmax(1))
        metric.compute()["mean_dice"]
    """

    def __init__(self, num_classes: int, ignore_label: int | None = 255) -> None:
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self._cm: Any = None

    def reset(self) -> None:
        self._cm = None

    def update(self, truth: Any, pred: Any) -> None:
        cm = _confusion(truth, pred, self.num_classes, self.ignore_label)
        if self._cm is None:
            self._cm = cm
        elif _is_tensor(self._cm) and _is_tensor(cm) and self._cm.device == cm.device:
            self._cm = self._cm + cm
        else:
            self._cm = _as_numpy(self._cm) + _as_numpy(cm)

    @property
    def confusion(self) -> np.ndarray:
        """The pooled (K, K) int64 confusion matrix so far."""
        if self._cm is None:
            return np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        return _as_numpy(self._cm).astype(np.int64)

    def compute(self) -> dict[str, Any]:
        """per_class_dice / per_class_iou (lists of K, NaN = absent class), mean_dice, mean_iou
        (foreground classes), pixel_accuracy and the confusion_matrix (ndarray)."""
        cm = self.confusion
        dice, iou = per_class_dice(cm), per_class_iou(cm)
        return {
            "per_class_dice": dice.tolist(),
            "per_class_iou": iou.tolist(),
            "mean_dice": mean_foreground(dice),
            "mean_iou": mean_foreground(iou),
            "pixel_accuracy": pixel_accuracy(cm),
            "confusion_matrix": cm,
        }
