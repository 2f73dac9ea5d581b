"""Synthetic multiclass cells and virtual-staining pairs: deterministic, with the intended structure."""

import numpy as np
from scipy import ndimage

from unetkit.data.synthetic_tasks import (
    make_cells_image,
    make_virtual_stain_pair,
    write_multiclass_dataset,
    write_regression_dataset,
)


def test_cells_are_deterministic_and_nuclei_sit_inside_brighter_than_cytoplasm():
    image, classes = make_cells_image(np.random.default_rng(3), (96, 120))
    again, same = make_cells_image(np.random.default_rng(3), (96, 120))
    assert np.array_equal(image, again) and np.array_equal(classes, same)
    assert image.shape == classes.shape == (96, 120) and image.dtype == np.uint8
    assert set(np.unique(classes)) == {0, 1, 2}
    # every nucleus touches cytoplasm, never only background: nuclei lie inside cells
    grown = ndimage.binary_dilation(classes == 2)
    assert not ((grown & (classes == 0)) & ~ndimage.binary_dilation(classes == 1)).any()
    means = [image[classes == c].mean() for c in range(3)]
    assert means[0] < means[1] < means[2]


def test_virtual_stain_target_is_clean_and_input_is_darker_on_nuclei():
    image, target = make_virtual_stain_pair(np.random.default_rng(0), (128, 128))
    assert image.dtype == np.uint16 and target.dtype == np.float32
    background = target < 101
    assert np.median(target[background]) == 100.0 and target.max() > 400
    nuclei = target > 400
    assert image[nuclei].mean() < image[background].mean()


def test_writers_lay_out_the_datasets(tmp_path):
    write_multiclass_dataset(tmp_path / "cf", 2, sizes=[(40, 50), (41, 33)], mask_format="class-folders")
    assert sorted(p.name for p in (tmp_path / "cf").iterdir()) == ["cytoplasm", "images", "nucleus"]
    write_regression_dataset(tmp_path / "rg", 1, shape=(40, 40))
    assert (tmp_path / "rg" / "images" / "stain_0000.png").is_file()
    assert (tmp_path / "rg" / "targets" / "stain_0000.tif").is_file()
