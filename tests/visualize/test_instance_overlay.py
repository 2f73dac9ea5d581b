"""Instance overlays: distinct colours for neighbours, outlines, shapes and errors."""

import numpy as np
import pytest

from unetkit.errors import InputError
from unetkit.visualize.instances import PALETTE, instance_colours, instance_overlay, neighbour_pairs


def touching_grid() -> np.ndarray:
    """A 4 x 4 grid of touching 6 x 6 squares (16 objects, each with up to 4 touching neighbours)."""
    return (np.arange(4)[:, None] * 4 + np.arange(4)[None, :] + 1).repeat(6, 0).repeat(6, 1)


def test_neighbour_pairs_by_hand():
    labels = np.zeros((5, 12), dtype=np.int32)
    labels[:, 0:3] = 1
    labels[:, 3:5] = 2  # touches 1
    labels[:, 7:9] = 3  # 2 px gap to 2: neighbours at the default gap of 3
    labels[:, 11:] = 4  # 2 px gap to 3
    assert neighbour_pairs(labels).tolist() == [[1, 2], [2, 3], [3, 4]]
    assert neighbour_pairs(labels, gap=0).tolist() == [[1, 2]]


def test_neighbour_pairs_in_strips_equal_the_whole_image():
    """Growing the objects strip by strip (bounded memory) finds exactly the pairs of growing them at once,
    for gaps whose growth reaches across several strips of one or two rows."""
    from skimage.measure import label

    rng = np.random.default_rng(0)
    for _ in range(20):
        height, width = rng.integers(1, 80, 2)
        labels = label(rng.random((height, width)) > 0.85).astype(np.int32)
        for gap in (0, 1, 3, 6):
            whole = neighbour_pairs(labels, gap, rows=10_000)
            for rows in (1, 2, 5):
                assert np.array_equal(neighbour_pairs(labels, gap, rows=rows), whole), (height, width, gap, rows)


def test_touching_objects_get_different_colours_and_seed_is_reproducible():
    labels = touching_grid()
    colours = instance_colours(labels, seed=1)
    for a, b in neighbour_pairs(labels):
        assert not np.array_equal(colours[a], colours[b])
    assert np.array_equal(colours, instance_colours(labels, seed=1))
    assert all(any(np.array_equal(c, p) for p in PALETTE) for c in colours[1:])
    assert np.all(colours[0] == 0)


def test_overlay_shapes_tints_and_outlines():
    labels = touching_grid()
    gray = np.linspace(0, 1, labels.size, dtype=np.float32).reshape(labels.shape)
    out = instance_overlay(gray, labels, alpha=0.45)
    assert out.shape == (*labels.shape, 3) and out.dtype == np.uint8
    colours = instance_colours(labels)
    # Pixel (2, 5) of object 1 touches object 2: an outline in full colour; an inner pixel is a blend.
    assert np.array_equal(out[2, 5], colours[1])
    assert not np.array_equal(out[2, 2], colours[1])
    plain = instance_overlay(gray, np.zeros_like(labels))
    assert np.all(plain[..., 0] == plain[..., 1])  # no objects: the gray image only
    rgb = instance_overlay(np.stack([gray, gray * 0, gray * 0]), labels, alpha=0.0, outlines=False)
    assert np.all(rgb[..., 1] == 0) and rgb[..., 0].max() == 255  # red image shown untinted


def test_overlay_errors():
    with pytest.raises(InputError, match="does not fit"):
        instance_overlay(np.zeros((3, 10, 10)), np.zeros((10, 12), dtype=np.int32))
    with pytest.raises(InputError, match="alpha"):
        instance_overlay(np.zeros((10, 10)), np.zeros((10, 10), dtype=np.int32), alpha=2)


def test_inner_borders_are_skimages_find_boundaries_inner():
    """The overlay's outlines, computed with bool temporaries (its int64 ones held 17 bytes per pixel), are the
    pixels skimage marks: objects of random sizes, touching, at the image's edges, in every integer type."""
    from scipy import ndimage as ndi
    from skimage.segmentation import find_boundaries

    from unetkit.visualize.instances import _inner_borders

    rng = np.random.default_rng(0)
    for trial in range(60):
        shape = tuple(int(n) for n in rng.integers(1, 40, 2))
        labels = rng.integers(0, 5, shape) if trial % 2 else ndi.label(rng.random(shape) > 0.45)[0]
        labels = labels.astype([np.uint8, np.uint16, np.int32, np.int64][trial % 4])
        expected = find_boundaries(labels, mode="inner") & (labels > 0)
        assert np.array_equal(_inner_borders(labels), expected), trial
