"""Confusion matrix and per-class scores against hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from unetkit.errors import InputError
from unetkit.metrics.multiclass import (
    MulticlassMetric,
    confusion_matrix,
    mean_foreground,
    per_class_dice,
    per_class_iou,
    pixel_accuracy,
)

TRUTH = np.array([[0, 1, 1], [2, 2, 255]])
PRED = np.array([[0, 1, 2], [2, 1, 0]])
# pixels (truth -> pred), the 255 pixel ignored: 0->0, 1->1, 1->2, 2->2, 2->1
CM = [[1, 0, 0], [0, 1, 1], [0, 1, 1]]


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(TRUTH, PRED, num_classes=3)
    assert cm.dtype == np.int64 and cm.tolist() == CM
    # no ignore label: the 255 pixel is out of range
    with pytest.raises(InputError, match="255"):
        confusion_matrix(TRUTH, PRED, num_classes=3, ignore_label=None)


def test_per_class_scores_by_hand():
    cm = np.array(CM)
    # class 1: TP 1, FP 1 (column 1 sum 2 - 1), FN 1 (row 1 sum 2 - 1): Dice 2/4, IoU 1/3; class 2 alike
    assert per_class_dice(cm) == pytest.approx([1.0, 0.5, 0.5])
    assert per_class_iou(cm) == pytest.approx([1.0, 1 / 3, 1 / 3])
    assert mean_foreground(per_class_dice(cm)) == pytest.approx(0.5)
    assert pixel_accuracy(cm) == pytest.approx(3 / 5)


def test_absent_class_is_nan_and_left_out_of_means():
    cm = confusion_matrix(TRUTH, PRED, num_classes=4)  # class 3 in neither image
    dice = per_class_dice(cm)
    assert math.isnan(dice[3]) and math.isnan(per_class_iou(cm)[3])
    assert mean_foreground(dice) == pytest.approx(0.5)  # mean of classes 1 and 2 only
    assert math.isnan(mean_foreground([1.0, float("nan")]))


def test_predicted_class_out_of_range_is_input_error():
    with pytest.raises(InputError, match=r"prediction has class ids \[5\]"):
        confusion_matrix(np.zeros(3), np.array([0, 5, 1]), num_classes=3)


def test_streaming_metric_pools_numpy_and_torch():
    metric = MulticlassMetric(num_classes=3)
    metric.update(TRUTH, PRED)
    metric.update(torch.from_numpy(TRUTH), torch.from_numpy(PRED))
    assert metric.confusion.tolist() == (2 * np.array(CM)).tolist()
    result = metric.compute()
    assert result["per_class_dice"] == pytest.approx([1.0, 0.5, 0.5])
    assert result["mean_dice"] == pytest.approx(0.5)
    assert result["mean_iou"] == pytest.approx(1 / 3)
    metric.reset()
    assert metric.confusion.sum() == 0


def test_torch_confusion_matches_numpy():
    rng = np.random.default_rng(0)
    truth, pred = rng.integers(0, 4, size=(2, 16, 16)), rng.integers(0, 4, size=(2, 16, 16))
    metric = MulticlassMetric(num_classes=4)
    metric.update(torch.from_numpy(truth), torch.from_numpy(pred))
    assert np.array_equal(metric.confusion, confusion_matrix(truth, pred, 4))
    with pytest.raises(InputError):
        metric.update(torch.tensor([0, 1]), torch.tensor([0, 7]))
