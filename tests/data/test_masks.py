"""Multiclass mask formats and class statistics: hand-made masks with known class maps."""

import numpy as np
import pytest
import tifffile
from PIL import Image

from unetkit.config import DataConfig
from unetkit.data.masks import (
    ClassTable,
    binary_mask,
    check_class_ids,
    class_pixel_counts,
    colors_to_classes,
    default_colors,
    frequency_class_weights,
    merge_class_masks,
    priority_order,
    read_class_mask,
)
from unetkit.errors import InputError

COLOURS = [[0, 0, 0], [255, 0, 0], [0, 255, 0]]


def _table(**values) -> ClassTable:
    return ClassTable.from_config(DataConfig(**{"class_names": ["bg", "a", "b"], **values}))


def test_binary_mask_takes_values_above_half_the_maximum():
    drawn = np.array([0, 10, 127, 128, 255, 255, 255])  # anti-aliased: most of the drawing at its maximum
    assert binary_mask(drawn).tolist() == [False, False, False, True, True, True, True]
    assert binary_mask(np.array([0, 1, 1, 0])).tolist() == [False, True, True, False]
    assert not binary_mask(np.zeros((3, 3), dtype=np.uint8)).any()


def test_merge_gives_overlaps_to_the_higher_priority_class():
    a = np.array([[255, 255, 0], [0, 0, 0]], dtype=np.uint8)
    b = np.array([[0, 255, 255], [0, 0, 0]], dtype=np.uint8)
    assert merge_class_masks([a, b], [2, 1]).tolist() == [[1, 2, 2], [0, 0, 0]]
    assert merge_class_masks([a, b], [1, 2]).tolist() == [[1, 1, 2], [0, 0, 0]]
    with pytest.raises(InputError, match="priority"):
        merge_class_masks([a, b], [1, 1])


def test_priority_order_puts_listed_names_first():
    assert priority_order(["bg", "a", "b", "c"], ["c"]) == [3, 1, 2]
    assert priority_order(["bg", "a", "b", "c"], []) == [1, 2, 3]
    with pytest.raises(InputError, match="not classes"):
        priority_order(["bg", "a"], ["z"])


def test_colours_map_to_classes_and_the_ignore_colour_to_the_ignore_label():
    table = _table(class_colors=COLOURS, ignore_color=[255, 255, 255])
    rgb = np.zeros((3, 2, 2), dtype=np.uint8)
    rgb[:, 0, 1] = (255, 0, 0)
    rgb[:, 1, 0] = (0, 255, 0)
    rgb[:, 1, 1] = (255, 255, 255)
    assert colors_to_classes(rgb, table).tolist() == [[0, 1], [2, 255]]
    rgb[:, 0, 0] = (9, 9, 9)
    with pytest.raises(InputError, match=r"\(9, 9, 9\) x1.*data.class_colors"):
        colors_to_classes(rgb, table, "m.png")


def test_read_class_mask_reads_index_palette_and_colour_files(tmp_path):
    classes = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    Image.fromarray(classes).save(tmp_path / "index.png")
    tifffile.imwrite(tmp_path / "index16.tif", classes.astype(np.uint16))
    palette = Image.fromarray(classes, mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    palette.save(tmp_path / "palette.png")
    Image.fromarray(np.asarray(COLOURS, dtype=np.uint8)[classes]).save(tmp_path / "rgb.png")

    plain, coloured = _table(), _table(class_colors=COLOURS)
    for name in ("index.png", "index16.tif", "palette.png"):
        assert read_class_mask(tmp_path / name, plain).tolist() == classes.tolist(), name
    for name in ("rgb.png", "palette.png", "index.png"):  # gray files stay index images
        assert read_class_mask(tmp_path / name, coloured).tolist() == classes.tolist(), name
    with pytest.raises(InputError, match="colour-coded"):
        read_class_mask(tmp_path / "rgb.png", plain)


def test_class_ids_outside_the_classes_are_refused_but_the_ignore_label_is_kept():
    table = _table()
    assert check_class_ids(np.array([0, 2, 255]), table).tolist() == [0, 2, 255]
    with pytest.raises(InputError, match=r"m.png: class ids \[3, 7\] outside 0..2"):
        check_class_ids(np.array([0, 3, 7, 255]), table, "m.png")


def test_class_counts_and_median_frequency_weights():
    targets = [np.array([0, 0, 1, 255]), np.array([[2, 0], [0, 1]])]
    assert class_pixel_counts(targets, 3).tolist() == [4, 2, 1]
    assert frequency_class_weights([600, 300, 100]) == [0.5, 1.0, 3.0]  # median share 0.3
    assert frequency_class_weights([990, 9, 1, 0]) == [0.0091, 1.0, 9.0, 1.0]  # absent class: 1
    assert frequency_class_weights([10000, 10, 1], cap=10.0)[2] == 10.0
    with pytest.raises(InputError, match="no labelled pixels"):
        frequency_class_weights([0, 0])


def test_class_table_checks_the_config():
    assert _table().names == ("bg", "a", "b")
    assert ClassTable.from_config(DataConfig(), 3).names == ("background", "class1", "class2")
    with pytest.raises(InputError, match="3 classes"):
        _table(class_colors=COLOURS[:2])
    with pytest.raises(InputError, match="also a class id"):
        _table(ignore_label=2)
    with pytest.raises(InputError, match=r"\[R, G, B\]"):
        _table(class_colors=[[0, 0, 0], [300, 0, 0], [0, 0, 1]])
    assert default_colors(20).shape == (20, 3) and len({tuple(c) for c in default_colors(20)}) == 20
