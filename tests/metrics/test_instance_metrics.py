"""DSB instance matching against hand-computed cases and a dense brute-force reference."""

import numpy as np
import pytest

from unetkit.errors import InputError
from unetkit.metrics.instances import (
    DSB_THRESHOLDS,
    instance_scores,
    instance_scores_dataset,
    pair_overlaps,
    relabel_consecutive,
)


def squares(shape, corners, size=10, ids=None):
    labels = np.zeros(shape, dtype=np.int32)
    for k, (r, c) in enumerate(corners):
        labels[r : r + size, c : c + size] = ids[k] if ids else k + 1
    return labels


def test_thresholds_are_the_dsb_ones():
    assert len(DSB_THRESHOLDS) == 10
    assert DSB_THRESHOLDS[0] == pytest.approx(0.5) and DSB_THRESHOLDS[-1] == pytest.approx(0.95)


def test_identical_labels_score_one_whatever_the_ids():
    truth = squares((40, 40), [(0, 0), (20, 20)], ids=[3, 17])
    pred = squares((40, 40), [(0, 0), (20, 20)], ids=[900, 5])
    result = instance_scores(truth, pred)
    assert result.dsb_score == 1.0 and result.ap50 == 1.0
    assert result.tp.tolist() == [2] * 10 and result.n_true == 2 and result.n_pred == 2


def test_shifted_square_hits_below_its_iou():
    truth = squares((20, 20), [(2, 2)])
    pred = squares((20, 20), [(2, 4)])  # shifted 2 px: overlap 10x8 = 80, union 120, IoU 0.667
    result = instance_scores(truth, pred)
    # hit at 0.50, 0.55, 0.60, 0.65; miss (TP 0, FP 1, FN 1) at 0.70 .. 0.95 -> DSB score 4/10
    assert result.tp.tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert result.score.tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert result.dsb_score == pytest.approx(0.4)
    assert result.fp.tolist()[-1] == 1 and result.fn.tolist()[-1] == 1


def test_iou_exactly_at_threshold_is_a_miss():
    truth = squares((30, 30), [(0, 0)])
    pred = squares((30, 30), [(0, 0)], size=20)  # 100 / 400 = 0.25
    truth2 = np.zeros((30, 30), np.int32)
    truth2[:10, :20] = 1
    pred2 = np.zeros((30, 30), np.int32)
    pred2[:10, :10] = 1  # IoU 100 / 200 = 0.5: not > 0.5
    assert instance_scores(truth2, pred2).ap50 == 0.0
    assert instance_scores(truth, pred, thresholds=[0.2, 0.25]).tp.tolist() == [1, 0]


def test_extra_prediction():
    truth = squares((40, 40), [(0, 0), (20, 20)])
    pred = squares((40, 40), [(0, 0), (20, 20), (0, 25)])
    result = instance_scores(truth, pred)
    # TP 2, FP 1, FN 0 at every threshold: score 2/3, precision 2/3, recall 1, F1 4/5
    assert result.score == pytest.approx([2 / 3] * 10)
    assert (result.precision50, result.recall50, result.f1_50) == pytest.approx((2 / 3, 1.0, 0.8))


def test_missed_object():
    truth = squares((40, 40), [(0, 0), (20, 20), (0, 25)])
    pred = squares((40, 40), [(0, 0), (20, 20)])
    result = instance_scores(truth, pred)
    # TP 2, FP 0, FN 1: score 2/3, precision 1, recall 2/3, F1 4/5
    assert result.dsb_score == pytest.approx(2 / 3)
    assert (result.precision50, result.recall50, result.f1_50) == pytest.approx((1.0, 2 / 3, 0.8))


def test_merged_objects():
    truth = squares((20, 30), [(0, 0), (0, 10)])  # two touching 10x10 squares
    pred = np.zeros_like(truth)
    pred[:10, :20] = 1  # one 10x20 object: IoU 100/200 = 0.5 with each truth square
    result = instance_scores(truth, pred)
    assert result.tp.tolist() == [0] * 10 and result.dsb_score == 0.0  # TP 0, FP 1, FN 2
    # Below 0.5 both pairs are candidates but the prediction matches one truth only: TP 1, FP 0, FN 1
    low = instance_scores(truth, pred, thresholds=[0.3])
    assert (low.tp[0], low.fp[0], low.fn[0]) == (1, 0, 1) and low.score[0] == pytest.approx(0.5)


def test_empty_images():
    empty = np.zeros((8, 8), np.int32)
    one = empty.copy()
    one[2:4, 2:4] = 1
    assert instance_scores(empty, empty).dsb_score == 1.0
    assert instance_scores(empty, empty).precision50 == 1.0
    assert instance_scores(one, empty).dsb_score == 0.0
    assert instance_scores(empty, one).dsb_score == 0.0 and instance_scores(empty, one).n_pred == 1


def test_volume_cubes():
    truth = np.zeros((8, 8, 8), np.int32)
    truth[1:5, 1:5, 1:5] = 1
    pred = np.zeros_like(truth)
    pred[2:6, 1:5, 1:5] = 4  # shifted 1 in z: overlap 3*16 = 48, union 80, IoU 0.6
    result = instance_scores(truth, pred)
    assert result.tp.tolist() == [1, 1] + [0] * 8 and result.dsb_score == pytest.approx(0.2)


def test_matches_dense_reference():
    rng = np.random.default_rng(3)
    truth = np.zeros((60, 60), np.int32)
    pred = np.zeros((60, 60), np.int32)
    for k in range(1, 41):  # later objects overwrite earlier ones: irregular shapes
        r, c = rng.integers(0, 52, size=2)
        truth[r : r + rng.integers(3, 9), c : c + rng.integers(3, 9)] = k
        r, c = np.clip([r, c] + rng.integers(-2, 3, size=2), 0, 52)
        pred[r : r + rng.integers(3, 9), c : c + rng.integers(3, 9)] = 100 + k
    t_ids, p_ids = np.unique(truth)[1:], np.unique(pred)[1:]
    dense = np.array([[np.sum((truth == a) & (pred == b)) / np.sum((truth == a) | (pred == b))
                       for b in p_ids] for a in t_ids])
    result = instance_scores(truth, pred)
    assert result.tp.tolist() == [int(np.sum(dense > t)) for t in DSB_THRESHOLDS]
    assert result.n_true == len(t_ids) and result.n_pred == len(p_ids)


def test_relabel_consecutive():
    flat, n = relabel_consecutive(np.array([0, 5, 5, 2]))
    assert flat.tolist() == [0, 2, 2, 1] and n == 2
    flat, n = relabel_consecutive(np.array([10**12, 7, 10**12]))  # huge ids, no background
    assert flat.tolist() == [2, 1, 2] and n == 2
    with pytest.raises(InputError, match="negative"):
        relabel_consecutive(np.array([0, -1]))


def test_bad_input():
    with pytest.raises(InputError, match="shape"):
        instance_scores(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(InputError, match="thresholds"):
        instance_scores(np.zeros((4, 4)), np.zeros((4, 4)), thresholds=[1.0])


def test_dataset_means_over_images():
    a = instance_scores(squares((20, 20), [(2, 2)]), squares((20, 20), [(2, 4)]))  # dsb 0.4, ap50 1
    b = instance_scores(squares((20, 20), [(2, 2)]), np.zeros((20, 20), np.int32))  # dsb 0, ap50 0
    summary = instance_scores_dataset([a, b])
    assert summary["images"] == 2
    assert summary["dsb_score"] == pytest.approx(0.2) and summary["ap50"] == pytest.approx(0.5)
    assert summary["recall50"] == pytest.approx(0.5) and summary["f1_50"] == pytest.approx(0.5)
    with pytest.raises(InputError):
        instance_scores_dataset([])


def test_pair_overlaps_lists_only_touching_pairs_against_a_dense_count():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 6, size=(30, 40))
    pred = rng.integers(0, 9, size=(30, 40)) * 100  # sparse ids: 0, 100, ..., 800
    pred[:, :10] = 0  # some pairs never touch
    got = pair_overlaps(truth, pred)
    dense = np.zeros((6, 9), dtype=np.int64)
    np.add.at(dense, (truth.ravel(), pred.ravel() // 100), 1)
    assert got.n_true == 5 and got.n_pred == 8
    np.testing.assert_array_equal(got.truth_size, dense[1:].sum(1))
    np.testing.assert_array_equal(got.pred_size, dense[:, 1:].sum(0))
    expected = {(i - 1, j - 1): dense[i, j] for i in range(1, 6) for j in range(1, 9) if dense[i, j]}
    pairs = zip(got.truth_index.tolist(), got.pred_index.tolist(), strict=True)
    assert dict(zip(pairs, got.intersection.tolist(), strict=True)) == expected
    union = got.truth_size[got.truth_index] + got.pred_size[got.pred_index] - got.intersection
    np.testing.assert_array_equal(got.iou, got.intersection / union)
