"""Flips, rot90 and the free affine: exact permutations, one geometry for all arrays, inputs untouched."""

import numpy as np
import pytest
from scipy import ndimage

from unetkit.errors import InputError
from unetkit.transforms.base import Compose, spatial_shape
from unetkit.transforms.spatial import RandomAffine, RandomFlip, RandomRot90, affine_matrix


def paired(shape, seed=0):
    """Image, float target (2, *S) and weights all derived from one label array, so they must agree."""
    labels = np.random.default_rng(seed).integers(0, 5, shape).astype(np.int32)
    return {
        "image": np.stack([labels, -labels]).astype(np.float32),
        "target": labels,
        "weights": (labels + 0.5).astype(np.float32),
    }


def assert_paired(sample):
    labels = sample["target"]
    np.testing.assert_array_equal(sample["image"][0], labels)
    np.testing.assert_array_equal(sample["image"][1], -labels)
    np.testing.assert_array_equal(sample["weights"], labels + 0.5)


@pytest.mark.parametrize("shape", [(7, 9), (4, 6, 5)])
def test_flip_with_p1_flips_every_spatial_axis_only(shape):
    sample = paired(shape)
    before = {k: v.copy() for k, v in sample.items()}
    out = RandomFlip(len(shape), p=1.0)(sample, np.random.default_rng(0))
    axes = tuple(range(-len(shape), 0))
    np.testing.assert_array_equal(out["target"], np.flip(sample["target"], axes))
    np.testing.assert_array_equal(out["image"], np.flip(sample["image"], axes))  # channels keep order
    assert_paired(out)
    assert all(out[k].flags.c_contiguous for k in out)  # torch.from_numpy needs positive strides
    for key in sample:
        np.testing.assert_array_equal(sample[key], before[key])


def test_flip_with_p0_is_identity_and_random_flips_vary():
    sample = paired((6, 8))
    unchanged = RandomFlip(2, p=0.0)(sample, np.random.default_rng(0))
    np.testing.assert_array_equal(unchanged["target"], sample["target"])
    seen = {RandomFlip(2)(sample, np.random.default_rng(s))["target"].tobytes() for s in range(40)}
    assert len(seen) == 4  # none, H, W, both


def test_rot90_square_uses_all_four_and_stays_paired():
    sample = paired((6, 6))
    seen = set()
    for seed in range(40):
        out = RandomRot90(2)(sample, np.random.default_rng(seed))
        assert_paired(out)
        k = next(k for k in range(4) if np.array_equal(out["target"], np.rot90(sample["target"], k)))
        seen.add(k)
    assert seen == {0, 1, 2, 3}


def test_rot90_non_square_keeps_its_shape():
    sample = paired((3, 5, 8))
    seen = set()
    for seed in range(30):
        out = RandomRot90(3)(sample, np.random.default_rng(seed))
        assert out["target"].shape == (3, 5, 8) and out["image"].shape == (2, 3, 5, 8)
        assert_paired(out)
        seen.add(out["target"].tobytes())
    assert len(seen) == 2  # k in {0, 2}


def test_affine_matrix_rotates_about_the_centre_and_shifts():
    image = np.random.default_rng(0).random((9, 9))
    matrix, offset = affine_matrix((9, 9), 180.0, (0.0, 0.0))
    rotated = ndimage.affine_transform(image, matrix, offset=offset, order=0, mode="reflect")
    np.testing.assert_array_equal(rotated, np.rot90(image, 2))  # 180 degrees about pixel (4, 4)
    matrix, offset = affine_matrix((9, 9), 90.0, (0.0, 0.0))
    rotated = ndimage.affine_transform(image, matrix, offset=offset, order=0, mode="reflect")
    assert any(np.array_equal(rotated, np.rot90(image, k)) for k in (1, 3))
    matrix, offset = affine_matrix((9, 9), 0.0, (0.0, 3.0))
    shifted = ndimage.affine_transform(image, matrix, offset=offset, order=1)
    np.testing.assert_allclose(shifted[:, 3:], image[:, :-3])  # content moves 3 px to larger x


def test_affine_matrix_zooms_about_the_centre():
    image = np.zeros((9, 9))
    image[3:6, 3:6] = 1  # 3x3 square around the centre pixel (4, 4)
    matrix, offset = affine_matrix((9, 9), 0.0, (0.0, 0.0), zoom=3.0)
    zoomed = ndimage.affine_transform(image, matrix, offset=offset, order=0, mode="reflect")
    # output pixel o reads input (o - 4) / 3 + 4: rows 0..8 read 2.67..5.33, rounded 3..5: all inside
    np.testing.assert_array_equal(zoomed, np.ones((9, 9)))
    matrix, offset = affine_matrix((9, 9), 0.0, (0.0, 0.0), zoom=0.5)
    np.testing.assert_allclose(matrix, np.eye(2) * 2)  # halving: the input is read at twice the step
    np.testing.assert_allclose(offset, [-4, -4])
    with pytest.raises(InputError, match="zoom > 0"):
        affine_matrix((9, 9), 0.0, (0.0, 0.0), zoom=0.0)


def test_random_affine_zoom_spans_both_directions_log_uniformly():
    """Zoom factors in [1/1.5, 1.5]: an object's area changes by their square, shrunk as often as grown."""
    labels = np.zeros((65, 65), np.int32)
    labels[24:41, 24:41] = 1  # 17 x 17 = 289 px square at the centre
    sample = {"image": labels[None].astype(np.float32), "target": labels}
    ratios = []
    for seed in range(400):
        out = RandomAffine(2, 0.0, 0.0, image_order=0, max_zoom=0.5)(sample, np.random.default_rng(seed))
        ratios.append(out["target"].sum() / labels.sum())
    ratios = np.array(ratios)
    # nearest-neighbour areas of a 17 px square at zoom z are (round-off of 17 z)^2 / 289: within one
    # pixel row of z^2, so the extremes stay inside (16/17)^2 / 1.5^2 .. (18/17)^2 * 1.5^2
    assert ratios.min() >= (16 / 17) ** 2 / 2.25 and ratios.max() <= (18 / 17) ** 2 * 2.25
    assert ratios.min() < 0.6 and ratios.max() > 1.7  # both ends reached in 400 draws
    # the square keeps its 17 px for zooms within about 16/17..18/17 (log +-0.06 of the drawn +-0.405:
    # 15 %), so log-uniform draws shrink or grow it with ~0.43 each; 400 draws: 3 sigma = 0.074
    for share in ((ratios < 1).mean(), (ratios > 1).mean()):
        assert 0.43 - 0.08 < share < 0.43 + 0.08


def test_random_affine_without_zoom_keeps_its_random_stream():
    """Zoom off draws what the transform drew before zoom existed: p, angle, shift, nothing more."""
    sample = paired((16, 16))
    rng = np.random.default_rng(5)
    out = RandomAffine(2, 20.0, 0.1)(sample, rng)
    reference = np.random.default_rng(5)
    reference.random()
    degrees, shift = reference.uniform(-20, 20), reference.uniform(-0.1, 0.1, 2) * 16
    assert rng.random() == reference.random()  # the streams are still in step: no extra draw
    matrix, offset = affine_matrix((16, 16), degrees, tuple(shift))
    expected = ndimage.affine_transform(sample["target"], matrix, offset=offset, order=0, mode="reflect")
    np.testing.assert_array_equal(out["target"], expected)
    zoomed = RandomAffine(2, 20.0, 0.1, max_zoom=0.5)(sample, np.random.default_rng(5))
    assert not np.array_equal(zoomed["target"], out["target"])
    with pytest.raises(InputError, match="max_zoom"):
        RandomAffine(2, max_zoom=1.5)


def test_affine_3d_rotates_in_plane_only():
    matrix, offset = affine_matrix((5, 9, 9), 30.0, (0.0, 0.0, 0.0))
    assert matrix[0, 0] == 1 and not matrix[0, 1:].any() and not matrix[1:, 0].any()
    assert offset[0] == 0
    matrix, offset = affine_matrix((5, 9, 9), 0.0, (0.0, 0.0, 0.0), zoom=2.0)  # magnification: in-plane
    np.testing.assert_allclose(np.diag(matrix), [1, 0.5, 0.5])
    assert offset[0] == 0


@pytest.mark.parametrize("blocks", [(8, 10), (3, 6, 6)])
def test_random_affine_moves_all_arrays_with_one_transform(blocks):
    coarse = np.random.default_rng(0).integers(0, 5, blocks)
    labels = np.kron(coarse, np.ones((4,) * len(blocks), int)).astype(np.int32)  # 4 px blocks
    sample = {"image": np.stack([labels, -labels]).astype(np.float32), "target": labels,
              "weights": (labels + 0.5).astype(np.float32)}
    before = sample["target"].copy()
    out = RandomAffine(len(blocks), 25.0, 0.1, image_order=0)(sample, np.random.default_rng(2))
    np.testing.assert_array_equal(out["image"][0], out["target"])  # order 0 image: the labels' map
    np.testing.assert_array_equal(out["image"][1], -out["target"])
    # weights are linear: equal to the labels' value + 0.5 where all neighbours share a label (the
    # outermost pixels are left out: their neighbours come from the mirrored outside)
    low = ndimage.minimum_filter(out["target"], 3, mode="constant", cval=-1)
    flat = low == ndimage.maximum_filter(out["target"], 3)
    assert flat.mean() > 0.1  # hundreds of pixels checked
    np.testing.assert_allclose(out["weights"][flat], out["target"][flat] + 0.5, atol=1e-4)
    assert not np.array_equal(out["target"], before)
    smooth = RandomAffine(len(blocks), 25.0, 0.1)(sample, np.random.default_rng(2))
    assert set(np.unique(smooth["target"])) <= set(range(5)) and smooth["target"].dtype == np.int32
    np.testing.assert_array_equal(smooth["target"], out["target"])
    np.testing.assert_array_equal(sample["target"], before)


def test_random_affine_p0_and_bad_arguments():
    sample = paired((8, 8))
    out = RandomAffine(2, 30.0, 0.2, p=0.0)(sample, np.random.default_rng(0))
    np.testing.assert_array_equal(out["image"], sample["image"])
    with pytest.raises(InputError, match="max_shift_fraction"):
        RandomAffine(2, 10.0, 1.5)
    with pytest.raises(InputError, match="probability"):
        RandomFlip(2, p=2.0)
    with pytest.raises(InputError, match="at least 2"):
        RandomRot90(1)


def test_spatial_shape_validation_and_compose():
    with pytest.raises(InputError, match="'image'"):
        spatial_shape({"target": np.zeros((4, 4))}, 2)
    with pytest.raises(InputError, match="channels-first"):
        spatial_shape({"image": np.zeros((4, 4))}, 2)
    with pytest.raises(InputError, match="weights"):
        spatial_shape({"image": np.zeros((1, 4, 4)), "weights": np.zeros((4, 5))}, 2)
    sample = paired((6, 6))
    out = Compose([RandomFlip(2, p=1.0), RandomFlip(2, p=1.0)])(sample, np.random.default_rng(0))
    assert_paired(out)
    np.testing.assert_array_equal(out["target"], sample["target"])  # two full flips cancel
    assert len(Compose([])) == 0 and "RandomFlip" in repr(Compose([RandomFlip(2)]))
