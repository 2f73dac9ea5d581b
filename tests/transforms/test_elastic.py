"""Elastic deformation: field statistics, resampling direction and boundary, one field for all arrays."""

import numpy as np
import pytest
from scipy import ndimage

from unetkit.errors import InputError
from unetkit.transforms.elastic import RandomElastic, apply_displacement, elastic_displacement


def constant_field(shape, axis, amount):
    field = np.zeros((len(shape), *shape), np.float32)
    field[axis] = amount
    return field


@pytest.mark.parametrize("shape", [(61, 61), (33, 47), (9, 21, 17)])
def test_field_shape_dtype_and_values_at_the_grid_points(shape):
    field = elastic_displacement(shape, np.random.default_rng(0), grid=3, sigma=10)
    assert field.shape == (len(shape), *shape) and field.dtype == np.float32
    assert np.all(field.std(axis=tuple(range(1, field.ndim))) > 0)  # every axis is displaced


def test_field_is_smooth():
    # 3 grid points on 61 px are 30 px apart: neighbouring pixels move together (differ << sigma = 10)
    field = elastic_displacement((61, 61), np.random.default_rng(0), grid=3, sigma=10)
    assert np.abs(np.diff(field, axis=-1)).max() < 2.5 and np.abs(np.diff(field, axis=-2)).max() < 2.5


def test_coarse_grid_values_have_std_sigma():
    # 61 px with grid 3 puts the grid points exactly on pixels 0, 30, 60 (spline interpolates them)
    values = [elastic_displacement((61, 61), np.random.default_rng(i), grid=3, sigma=10)[:, ::30, ::30]
              for i in range(150)]
    values = np.stack(values)  # (150, 2, 3, 3): 2700 draws of N(0, 10^2)
    assert values.std() == pytest.approx(10, abs=0.5)
    assert abs(values.mean()) < 0.6


def test_grid_two_is_linear_and_zero_sigma_is_identity():
    field = elastic_displacement((5, 9), np.random.default_rng(0), grid=2, sigma=3)
    # natural spline through 2 points is a straight line: second differences vanish along each axis
    assert np.abs(np.diff(field, 2, axis=-1)).max() < 1e-5
    sample = {"image": np.random.default_rng(1).random((1, 8, 8), dtype=np.float32)}
    out = RandomElastic(2, sigma=0)(sample, np.random.default_rng(0))
    np.testing.assert_array_equal(out["image"], sample["image"])


def test_identity_field_returns_every_array_exactly():
    rng = np.random.default_rng(0)
    zero = np.zeros((2, 12, 10), np.float32)
    image = rng.random((3, 12, 10), dtype=np.float32)
    labels = rng.integers(0, 9, (12, 10)).astype(np.int32)
    weights = rng.random((12, 10), dtype=np.float32)
    for array, order in ((image, 3), (image, 1), (labels, 0), (weights, 1)):
        out = apply_displacement(array, zero, order=order)
        assert out is not array and out.dtype == array.dtype
        assert np.array_equal(out, array)


@pytest.mark.parametrize("order", [0, 1, 3])
def test_constant_shift_samples_at_identity_plus_displacement_and_mirrors_outside(order):
    image = np.random.default_rng(0).random((1, 10, 12), dtype=np.float32)
    out = apply_displacement(image, constant_field((10, 12), axis=1, amount=2.0), order=order)
    # output[y, x] = input[y, x + 2]; integer positions are exact for orders 0/1 (cubic to rounding)
    np.testing.assert_allclose(out[0, :, :-2], image[0, :, 2:], atol=1e-5)
    # past the edge "reflect" mirrors about the border: x = 12 -> 11, x = 13 -> 10
    np.testing.assert_allclose(out[0, :, -2:], image[0][:, [11, 10]], atol=1e-5)


def test_one_field_moves_image_labels_and_weights_consistently():
    labels = np.zeros((80, 80), np.int32)
    labels[10:40, 10:40] = 3
    labels[45:70, 30:75] = 7
    sample = {
        "image": labels[None].astype(np.float32),
        "target": labels,
        "weights": (labels * 2).astype(np.float32),
    }
    nearest = RandomElastic(2, sigma=10, image_order=0)(sample, np.random.default_rng(4))
    np.testing.assert_array_equal(nearest["image"][0], nearest["target"])  # same coordinates, order 0
    assert not np.array_equal(nearest["target"], labels)
    out = RandomElastic(2, sigma=10)(sample, np.random.default_rng(4))  # default: cubic image, linear weights
    assert set(np.unique(out["target"])) <= {0, 3, 7} and out["target"].dtype == np.int32
    np.testing.assert_array_equal(out["target"], nearest["target"])
    # away from label edges the cubic image and the linear weights equal the nearest labels (a misplaced
    # field would be off by 3 or 7); the cubic spline's ringing decays by ~0.27 per input px, so 6 px
    # from a step of 7 it is a few hundredths where the field compresses the image
    flat = ndimage.minimum_filter(out["target"], 13) == ndimage.maximum_filter(out["target"], 13)
    assert flat.mean() > 0.3
    np.testing.assert_allclose(out["image"][0][flat], out["target"][flat], atol=0.05)
    np.testing.assert_allclose(out["weights"][flat], 2 * out["target"][flat], atol=1e-4)
    assert out["weights"].min() >= 0  # linear interpolation never overshoots
    np.testing.assert_array_equal(sample["target"], labels)  # input untouched


def test_3d_float_target_and_bool_arrays_keep_shapes_and_dtypes():
    shape = (6, 14, 12)
    rng = np.random.default_rng(0)
    sample = {
        "image": rng.random((2, *shape), dtype=np.float32),
        "target": rng.random((3, *shape), dtype=np.float32),  # regression target (C', *S)
        "weights": rng.random(shape) > 0.5,
    }
    out = RandomElastic(3, sigma=3)(sample, np.random.default_rng(1))
    for key, array in sample.items():
        assert out[key].shape == array.shape and out[key].dtype == array.dtype


def test_bad_arguments_raise_input_error():
    with pytest.raises(InputError, match="grid"):
        RandomElastic(2, grid=1)
    with pytest.raises(InputError, match="sigma"):
        elastic_displacement((8, 8), np.random.default_rng(0), sigma=-1)
    with pytest.raises(InputError, match="does not match"):
        apply_displacement(np.zeros((4, 5)), np.zeros((2, 5, 4)), order=0)
    with pytest.raises(InputError, match="spatial shape"):
        RandomElastic(2)({"image": np.zeros((1, 8, 8)), "target": np.zeros((8, 7))}, np.random.default_rng(0))
