"""The U-Net paper's weight map (eq. 2) against hand-computed values and a brute-force reference."""

import math

import numpy as np
import pytest
from scipy import ndimage

from unetkit.data.weightmaps import (
    WeightMapCache,
    border_cutoff,
    class_balance_weights,
    instance_labels_from_foreground,
    small_object_factors,
    weight_map,
)
from unetkit.errors import InputError


def two_cells() -> np.ndarray:
    """Two 10x10 cells, columns 0-9 and 12-21, with a 2 px gap (columns 10, 11); 400 px in all."""
    labels = np.zeros((10, 40), np.int32)
    labels[:, 0:10] = 1
    labels[:, 12:22] = 2
    return labels


def test_two_cells_by_hand():
    w = weight_map(two_cells(), w0=10, sigma=5)
    # 200 cell pixels, 200 background: w_c = 400 / (2 * 200) = 1 for both classes
    # gap column 10: d1 = 1 (to cell 1, column 9), d2 = 2 (to cell 2, column 12):
    # w = 1 + 10 * exp(-(1 + 2)^2 / (2 * 5^2)) = 1 + 10 * exp(-0.18) = 9.3527
    expected_gap = 1 + 10 * math.exp(-9 / 50)
    assert w[5, 10] == pytest.approx(expected_gap, rel=1e-5)
    assert w[5, 11] == pytest.approx(expected_gap, rel=1e-5)  # symmetric
    assert w[5, 5] == pytest.approx(1.0)  # inside a cell: class weight only
    assert w[5, 39] == pytest.approx(1.0, abs=1e-3)  # far background: d2 = 27 px -> border term < 1e-3


def test_class_balance_by_hand():
    classes = np.zeros((10, 10), bool)
    classes[:5, :5] = True  # 25 foreground of 100
    w = class_balance_weights(classes)
    assert w[0, 0] == pytest.approx(100 / (2 * 25)) and w[9, 9] == pytest.approx(100 / (2 * 75))


def test_bounded_neighbourhood_matches_brute_force():
    rng = np.random.default_rng(0)
    seeds = np.zeros((160, 160), np.int32)
    for k in range(30):
        y, x = rng.integers(5, 155, 2)
        seeds[y, x] = k + 1
    labels = ndimage.grey_dilation(seeds, size=(7, 7))  # ~30 touching or separate square cells
    distances = np.stack([ndimage.distance_transform_edt(labels != k) for k in np.unique(labels) if k])
    distances.sort(axis=0)
    border = 10 * np.exp(-((distances[0] + distances[1]) ** 2) / (2 * 25))
    reference = class_balance_weights(labels > 0) + np.where(labels == 0, border, 0)
    assert np.abs(weight_map(labels) - reference).max() < 1e-3
    assert border_cutoff(10, 5) == pytest.approx(5 * math.sqrt(2 * math.log(1e4)))


def test_isbi_style_labels_become_cells_and_maps_are_cached():
    mask = np.full((20, 20), 255, np.uint8)
    mask[:, 9:11] = 0  # a membrane splits two cells
    labels = instance_labels_from_foreground(mask)
    assert labels.max() == 2
    cache = WeightMapCache()
    first = cache.get(labels)
    assert cache.get(labels) is first and len(cache) == 1
    assert first[10, 9] > first[10, 0] + 5  # membrane pixels between cells get the border weight


def test_one_px_gap_by_hand_with_unbalanced_classes():
    # 30 x 40 image, two 10x10 cells (rows 10-19, columns 5-14 and 16-25), a 1 px gap at column 15.
    labels = np.zeros((30, 40), np.int32)
    labels[10:20, 5:15] = 1
    labels[10:20, 16:26] = 2
    w = weight_map(labels, w0=10, sigma=5)
    # 200 cell pixels of 1200: w_c = 1200 / (2 * 200) = 3.0 on cells, 1200 / (2 * 1000) = 0.6 on background
    assert w[15, 10] == pytest.approx(3.0) and w[15, 20] == pytest.approx(3.0)  # no border term on cells
    # gap pixel (15, 15): d1 = d2 = 1 -> 0.6 + 10 * exp(-(1 + 1)^2 / 50) = 0.6 + 9.2312
    assert w[15, 15] == pytest.approx(0.6 + 10 * math.exp(-4 / 50), rel=1e-6)
    # above the gap, pixel (8, 15): nearest cell corners (10, 14) and (10, 16), d1 = d2 = sqrt(5)
    assert w[8, 15] == pytest.approx(0.6 + 10 * math.exp(-20 / 50), rel=1e-6)
    # right of cell 2, pixel (15, 27): d1 = 2 (column 25), d2 = 13 (column 14) -> 0.6 + 10 * exp(-225 / 50)
    assert w[15, 27] == pytest.approx(0.6 + 10 * math.exp(-225 / 50), rel=1e-5)
    # far corner (0, 39): d1 = sqrt(10^2 + 14^2) = 17.2, d2 = sqrt(10^2 + 25^2) = 26.9 -> term 1e-16
    assert w[0, 39] == pytest.approx(0.6, abs=1e-3)


def test_single_cell_and_empty_images_get_class_weights_only():
    labels = np.zeros((12, 12), np.int32)
    np.testing.assert_array_equal(weight_map(labels), np.ones((12, 12), np.float32))  # one class: 1
    labels[3:9, 3:9] = 4  # one cell: no second-nearest cell anywhere, so no border term
    np.testing.assert_allclose(weight_map(labels), class_balance_weights(labels > 0))
    assert weight_map(labels).dtype == np.float32


def test_3d_matches_brute_force_and_sparse_ids_change_nothing():
    rng = np.random.default_rng(1)
    seeds = np.zeros((20, 40, 40), np.int32)
    for k in range(12):
        seeds[tuple(rng.integers(2, 38, 3) % (20, 40, 40))] = k + 1
    labels = ndimage.grey_dilation(seeds, size=(3, 5, 5))
    distances = np.stack([ndimage.distance_transform_edt(labels != k) for k in np.unique(labels) if k])
    distances.sort(axis=0)
    border = 10 * np.exp(-((distances[0] + distances[1]) ** 2) / 50)
    reference = class_balance_weights(labels > 0) + np.where(labels == 0, border, 0)
    assert np.abs(weight_map(labels) - reference).max() < 1e-3
    sparse = np.where(labels > 0, labels * 10_000 + 7, 0)  # ids like 10007 .. 120007
    np.testing.assert_array_equal(weight_map(sparse), weight_map(labels))


def test_foreground_class_map_and_w0_zero():
    labels = np.zeros((10, 20), np.int32)
    labels[:, :8] = 1
    labels[:, 10:18] = 2
    classes = (labels > 0).astype(np.int32)
    classes[:, 9] = 2  # e.g. a boundary class of a three-class target: 10 px of 200
    w = weight_map(labels, w0=0, foreground=classes)
    assert w[0, 9] == pytest.approx(200 / (3 * 10)) and w[0, 0] == pytest.approx(200 / (3 * 160))
    assert w[0, 8] == pytest.approx(200 / (3 * 30))


def touching_cells() -> np.ndarray:
    """Two 10x10 cells that touch (columns 5-14 and 15-24 of rows 5-14), no background between them."""
    labels = np.zeros((20, 40), np.int32)
    labels[5:15, 5:15] = 1
    labels[5:15, 15:25] = 2
    return labels


def test_touching_cells_get_the_border_term_on_their_boundary_class():
    from unetkit.data.targets import BOUNDARY, INTERIOR, make_target

    labels = touching_cells()
    target = make_target(labels, "three-class", boundary_width=2)
    assert target[10, 14] == target[10, 13] == BOUNDARY and target[10, 10] == INTERIOR  # precondition
    plain = weight_map(labels, foreground=target, balance=False)
    assert plain[10, 14] == pytest.approx(1.0)  # no background pixel between them: no border term at all
    w = weight_map(labels, foreground=target, border_classes=(BOUNDARY,), balance=False)
    # column 14, boundary of cell 1: d1 = 0 (inside it), d2 = 1 (cell 2 starts at column 15)
    assert w[10, 14] == pytest.approx(1 + 10 * math.exp(-1 / 50), rel=1e-5)
    assert w[10, 15] == pytest.approx(1 + 10 * math.exp(-1 / 50), rel=1e-5)  # and cell 2's side
    assert w[10, 13] == pytest.approx(1 + 10 * math.exp(-4 / 50), rel=1e-5)  # d2 = 2
    assert w[10, 5] == pytest.approx(1 + 10 * math.exp(-100 / 50), rel=1e-5)  # far side: d2 = 10
    assert w[10, 10] == pytest.approx(1.0)  # interior: not a border class
    assert w[10, 27] == pytest.approx(plain[10, 27])  # background: d1 = 3, d2 = 13 either way
    balanced = weight_map(labels, foreground=target, border_classes=(BOUNDARY,))
    w_c = class_balance_weights(target)
    assert balanced[10, 14] == pytest.approx(w_c[10, 14] + 10 * math.exp(-1 / 50), rel=1e-5)
    assert balanced[10, 10] == pytest.approx(w_c[10, 10]) != pytest.approx(1.0)
    cache = WeightMapCache()
    assert cache.get(labels, foreground=target) is not cache.get(labels, foreground=target, border_classes=(2,))
    assert cache.get(labels, foreground=target, balance=False) is not cache.get(labels, foreground=target)
    assert cache.misses == 3


def test_bad_inputs_raise_input_error():
    with pytest.raises(InputError, match="integer"):
        weight_map(np.zeros((4, 4), np.float32))
    with pytest.raises(InputError, match="negative"):
        weight_map(-np.ones((4, 4), np.int32))
    with pytest.raises(InputError, match="sigma"):
        weight_map(np.zeros((4, 4), np.int32), sigma=0)
    for sigma, w0 in ((float("nan"), 10), (5, float("inf"))):  # crashed in an int() conversion further on
        with pytest.raises(InputError, match="a finite sigma > 0 and w0 >= 0"):
            weight_map(np.zeros((4, 4), np.int32), sigma=sigma, w0=w0)
    with pytest.raises(InputError, match="shape"):
        weight_map(np.zeros((4, 4), np.int32), foreground=np.zeros((4, 5), bool))


def test_components_are_4_connected_in_2d_and_6_connected_in_3d():
    mask = np.zeros((4, 4), np.uint8)
    mask[0, 0] = mask[1, 1] = 255  # diagonal neighbours: two cells
    assert instance_labels_from_foreground(mask).max() == 2
    volume = np.zeros((3, 3, 3), bool)
    volume[0, 0, 0] = volume[1, 1, 0] = volume[1, 1, 1] = True  # edge-diagonal + face neighbour
    labels = instance_labels_from_foreground(volume)
    assert labels.max() == 2 and labels.dtype == np.int32


def test_small_objects_weigh_the_square_root_of_their_area_shortfall():
    """``small_object_area``: a 4 px cell under an area of 16 weighs sqrt(16 / 4) = 2 per pixel, a 9 px one
    sqrt(16 / 9) = 4/3, a 100 px one 1; background stays 1, and the border term is added on top."""
    labels = np.zeros((20, 30), np.int32)
    labels[1:3, 1:3] = 1  # 4 px
    labels[1:4, 10:13] = 2  # 9 px
    labels[8:18, 8:18] = 3  # 100 px
    np.testing.assert_allclose(small_object_factors(labels, 16)[[1, 1, 10, 0], [1, 11, 10, 25]], [2, 4 / 3, 1, 1])
    plain = weight_map(labels, w0=0, balance=False)
    small = weight_map(labels, w0=0, balance=False, small_object_area=16)
    np.testing.assert_allclose(small, plain * small_object_factors(labels, 16))
    assert small[1, 1] == pytest.approx(2.0) and small[15, 15] == 1.0 and small[0, 25] == 1.0
    balanced = weight_map(labels, w0=0, small_object_area=16)  # class weight x factor
    assert balanced[1, 1] == pytest.approx(2 * balanced[15, 15])
    with_border = weight_map(labels, balance=False, small_object_area=16)
    gap = (0, 6)  # background between cells 1 and 2: the border term only, unscaled
    assert with_border[gap] == pytest.approx(weight_map(labels, balance=False)[gap])
    with pytest.raises(InputError, match="small_object_area"):
        weight_map(labels, small_object_area=-1)


def test_cache_keys_read_only_eviction_and_folder(tmp_path):
    labels = two_cells()
    cache = WeightMapCache(max_bytes=2 * labels.size * 4)  # room for two maps
    first = cache.get(labels)
    assert not first.flags.writeable and (cache.hits, cache.misses) == (0, 1)
    assert cache.get(labels.copy()) is first and cache.hits == 1  # keyed by content, not identity
    other = cache.get(labels, sigma=3.0)
    assert other is not first and cache.misses == 2
    assert cache.key(labels, 10, 5, small_object_area=200) != cache.key(labels, 10, 5)
    cache.get(labels[:, ::-1].copy())  # a third map evicts the oldest (sigma 5)
    assert len(cache) == 2 and cache.get(labels) is not first and cache.misses == 4
    on_disk = WeightMapCache(tmp_path / "maps")
    computed = on_disk.get(labels)
    assert len(list((tmp_path / "maps").glob("*.npy"))) == 1
    again = WeightMapCache(tmp_path / "maps")  # e.g. another DataLoader worker or a later run
    np.testing.assert_array_equal(again.get(labels), computed)
    assert (again.hits, again.misses) == (1, 0)
