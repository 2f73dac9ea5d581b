"""The paired augmentations on volumes: 3D elastic field, flips on all axes, rot90 in-plane only."""

import numpy as np

from unetkit.config import AugmentConfig
from unetkit.transforms import RandomElastic, RandomFlip, RandomRot90, build_transforms, elastic_displacement


def _sample(shape=(6, 10, 12)):
    rng = np.random.default_rng(0)
    labels = np.zeros(shape, np.int64)
    labels[1:4, 2:6, 3:9] = 1
    labels[4, 7:9, 1:3] = 2
    labels[0, 0, 0] = 255  # an ignore voxel must survive as 255
    image = ((labels[None] % 255) * 0.3 + rng.random((2, *shape)) * 0.01).astype(np.float32)
    return {"image": image, "target": labels, "weights": np.ones(shape, np.float32)}


def test_elastic_field_is_3d_and_interpolates_a_coarse_grid():
    field = elastic_displacement((6, 10, 12), np.random.default_rng(1), grid=3, sigma=4.0)
    assert field.shape == (3, 6, 10, 12) and field.dtype == np.float32
    assert np.any(field[0]) and np.any(field[2])  # every axis is displaced, z included
    smooth = np.abs(np.diff(field, axis=-1)).max()
    assert smooth < np.abs(field).max()  # neighbours move together


def test_elastic_3d_moves_image_and_labels_together_and_keeps_the_label_set():
    sample = _sample()
    out = RandomElastic(3, grid=3, sigma=2.0)(sample, np.random.default_rng(2))
    assert set(np.unique(out["target"])) <= {0, 1, 2, 255}
    assert out["image"].shape == sample["image"].shape and out["target"].shape == sample["target"].shape
    # the image was built from the labels: where the deformed target is 1 the deformed image is bright
    assert out["image"][0][out["target"] == 1].mean() > 0.25 > out["image"][0][out["target"] == 0].mean()
    assert not np.array_equal(out["target"], sample["target"])


def test_flips_and_rot90_permute_voxels_exactly_and_rot90_stays_in_plane():
    sample = _sample()
    for seed in range(8):
        rotated = RandomRot90(3)(sample, np.random.default_rng(seed))
        assert rotated["target"].shape[0] == 6  # depth never rotates into the plane
        for z in range(6):  # each slice is a rotation of the same slice
            assert any(np.array_equal(rotated["target"][z], np.rot90(sample["target"][z], k)) for k in range(4))
        flipped = RandomFlip(3, p=0.5)(sample, np.random.default_rng(seed))
        assert np.array_equal(flipped["image"][0] > 0.25, flipped["target"] % 255 > 0)
        assert np.array_equal(np.sort(flipped["target"], axis=None), np.sort(sample["target"], axis=None))


def test_built_3d_pipeline_keeps_shapes():
    transform = build_transforms(AugmentConfig(elastic=True, elastic_sigma=2.0), spatial_dims=3)
    out = transform(_sample(), np.random.default_rng(3))
    assert out["image"].shape == (2, 6, 10, 12) and out["weights"].shape == (6, 10, 12)
