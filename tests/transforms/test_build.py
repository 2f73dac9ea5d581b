"""build_transforms: the config decides which augmentations run, in the documented order."""

import numpy as np
import pytest

from unetkit.config import AugmentConfig
from unetkit.errors import InputError
from unetkit.transforms import (
    RandomAffine,
    RandomElastic,
    RandomFlip,
    RandomIntensity,
    RandomRot90,
    build_transforms,
)


def names(pipeline):
    return [type(t).__name__ for t in pipeline.transforms]


def test_defaults_are_flips_rot90_intensity():
    assert names(build_transforms(AugmentConfig(), 2)) == ["RandomFlip", "RandomRot90", "RandomIntensity"]


def test_everything_on_spatial_first_intensity_last_with_config_values():
    config = AugmentConfig(elastic=True, elastic_grid=4, elastic_sigma=6.0, rotation_degrees=12.0, shift=0.05)
    pipeline = build_transforms(config, 3)
    types = [RandomElastic, RandomAffine, RandomFlip, RandomRot90, RandomIntensity]
    assert [type(t) for t in pipeline.transforms] == types
    elastic, affine = pipeline.transforms[:2]
    assert (elastic.grid, elastic.sigma, elastic.spatial_dims) == (4, 6.0, 3)
    assert (affine.max_degrees, affine.max_shift_fraction) == (12.0, 0.05)


def test_shift_alone_enables_affine_and_everything_off_is_identity():
    assert names(build_transforms(AugmentConfig(flips=False, rot90=False, intensity=False, shift=0.1), 2)) == [
        "RandomAffine"
    ]
    pipeline = build_transforms(AugmentConfig(flips=False, rot90=False, intensity=False), 2)
    sample = {"image": np.random.default_rng(0).random((1, 8, 8), dtype=np.float32)}
    np.testing.assert_array_equal(pipeline(sample, np.random.default_rng(0))["image"], sample["image"])


def test_zoom_alone_builds_an_affine_step():
    pipeline = build_transforms(AugmentConfig(flips=False, rot90=False, intensity=False, zoom=0.25), 2)
    (step,) = pipeline.transforms
    assert isinstance(step, RandomAffine) and step.max_zoom == 0.25
    assert step.max_degrees == 0 and step.max_shift_fraction == 0


def test_pipeline_runs_on_a_paired_2d_sample():
    labels = np.zeros((48, 48), np.int32)
    labels[10:30, 12:40] = 1
    sample = {"image": labels[None].astype(np.float32), "target": labels, "weights": np.ones((48, 48), np.float32)}
    config = AugmentConfig(elastic=True, rotation_degrees=15.0, shift=0.1)
    out = build_transforms(config, 2)(sample, np.random.default_rng(0))
    assert out["image"].shape == (1, 48, 48) and out["target"].shape == (48, 48)
    assert set(np.unique(out["target"])) <= {0, 1}
    np.testing.assert_allclose(out["weights"], 1.0, atol=1e-5)  # a constant map stays constant


@pytest.mark.parametrize(
    "config, match",
    [
        (AugmentConfig(shift=1.0), "shift"),
        (AugmentConfig(rotation_degrees=-5.0), "rotation_degrees"),
        (AugmentConfig(zoom=1.5), "augment.zoom"),
        (AugmentConfig(elastic=True, elastic_grid=1), "grid"),
    ],
)
def test_bad_config_values_raise_input_error(config, match):
    with pytest.raises(InputError, match=match):
        build_transforms(config, 2)
    with pytest.raises(InputError, match="spatial_dims"):
        build_transforms(AugmentConfig(), 1)
