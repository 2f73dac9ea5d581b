"""MAE, RMSE, PSNR and SSIM against hand-computed values and skimage."""

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from unetkit.errors import InputError
from unetkit.metrics.regression import regression_scores


def test_mae_rmse_psnr_by_hand():
    truth = np.array([[0.0, 1.0], [2.0, 3.0]])
    pred = np.array([[0.0, 1.0], [2.0, 5.0]])
    scores = regression_scores(truth, pred)
    # errors 0, 0, 0, 2: MAE 2/4 = 0.5, MSE 4/4 = 1, RMSE 1; range 3 - 0 = 3: PSNR 10 log10(9 / 1) = 9.542
    assert scores["mae"] == pytest.approx(0.5)
    assert scores["rmse"] == pytest.approx(1.0)
    assert scores["psnr"] == pytest.approx(10 * math.log10(9))
    assert regression_scores(truth, pred, data_range=1.0)["psnr"] == pytest.approx(0.0)  # 10 log10(1/1)


def test_identical_images():
    image = np.random.default_rng(0).random((16, 16))
    scores = regression_scores(image, image)
    assert scores["mae"] == 0.0 and scores["psnr"] == math.inf and scores["ssim"] == pytest.approx(1.0)


def test_ssim_matches_skimage_in_2d_channels_and_3d():
    rng = np.random.default_rng(1)
    truth = rng.random((16, 16))
    pred = truth + 0.1 * rng.random((16, 16))
    assert regression_scores(truth, pred)["ssim"] == pytest.approx(
        structural_similarity(truth, pred, data_range=truth.max() - truth.min()))
    truth_c, pred_c = rng.random((2, 16, 16)), rng.random((2, 16, 16))  # channels-first 2D
    assert regression_scores(truth_c, pred_c)["ssim"] == pytest.approx(structural_similarity(
        truth_c, pred_c, data_range=truth_c.max() - truth_c.min(), channel_axis=0))
    truth_v, pred_v = rng.random((8, 16, 16)), rng.random((8, 16, 16))  # D = 8 > 4: a volume
    assert regression_scores(truth_v, pred_v)["ssim"] == pytest.approx(structural_similarity(
        truth_v, pred_v, data_range=truth_v.max() - truth_v.min()))
    volume_as_channels = regression_scores(truth_v, pred_v, spatial_dims=2)["ssim"]
    assert volume_as_channels == pytest.approx(structural_similarity(
        truth_v, pred_v, data_range=truth_v.max() - truth_v.min(), channel_axis=0))


def test_small_images_and_constant_truth():
    truth, pred = np.zeros((5, 5)), np.full((5, 5), 0.5)
    scores = regression_scores(truth, pred)  # constant truth: data_range 1.0, MSE 0.25 -> PSNR 6.02
    assert scores["psnr"] == pytest.approx(10 * math.log10(1 / 0.25))
    assert math.isfinite(scores["ssim"])  # 5 px window
    assert math.isnan(regression_scores(np.zeros((2, 2)), np.ones((2, 2)))["ssim"])  # no window fits


def test_bad_input():
    with pytest.raises(InputError, match="shapes differ"):
        regression_scores(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(InputError, match="data_range"):
        regression_scores(np.zeros((4, 4)), np.zeros((4, 4)), data_range=0)
    with pytest.raises(InputError, match="spatial_dims"):
        regression_scores(np.zeros((4, 4)), np.zeros((4, 4)), spatial_dims=3)
