"""Mirrored reads of boxes: the reader of training patches and prediction tiles."""

import numpy as np

from unetkit.data.regions import read_region, reflect_indices


def test_reflect_indices_mirror_without_repeating_the_edge():
    assert reflect_indices(-2, 7, 5).tolist() == [2, 1, 0, 1, 2, 3, 4, 3, 2]
    assert reflect_indices(-10, -7, 3).tolist() == [2, 1, 0]  # far outside a tiny image: repeats
    np.testing.assert_array_equal(reflect_indices(-4, 9, 5), np.pad(np.arange(5), 4, mode="reflect"))


def test_read_region_equals_numpy_reflect_pad_and_reads_memmaps(tmp_path):
    image = np.random.default_rng(0).random((2, 13, 17)).astype(np.float32)
    padded = np.pad(image, ((0, 0), (9, 9), (9, 9)), mode="reflect")
    mapped = np.lib.format.open_memmap(tmp_path / "image.npy", mode="w+", dtype=np.float32, shape=image.shape)
    mapped[:] = image
    for source in (image, mapped):
        region = read_region(source, (-5, 10), (12, 15))
        np.testing.assert_array_equal(region, padded[:, 4:16, 19:34])
