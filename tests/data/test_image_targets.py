"""Regression targets: reading, pairing and the stored normalisation that prediction undoes."""

import numpy as np
import pytest
import tifffile

from unetkit.config import DataConfig
from unetkit.data.image_targets import TargetNorm, find_regression_samples, fit_target_norm, read_target
from unetkit.data.io import write_png
from unetkit.errors import InputError


def test_percentile_norm_maps_the_pooled_range_to_zero_one_and_back():
    # Two images of 0..99 and 100..199: pooled 0..199, 0th / 100th percentiles -> offset 0, scale 199.
    targets = [np.arange(100, dtype=np.float32).reshape(1, 10, 10),
               np.arange(100, 200, dtype=np.float32).reshape(1, 10, 10)]
    norm = fit_target_norm(targets, "percentile", low=0.0, high=100.0)
    assert norm.offset == (0.0,) and norm.scale == (199.0,)
    normalised = norm.normalize(targets[1])
    assert normalised.min() == pytest.approx(100 / 199) and normalised.max() == pytest.approx(1.0)
    assert np.allclose(norm.denormalize(normalised), targets[1])


def test_norm_is_per_channel_and_constant_channels_keep_scale_one():
    target = np.stack([np.full((4, 4), 7.0), np.linspace(0, 10, 16).reshape(4, 4)]).astype(np.float32)
    norm = fit_target_norm([target], low=0.0, high=100.0)
    assert norm.offset == (7.0, 0.0) and norm.scale == (1.0, 10.0)
    assert fit_target_norm([target], "none") == TargetNorm((0.0, 0.0), (1.0, 1.0))
    with pytest.raises(InputError, match="channel"):
        norm.normalize(target[:1])


def test_norm_from_config_needs_a_trained_regression_config():
    assert TargetNorm.from_config(DataConfig(target_offset=[1.0], target_scale=[2.0])).scale == (2.0,)
    with pytest.raises(InputError, match="regression run"):
        TargetNorm.from_config(DataConfig())


def test_targets_are_read_as_float_and_paired_with_images(tmp_path):
    write_png(tmp_path / "images" / "a.png", np.zeros((4, 5), dtype=np.uint8))
    (tmp_path / "targets").mkdir()
    tifffile.imwrite(tmp_path / "targets" / "a.tif", np.full((4, 5), 2.5, dtype=np.float32))
    [sample] = find_regression_samples(tmp_path)
    target = read_target(sample.label_paths[0], (4, 5))
    assert target.shape == (1, 4, 5) and target.dtype == np.float32 and target.max() == 2.5
    with pytest.raises(InputError, match="target of size"):
        read_target(sample.label_paths[0], (4, 4))
    tifffile.imwrite(tmp_path / "targets" / "a.tif", np.full((4, 5), np.nan, dtype=np.float32))
    with pytest.raises(InputError, match="NaN"):
        read_target(sample.label_paths[0])
    with pytest.raises(InputError, match="no 'truth/' folder"):
        find_regression_samples(tmp_path, target_dir="truth")
