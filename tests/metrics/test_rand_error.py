"""ISBI 2012 Rand error against hand-computed cases and skimage's adapted_rand_error."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.metrics import adapted_rand_error

from unetkit.errors import InputError
from unetkit.metrics.rand import rand_error, rand_error_sweep

# Formula used in the comments: with n_ij pixels of truth object i in predicted segment j (truth
# foreground only; each prediction background pixel there is a segment of its own), a_i, b_j the row/column sums,
# error = 1 - sum n_ij(n_ij-1) / (0.5 sum a_i(a_i-1) + 0.5 sum b_j(b_j-1)).


def test_identical_masks_have_no_error():
    mask = np.array([[1, 1, 0, 1], [1, 1, 0, 1]])
    assert rand_error(mask, mask) == 0.0


def test_two_cells_merged_into_one():
    truth = np.array([[1, 1, 0, 1, 1]])  # cells A = {0, 1}, B = {3, 4}; pixel 2 is ignored
    pred = np.ones_like(truth)  # one object over both
    # n = [2, 2] -> 2 + 2 = 4; a = [2, 2] -> 4; b = [4] -> 12; error = 1 - 4 / (2 + 6) = 0.5
    assert rand_error(truth, pred) == pytest.approx(0.5)


def test_one_cell_split_in_two():
    truth = np.ones((2, 4), dtype=np.uint8)  # one 8-pixel cell
    pred = np.array([[1, 1, 0, 1], [1, 1, 0, 1]])  # left 4 px, gap 2 px (pred background), right 2 px
    # n = [4, 2, 1, 1] -> 12 + 2 = 14; a = [8] -> 56; b = n -> 14; error = 1 - 14 / (28 + 7) = 0.6
    assert rand_error(truth, pred) == pytest.approx(0.6)


def test_a_missed_cell_is_an_error():
    """The missed cell was one predicted background segment, matching it exactly: error 0 for a miss."""
    truth = np.zeros((20, 20), np.uint8)
    truth[2:10, 2:10] = 1  # A: 64 px
    truth[12:18, 12:18] = 1  # B: 36 px, missed
    pred = np.zeros_like(truth)
    pred[2:10, 2:10] = 1
    # n = [64, 1 x 36] -> 4032; a = [64, 36] -> 4032 + 1260; b = [64, 1 x 36] -> 4032
    # error = 1 - 4032 / (0.5 * 5292 + 0.5 * 4032) = 1 - 4032 / 4662
    assert rand_error(truth, pred) == pytest.approx(1 - 4032 / 4662)


def test_prediction_on_truth_background_is_not_scored():
    truth = np.array([[1, 1, 0, 0, 0]])
    pred = np.array([[1, 1, 0, 1, 1]])
    assert rand_error(truth, pred) == 0.0


def test_components_are_four_connected():
    # The truth cells touch only diagonally at (0,1)-(1,2): two cells with 4-connectivity. The prediction
    # bridges them through (0,2), a truth background pixel: the merge case above, error 0.5
    # (with 8-connectivity the truth would be one cell and the error 0).
    truth = np.array([[1, 1, 0, 0], [0, 0, 1, 1]])
    pred = np.array([[1, 1, 1, 0], [0, 0, 1, 1]])
    assert rand_error(truth, pred) == pytest.approx(0.5)


def test_volume_uses_six_connectivity():
    truth = np.zeros((3, 1, 2), dtype=np.uint8)
    truth[0] = truth[2] = 1  # two 2-voxel cells in slices 0 and 2
    pred = np.ones_like(truth)  # merged through slice 1: the merge case, error 0.5
    assert rand_error(truth, pred) == pytest.approx(0.5)


def test_empty_truth_gives_zero():
    assert rand_error(np.zeros((4, 4)), np.ones((4, 4))) == 0.0


def test_matches_skimage_on_random_masks():
    rng = np.random.default_rng(1)
    cross = ndi.generate_binary_structure(2, 1)
    for _ in range(5):
        truth = ndi.binary_opening(rng.random((64, 64)) > 0.4)
        pred = ndi.binary_opening(rng.random((64, 64)) > 0.4)
        pred_cc = ndi.label(pred, cross)[0]
        lonely = (pred_cc == 0) & truth  # the challenge's convention: each such pixel a segment of its own
        pred_cc[lonely] = pred_cc.max() + 1 + np.arange(lonely.sum())
        expected = adapted_rand_error(ndi.label(truth, cross)[0], pred_cc, ignore_labels=(0,))[0]
        assert rand_error(truth, pred) == pytest.approx(expected, abs=1e-12)


def test_sweep_finds_the_separating_threshold():
    truth = np.array([[1, 1, 0, 1, 1]])
    prob = np.array([[0.9, 0.9, 0.5, 0.9, 0.9]])
    # t < 0.5: the gap is foreground, cells merge (error 0.5); t = 0.55 is the first threshold of
    # 0.05, 0.15, ..., 0.95 above 0.5 where they separate (error 0)
    assert rand_error_sweep(truth, prob) == (0.0, pytest.approx(0.55))
    assert rand_error_sweep(truth, prob, thresholds=[0.1, 0.3])[0] == pytest.approx(0.5)


def test_shape_mismatch_is_input_error():
    with pytest.raises(InputError, match="shapes differ"):
        rand_error(np.zeros((4, 4)), np.zeros((4, 5)))
