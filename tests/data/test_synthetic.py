"""Synthetic nuclei: deterministic, plausible, with touching objects."""

import numpy as np
from scipy import ndimage

from unetkit.data.synthetic import make_nuclei_image, write_synthetic_dataset


def test_same_seed_same_bytes(tmp_path):
    a = write_synthetic_dataset(tmp_path / "a", 2, seed=4, shape=(96, 120))
    b = write_synthetic_dataset(tmp_path / "b", 2, seed=4, shape=(96, 120))
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes()
    masks = sorted((tmp_path / "a" / "masks").iterdir())
    assert [m.read_bytes() for m in masks] == [m.read_bytes() for m in sorted((tmp_path / "b" / "masks").iterdir())]


def test_labels_are_consecutive_plausible_and_some_touch():
    image, labels = make_nuclei_image(np.random.default_rng(0), (256, 256))
    ids = np.unique(labels)
    assert ids[0] == 0 and np.array_equal(ids[1:], np.arange(1, len(ids)))
    assert 20 <= len(ids) - 1 <= 400
    # touching: some object has a 4-neighbour pixel of another object
    grown = ndimage.grey_dilation(labels, size=(3, 3))
    touching = (labels > 0) & (grown != labels) & (grown > 0)
    assert touching.any()
    inside, outside = image[labels > 0].mean(), image[labels == 0].mean()
    assert inside > outside  # fluorescence: bright nuclei on a dark background
