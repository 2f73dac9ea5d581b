"""Dice, IoU and the DSB instance score on volumes, with hand-computed answers."""

import numpy as np
import pytest

from unetkit.metrics.binary import binary_counts, dice, iou
from unetkit.metrics.instances import instance_scores


def test_dice_and_iou_of_two_shifted_cubes():
    truth = np.zeros((10, 10, 10), np.int32)
    pred = np.zeros_like(truth)
    truth[2:6, 2:6, 2:6] = 1  # 64 voxels
    pred[3:7, 2:6, 2:6] = 1  # shifted one slice in z: overlap 3 * 16 = 48
    counts = binary_counts(truth, pred)
    assert dice(counts) == pytest.approx(2 * 48 / 128)
    assert iou(counts) == pytest.approx(48 / 80)
    truth[0] = 255  # unannotated slice: left out
    pred[0] = 1
    assert dice(binary_counts(truth, pred, ignore_label=255)) == pytest.approx(0.75)


def test_3d_instance_score_by_hand():
    truth = np.zeros((8, 12, 12), np.int32)
    pred = np.zeros_like(truth)
    truth[1:5, 1:5, 1:5] = 1  # 64 voxels
    truth[1:5, 7:11, 7:11] = 2
    pred[1:5, 1:5, 1:5] = 7  # exact: IoU 1
    pred[2:6, 7:11, 7:11] = 3  # shifted one slice: IoU 48 / 80 = 0.6
    pred[6:8, 0:2, 0:2] = 9  # a false positive
    scores = instance_scores(truth, pred)
    # t = 0.5, 0.55: 2 TP, 1 FP -> 2/3; t = 0.6 .. 0.95 (IoU must exceed t): 1 TP, 1 FN, 2 FP -> 1/4
    expected = (2 * (2 / 3) + 8 * (1 / 4)) / 10
    assert scores.dsb_score == pytest.approx(expected)
    assert scores.n_true == 2 and scores.n_pred == 3
