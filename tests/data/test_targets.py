"""Training targets from instance labels: hand-made 2D and 3D cases with known answers."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from unetkit.data.targets import (
    BOUNDARY,
    INTERIOR,
    binary_target,
    distance_target,
    make_target,
    object_distances,
    three_class_target,
)
from unetkit.errors import InputError


def touching_squares() -> np.ndarray:
    """Two 8x6 squares side by side, touching along a vertical line between columns 6 and 7."""
    labels = np.zeros((10, 14), dtype=np.int32)
    labels[1:9, 1:7] = 1
    labels[1:9, 7:13] = 2
    return labels


def balls(shape=(20, 24, 40), centres=((10, 12, 12), (10, 12, 27)), radius=8) -> np.ndarray:
    zz, yy, xx = np.indices(shape)
    labels = np.zeros(shape, dtype=np.int32)
    for i, (z, y, x) in enumerate(centres, start=1):
        labels[((zz - z) ** 2 + (yy - y) ** 2 + (xx - x) ** 2 <= radius**2) & (labels == 0)] = i
    return labels


def test_binary_target_is_foreground():
    labels = touching_squares()
    target = binary_target(labels)
    assert target.dtype == np.uint8
    assert target.sum() == 2 * 8 * 6
    assert np.array_equal(target, (labels > 0).astype(np.uint8))


def test_three_class_touching_squares_by_hand():
    target = three_class_target(touching_squares(), boundary_width=2)
    assert target.dtype == np.uint8
    # Each 8x6 square loses a 2 px ring: interior 4 rows x 2 columns (rows 3-6; cols 3-4 and 9-10).
    expected_interior = np.zeros_like(target, dtype=bool)
    expected_interior[3:7, 3:5] = True
    expected_interior[3:7, 9:11] = True
    assert np.array_equal(target == INTERIOR, expected_interior)
    # The contact line is boundary on both sides (columns 5, 6 | 7, 8) over the full height.
    assert np.all(target[1:9, 5:9] == BOUNDARY)
    _, n_interiors = ndi.label(target == INTERIOR)
    assert n_interiors == 2
    # The merged binary mask is a single component: only the three-class target separates them.
    _, n_foreground = ndi.label(target > 0)
    assert n_foreground == 1


def test_boundary_width_one_is_find_boundaries_inner():
    from skimage.segmentation import find_boundaries

    labels = touching_squares()
    target = three_class_target(labels, boundary_width=1)
    assert np.array_equal(target == BOUNDARY, find_boundaries(labels, mode="inner", connectivity=1))


def test_tiny_object_keeps_its_centre_as_interior():
    labels = np.zeros((9, 9), dtype=np.int32)
    labels[2:5, 2:5] = 7  # 3x3: every pixel within 2 px of the border, the centre has distance 2
    target = three_class_target(labels, boundary_width=2)
    assert (target == INTERIOR).sum() == 1 and target[3, 3] == INTERIOR
    assert (target == BOUNDARY).sum() == 8


def test_image_edge_is_not_a_border():
    labels = np.ones((5, 5), dtype=np.int32)
    labels[:, 3:] = 2
    distance = object_distances(labels)
    # Object 1 (columns 0-2) only borders object 2: distance 1 at column 2, 3 at column 0.
    assert np.allclose(distance[:, :3], [3, 2, 1])
    assert np.allclose(distance[:, 3:], [1, 2])


def test_distance_target_peaks_at_one_per_object():
    labels = touching_squares()
    labels[0, 13] = 3  # a single pixel object
    target = distance_target(labels)
    assert target.dtype == np.float32
    for i in (1, 2, 3):
        assert target[labels == i].max() == pytest.approx(1.0)
    assert np.all(target[labels == 0] == 0)
    # Contact line: distance 1 of a maximum of 3 (6 px wide squares) -> 1/3.
    assert target[4, 6] == pytest.approx(1 / 3)
    raw = distance_target(labels, normalize="none")
    assert raw[4, 3] == pytest.approx(3.0)


def test_three_class_3d_two_touching_balls():
    labels = balls()
    assert ndi.label(labels > 0)[1] == 1  # the balls touch
    target = three_class_target(labels, boundary_width=2)
    interior_components, n = ndi.label(target == INTERIOR)
    assert n == 2
    # Each interior component lies inside one ball.
    for component in (1, 2):
        assert np.unique(labels[interior_components == component]).size == 1
    distance = distance_target(labels)
    assert distance.shape == labels.shape and distance.max() == pytest.approx(1.0)


def test_sparse_large_ids_give_the_same_target():
    labels = touching_squares().astype(np.int64)
    sparse = np.where(labels == 2, 2**40, labels)
    assert np.array_equal(three_class_target(sparse), three_class_target(labels))
    assert np.array_equal(distance_target(sparse), distance_target(labels))


def test_make_target_dispatch_and_errors():
    labels = touching_squares()
    assert np.array_equal(make_target(labels, "binary"), binary_target(labels))
    assert np.array_equal(make_target(labels, "three-class", 1), three_class_target(labels, 1))
    assert np.array_equal(make_target(labels, "distance"), distance_target(labels))
    with pytest.raises(InputError, match="three-class"):
        make_target(labels, "contours")
    with pytest.raises(InputError, match="dtype"):
        three_class_target(labels.astype(np.float32))
    with pytest.raises(InputError, match="boundary_width"):
        three_class_target(labels, boundary_width=0)
