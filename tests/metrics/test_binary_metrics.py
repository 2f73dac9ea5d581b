"""Binary counts and scores against hand-computed cases."""

import numpy as np
import pytest
import torch

from unetkit.errors import InputError
from unetkit.metrics.binary import (
    BinaryCounts,
    BinaryMetric,
    binary_counts,
    binary_scores,
    dice,
    iou,
    pixel_error,
    precision,
    recall,
)

TRUTH = np.array([[1, 1, 0, 0], [1, 1, 0, 0]])
PRED = np.array([[1, 0, 1, 0], [1, 0, 0, 0]])


def test_counts_and_scores_by_hand():
    # tp: (0,0), (1,0) = 2; fp: (0,2) = 1; fn: (0,1), (1,1) = 2; tn: 8 - 5 = 3
    counts = binary_counts(TRUTH, PRED)
    assert counts == BinaryCounts(tp=2, fp=1, fn=2, tn=3)
    assert dice(counts) == pytest.approx(4 / 7)  # 2*2 / (2*2 + 1 + 2)
    assert iou(counts) == pytest.approx(2 / 5)  # 2 / (2 + 1 + 2)
    assert precision(counts) == pytest.approx(2 / 3)  # 2 / (2 + 1)
    assert recall(counts) == pytest.approx(2 / 4)  # 2 / (2 + 2)
    assert pixel_error(counts) == pytest.approx(3 / 8)  # (1 + 2) / 8


def test_foreground_is_any_nonzero_value():
    assert binary_counts(TRUTH * 255, PRED * 7) == binary_counts(TRUTH, PRED)


def test_empty_truth_and_prediction_score_one():
    counts = binary_counts(np.zeros((3, 3)), np.zeros((3, 3)))
    assert counts == BinaryCounts(0, 0, 0, 9)
    assert binary_scores(counts) == {"dice": 1.0, "iou": 1.0, "precision": 1.0, "recall": 1.0,
                                     "pixel_error": 0.0}


def test_one_side_empty_scores_zero():
    truth = np.zeros((2, 2))
    pred = np.array([[1, 0], [0, 0]])
    only_pred = binary_counts(truth, pred)  # tp 0, fp 1, fn 0, tn 3
    assert (dice(only_pred), iou(only_pred), precision(only_pred), recall(only_pred)) == (0.0, 0.0, 0.0, 0.0)
    assert pixel_error(only_pred) == 0.25
    only_truth = binary_counts(pred, truth)  # tp 0, fp 0, fn 1: nothing predicted but truth exists
    assert precision(only_truth) == 0.0 and recall(only_truth) == 0.0 and dice(only_truth) == 0.0


def test_volume_counts():
    truth = np.zeros((2, 3, 3), dtype=np.uint8)
    truth[0, :2, :2] = 1  # 4 voxels
    pred = np.zeros_like(truth)
    pred[:, :2, :2] = 1  # 8 voxels, 4 on truth
    assert binary_counts(truth, pred) == BinaryCounts(tp=4, fp=4, fn=0, tn=10)


def test_ignore_label_drops_pixels():
    # valid pixels: the first two; tp 1 (pixel 0), fp 1 (pixel 1)
    counts = binary_counts(np.array([1, 0, 255, 255]), np.array([1, 1, 1, 0]), ignore_label=255)
    assert counts == BinaryCounts(tp=1, fp=1, fn=0, tn=0)


def test_shape_mismatch_is_input_error():
    with pytest.raises(InputError, match=r"\(2, 4\) vs \(4, 2\)"):
        binary_counts(TRUTH, PRED.T)


def test_streaming_metric_pools_counts():
    metric = BinaryMetric()
    metric.update(TRUTH, PRED)  # tp 2, fp 1, fn 2, tn 3
    metric.update(np.ones((2, 2)), np.ones((2, 2)))  # tp 4
    assert metric.counts == BinaryCounts(tp=6, fp=1, fn=2, tn=3)
    # pooled Dice 12 / 15 = 0.8, not the mean of per-image Dice (4/7 + 1) / 2
    assert metric.compute()["dice"] == pytest.approx(0.8)
    metric.reset()
    assert metric.counts == BinaryCounts(0, 0, 0, 0)


def test_torch_tensors_match_numpy():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, size=(2, 1, 8, 8))
    pred = rng.integers(0, 2, size=(2, 1, 8, 8))
    expected = binary_counts(truth, pred, ignore_label=None)
    assert binary_counts(torch.from_numpy(truth), torch.from_numpy(pred)) == expected
    metric = BinaryMetric()
    metric.update(torch.from_numpy(truth[:1]), torch.from_numpy(pred[:1]))
    metric.update(truth[1:], pred[1:])  # a numpy batch after a tensor batch still pools
    assert metric.counts == expected
    with_ignore = torch.tensor([1, 0, 255]), torch.tensor([1, 1, 1])
    assert binary_counts(*with_ignore, ignore_label=255) == BinaryCounts(tp=1, fp=1, fn=0, tn=0)
