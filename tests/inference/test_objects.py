"""Object tables: hand-computed areas, centroids, boxes and intensities."""

import csv
import math

import numpy as np
import pytest

from unetkit.errors import InputError
from unetkit.inference.objects import object_columns, object_table, write_object_csv


def two_objects() -> np.ndarray:
    labels = np.zeros((6, 8), dtype=np.uint16)
    labels[1:3, 1:4] = 5  # 2 x 3 rectangle: area 6, centroid (1.5, 2), bbox (1, 1, 3, 4)
    labels[4, 6] = 2  # a single pixel
    return labels


def test_object_table_2d_by_hand():
    rows = object_table(two_objects())
    assert [row["id"] for row in rows] == [2, 5]
    single, rect = rows
    assert list(rect) == object_columns(2)
    assert rect["area"] == 6
    assert (rect["centroid_y"], rect["centroid_x"]) == (1.5, 2.0)
    assert (rect["bbox_y0"], rect["bbox_x0"], rect["bbox_y1"], rect["bbox_x1"]) == (1, 1, 3, 4)
    assert rect["equivalent_diameter"] == pytest.approx(2 * math.sqrt(6 / math.pi))
    assert single["area"] == 1 and (single["centroid_y"], single["centroid_x"]) == (4.0, 6.0)


def test_mean_intensity_single_and_multichannel():
    labels = two_objects()
    image = np.arange(48, dtype=np.float32).reshape(6, 8)  # value = 8 * row + col
    rows = object_table(labels, image)
    # Rectangle rows 1-2, cols 1-3: mean row 1.5, mean col 2 -> 8 * 1.5 + 2 = 14.
    assert rows[1]["mean_intensity"] == pytest.approx(14.0)
    assert rows[0]["mean_intensity"] == pytest.approx(8 * 4 + 6)
    # Two channels: image and image + 10 -> mean over channels adds 5.
    rows = object_table(labels, np.stack([image, image + 10]))
    assert rows[1]["mean_intensity"] == pytest.approx(19.0)
    with pytest.raises(InputError, match="does not fit"):
        object_table(labels, image[:5])


def test_object_table_3d():
    labels = np.zeros((4, 5, 6), dtype=np.int32)
    labels[1:3, 1:3, 1:4] = 1  # 2 x 2 x 3 box: 12 voxels
    (row,) = object_table(labels)
    assert list(row) == object_columns(3)
    assert row["area"] == 12
    assert (row["centroid_z"], row["centroid_y"], row["centroid_x"]) == (1.5, 1.5, 2.0)
    assert (row["bbox_z1"], row["bbox_y1"], row["bbox_x1"]) == (3, 3, 4)
    assert row["equivalent_diameter"] == pytest.approx((6 * 12 / math.pi) ** (1 / 3))


def test_write_object_csv(tmp_path):
    rows = object_table(two_objects(), np.ones((6, 8)))
    path = write_object_csv(rows, tmp_path / "sub" / "objects.csv")
    with open(path, newline="") as handle:
        read = list(csv.DictReader(handle))
    assert len(read) == 2 and read[1]["id"] == "5" and read[1]["area"] == "6"
    assert float(read[1]["centroid_y"]) == 1.5 and "mean_intensity" in read[0]
    empty = write_object_csv(object_table(np.zeros((4, 4), dtype=np.int32)), tmp_path / "empty.csv")
    assert empty.read_text().strip() == ",".join(object_columns(2))


def test_calibrated_areas_and_raw_intensities_per_channel():
    labels = two_objects()
    raw = np.stack([np.full((6, 8), 1000.0), np.arange(48, dtype=np.float64).reshape(6, 8)])  # (2, H, W)
    rows = object_table(labels, raw, spacing=(0.5, 0.25), channel_names=["DAPI", "GFP"])
    single, rect = rows
    assert rect["area_um2"] == pytest.approx(6 * 0.5 * 0.25)  # 6 px of 0.125 µm² each
    assert rect["equivalent_diameter_um"] == pytest.approx(2 * math.sqrt(0.75 / math.pi))
    assert rect["mean_intensity_DAPI"] == pytest.approx(1000.0)
    assert rect["mean_intensity_GFP"] == pytest.approx(14.0)  # as the by-hand case above
    assert single["mean_intensity_GFP"] == pytest.approx(38.0)
    assert rect["mean_intensity"] == pytest.approx((1000 + 14) / 2)
    assert list(rect) == object_columns(2, intensity=True, calibrated=True, channel_names=["DAPI", "GFP"])
    volume = np.zeros((2, 3, 3), dtype=np.int32)
    volume[:, :2, :2] = 1  # 8 voxels of 2 x 0.5 x 0.5 µm
    (row,) = object_table(volume, spacing=(2.0, 0.5, 0.5))
    assert row["volume_um3"] == pytest.approx(4.0)
    with pytest.raises(InputError, match="pixel size"):
        object_table(volume, spacing=(0.5, 0.5))


def test_volume_writer_reports_raw_intensities_per_named_channel(tmp_path):
    from unetkit.data.volumes import VolumeMeta
    from unetkit.inference.writers import OutputWriter

    labels = np.zeros((3, 4, 5), np.int32)
    labels[1:3, 1:3, 1:4] = 1  # 12 voxels
    raw = np.stack([np.full(labels.shape, 1000, np.uint16), np.arange(labels.size, dtype=np.uint16).reshape(3, 4, 5)])
    writer = OutputWriter(tmp_path, "vol", VolumeMeta((2.0, 0.5, 0.5), "um"), raw=raw, channel_names=["DAPI", "GFP"])
    normalised = np.zeros((2, *labels.shape), np.float32)  # what the network saw: not what the table reports
    with open(writer.objects("objects", labels, normalised)) as handle:
        (row,) = list(csv.DictReader(handle))
    assert float(row["volume_um3"]) == pytest.approx(12 * 0.5)
    assert float(row["mean_intensity_DAPI"]) == pytest.approx(1000.0)
    assert float(row["mean_intensity_GFP"]) == pytest.approx(raw[1][labels == 1].mean())


@pytest.mark.parametrize("shape", [(37, 41), (5, 17, 13)])
def test_object_table_matches_regionprops(shape):
    """The per-id sums give skimage's regionprops values, also for sparse, huge ids (which regionprops itself
    cannot take: a table of 2**31 rows) and several channels."""
    from skimage.measure import label, regionprops

    rng = np.random.default_rng(3)
    dense = label(rng.random(shape) > 0.7, connectivity=1).astype(np.int64)
    labels = np.where(dense > 0, dense * 1000 + 2**31, 0)  # sparse ids past any per-id table's reach
    image = rng.random((2, *shape))
    rows = object_table(labels, image)
    props = regionprops(dense, np.moveaxis(image, 0, -1).mean(axis=-1))
    assert len(props) > 10
    assert [row["id"] for row in rows] == [p.label * 1000 + 2**31 for p in props]
    axes = "zyx"[3 - len(shape):]
    for row, prop in zip(rows, props, strict=True):
        assert row["area"] == prop.area
        assert [row[f"centroid_{a}"] for a in axes] == pytest.approx(list(prop.centroid), abs=1e-9)
        assert [row[f"bbox_{a}0"] for a in axes] + [row[f"bbox_{a}1"] for a in axes] == list(prop.bbox)
        assert row["equivalent_diameter"] == pytest.approx(prop.equivalent_diameter_area)
        assert row["mean_intensity"] == pytest.approx(prop.intensity_mean)
        pixels = dense == prop.label
        assert row["mean_intensity_1"] == pytest.approx(image[1][pixels].mean())


def test_object_table_of_a_bool_mask_and_of_nothing():
    mask = np.zeros((4, 4), bool)
    assert object_table(mask) == []
    mask[1:3, 1:3] = True
    (row,) = object_table(mask, np.full((4, 4), 2.0))
    assert (row["id"], row["area"], row["mean_intensity"]) == (1, 4, 2.0)


def test_an_image_without_objects_has_the_header_of_one_with_objects():
    """An empty image's table lacked mean_intensity (and the µm and channel columns), so tables of several images
    did not join."""
    from unetkit.inference.objects import table_columns

    image = np.random.default_rng(0).random((2, 12, 14)).astype(np.float32)
    labels = np.zeros((12, 14), np.int32)
    labels[2:5, 3:7] = 4
    for names, spacing in (((), None), (("DAPI", "GFP"), (0.5, 0.5))):
        rows = object_table(labels, image, spacing, names)
        assert table_columns(labels, image, spacing, names) == list(rows[0])
        assert table_columns(np.zeros_like(labels), image, spacing, names) == list(rows[0])
    assert table_columns(labels) == list(object_table(labels)[0])
