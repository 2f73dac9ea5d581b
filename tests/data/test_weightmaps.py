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
    weight_map,
)


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
