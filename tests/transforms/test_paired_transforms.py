"""Paired augmentations: one geometry for image, target and weights; elastic deformation."""

import numpy as np
import pytest

from unetkit.config import AugmentConfig
from unetkit.transforms.build import build_transforms
from unetkit.transforms.elastic import RandomElastic, apply_displacement, elastic_displacement
from unetkit.transforms.intensity import RandomIntensity
from unetkit.transforms.spatial import RandomAffine, RandomFlip, RandomRot90


def sample(shape=(40, 40), seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, shape).astype(np.int64)
    return {"image": labels[None].astype(np.float32), "target": labels, "weights": labels.astype(np.float32)}


@pytest.mark.parametrize("transform", [RandomFlip(2), RandomRot90(2), RandomFlip(3), RandomRot90(3)])
def test_flips_and_rotations_move_everything_together(transform):
    shape = (6, 20, 20) if transform.spatial_dims == 3 else (20, 20)
    original = sample(shape)
    for seed in range(8):
        out = transform(original, np.random.default_rng(seed))
        np.testing.assert_array_equal(out["image"][0], out["target"])
        np.testing.assert_array_equal(out["weights"], out["target"])
    np.testing.assert_array_equal(original["image"][0], original["target"])  # inputs untouched


def test_elastic_identity_field_is_exact():
    s = sample()
    zero = np.zeros((2, 40, 40), np.float32)
    for key in ("image", "target", "weights"):
        np.testing.assert_array_equal(apply_displacement(s[key], zero, order=3 if key == "image" else 0), s[key])


def test_elastic_moves_labels_and_image_with_one_field_and_keeps_the_label_set():
    s = sample((64, 64))
    out = RandomElastic(2, grid=3, sigma=10, image_order=0)(s, np.random.default_rng(3))
    np.testing.assert_array_equal(out["image"][0], out["target"])  # nearest image == labels: same field
    assert set(np.unique(out["target"])) <= set(np.unique(s["target"]))
    assert not np.array_equal(out["target"], s["target"])
    smooth = RandomElastic(2)(s, np.random.default_rng(3))  # cubic image, nearest labels
    assert smooth["target"].dtype == np.int64 and set(np.unique(smooth["target"])) <= {0, 1, 2, 3}


def test_displacement_grid_statistics_and_3d():
    corners = [elastic_displacement((50, 50), np.random.default_rng(i), grid=3, sigma=10)[:, 0, 0]
               for i in range(300)]
    assert np.std(corners) == pytest.approx(10, rel=0.15)  # grid values ~ N(0, 10^2) px (paper)
    field = elastic_displacement((8, 16, 16), np.random.default_rng(0), grid=3, sigma=4)
    assert field.shape == (3, 8, 16, 16)


def test_intensity_changes_only_the_image():
    s = sample()
    out = RandomIntensity(p=1.0)(s, np.random.default_rng(0))
    assert not np.array_equal(out["image"], s["image"])
    np.testing.assert_array_equal(out["target"], s["target"])
    np.testing.assert_array_equal(out["weights"], s["weights"])


def test_affine_keeps_labels_in_set_and_build_follows_the_config():
    s = sample()
    out = RandomAffine(2, 20, 0.1)(s, np.random.default_rng(1))
    assert set(np.unique(out["target"])) <= {0, 1, 2, 3}
    pipeline = build_transforms(AugmentConfig(elastic=True, rotation_degrees=10, intensity=False), 2)
    names = [type(t).__name__ for t in pipeline.transforms]
    assert names == ["RandomElastic", "RandomAffine", "RandomFlip", "RandomRot90"]
