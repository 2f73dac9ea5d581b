"""Synthetic 3D nuclei: reproducible, anisotropic, brighter inside nuclei, written with their spacing."""

import numpy as np
from scipy import ndimage as ndi

from unetkit.data.synthetic3d import make_nuclei_volume, write_synthetic_volumes
from unetkit.data.volumes import find_volume_samples, read_meta


def test_same_seed_same_volume_and_consecutive_ids():
    a = make_nuclei_volume(np.random.default_rng(5), shape=(16, 48, 40))
    b = make_nuclei_volume(np.random.default_rng(5), shape=(16, 48, 40))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    image, labels = a
    assert image.shape == labels.shape == (16, 48, 40) and image.dtype == labels.dtype == np.uint16
    ids = np.unique(labels)
    assert ids[0] == 0 and np.array_equal(ids[1:], np.arange(1, len(ids))) and len(ids) > 5


def test_nuclei_are_flatter_in_z_by_the_anisotropy_and_brighter_than_background():
    image, labels = make_nuclei_volume(np.random.default_rng(1), shape=(32, 96, 96), anisotropy=2.0)
    extents = np.array([[s.stop - s.start for s in box] for box in ndi.find_objects(labels) if box])
    ratio = np.median(extents[:, 1:]) / np.median(extents[:, 0])
    assert 1.5 < ratio < 2.7  # round in microns, about half as many slices as pixels across
    assert image[labels > 0].mean() > 1.3 * image[labels == 0].mean()


def test_written_dataset_is_a_3d_folders_layout_with_spacing(tmp_path):
    paths = write_synthetic_volumes(tmp_path, 2, seed=3, shape=(8, 24, 24), anisotropy=3.0)
    assert [p.name for p in paths] == ["vol_0000.tif", "vol_0001.tif"]
    assert [s.name for s in find_volume_samples(tmp_path)] == ["vol_0000", "vol_0001"]
    assert read_meta(tmp_path / "masks" / "vol_0001.tif").spacing == (3.0, 1.0, 1.0)
