"""Microscopy files read with their axes, channel names and pixel sizes; selections and their errors."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from unetkit.data.axes import Selection, parse_channels, select, use_selection
from unetkit.data.io import read_image, read_volume
from unetkit.data.ome import image_info, pixel_size, read_selected
from unetkit.errors import InputError


def _ome_tiff(path, data, axes, size_xy=0.325, size_z=None, names=None):
    metadata = {"axes": axes, "PhysicalSizeX": size_xy, "PhysicalSizeY": size_xy}
    if size_z is not None:
        metadata["PhysicalSizeZ"] = size_z
    if names:
        metadata["Channel"] = {"Name": names}
    tifffile.imwrite(path, data, ome=True, metadata=metadata, photometric="minisblack")
    return path


@pytest.fixture
def two_channel(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4000, size=(2, 24, 32), dtype=np.uint16)
    return _ome_tiff(tmp_path / "cells.ome.tif", data, "CYX", names=["DAPI", "GFP"]), data


def test_ome_tiff_info_has_axes_pixel_size_and_channel_names(two_channel):
    path, data = two_channel
    info = image_info(path)
    assert info.kind == "ome-tiff"
    assert info.axes == "CYX" and info.shape == data.shape
    assert info.pixel_size == pytest.approx({"X": 0.325, "Y": 0.325})
    assert info.channel_names == ["DAPI", "GFP"]
    assert pixel_size(path) == pytest.approx((0.325, 0.325))


def test_channel_chosen_by_name_or_index(two_channel):
    path, data = two_channel
    with use_selection(Selection.from_values("GFP")):
        np.testing.assert_array_equal(read_image(path), data[1:2])
    with use_selection(Selection.from_values("1,0")):
        np.testing.assert_array_equal(read_image(path), data[[1, 0]])
    np.testing.assert_array_equal(read_image(path), data)  # no selection: both channels


def test_unknown_channel_name_lists_the_names(two_channel):
    path, _ = two_channel
    with use_selection(Selection.from_values("mCherry")), pytest.raises(InputError, match="0=DAPI, 1=GFP"):
        read_image(path)
    with use_selection(Selection.from_values("5")), pytest.raises(InputError, match="2 channel"):
        read_image(path)


def test_imagej_time_series_needs_a_time_point(tmp_path):
    data = np.arange(5 * 16 * 20, dtype=np.uint8).reshape(5, 16, 20)
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TYX", "unit": "um"},
                     resolution=(1 / 0.5, 1 / 0.5))
    info = image_info(path)
    assert info.kind == "imagej-tiff" and info.axes == "TYX"
    assert info.pixel_size == pytest.approx({"X": 0.5, "Y": 0.5})
    with pytest.raises(InputError, match=r"axes TYX, shape \(5, 16, 20\): 5 time points.*--time N \(0\.\.4\)"):
        read_image(path)
    with use_selection(Selection.from_values(time=3)):
        np.testing.assert_array_equal(read_image(path), data[3:4])
    with use_selection(Selection.from_values(time=7)), pytest.raises(InputError, match="outside 0..4"):
        read_image(path)


def test_z_stack_is_a_volume_or_a_chosen_plane(tmp_path):
    data = np.random.default_rng(1).random((6, 2, 12, 14)).astype(np.float32)  # ZCYX
    path = _ome_tiff(tmp_path / "stack.ome.tif", data, "ZCYX", size_xy=0.2, size_z=1.5)
    assert pixel_size(path, 3) == pytest.approx((1.5, 0.2, 0.2))
    volume = read_volume(path)
    np.testing.assert_array_equal(volume, data.transpose(1, 0, 2, 3))  # (C, Z, Y, X)
    with pytest.raises(InputError, match="6 planes.*--plane N"):
        read_image(path)
    with use_selection(Selection.from_values([1], plane=4)):
        np.testing.assert_array_equal(read_image(path), data[4, 1:2])


def test_axes_option_names_an_unlabelled_stack(tmp_path):
    data = np.random.default_rng(2).integers(0, 255, (7, 10, 11), dtype=np.uint8)
    path = tmp_path / "pages.tif"
    tifffile.imwrite(path, data, photometric="minisblack")
    with use_selection(Selection.from_values(axes="TYX", time=2)):
        np.testing.assert_array_equal(read_image(path), data[2:3])
    with use_selection(Selection.from_values(axes="CYX")):
        np.testing.assert_array_equal(read_image(path), data)
    with use_selection(Selection.from_values(axes="YX")), pytest.raises(InputError, match="names 2 axes"):
        read_image(path)


def test_select_unknown_axis_names_the_option():
    with pytest.raises(InputError, match="axis 'Q'.*--axes"):
        select(np.zeros((3, 4, 5)), "QYX", Selection())
    assert parse_channels("0, DAPI") == (0, "DAPI")


def test_png_channel_selection(tmp_path):
    from unetkit.data.io import write_png

    rgb = np.random.default_rng(3).integers(0, 255, (3, 8, 9), dtype=np.uint8)
    write_png(tmp_path / "rgb.png", rgb)
    with use_selection(Selection.from_values("2")):
        np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), rgb[2:3])
    with use_selection(Selection.from_values(time=0)), pytest.raises(InputError, match="named axes"):
        read_image(tmp_path / "rgb.png")


def test_ome_zarr_written_by_ome_zarr_py(tmp_path):
    pytest.importorskip("zarr")
    ome_zarr_writer = pytest.importorskip("ome_zarr.writer")
    from ome_zarr.io import parse_url

    data = np.random.default_rng(4).integers(0, 1000, (2, 3, 32, 40), dtype=np.uint16)  # CZYX
    path = tmp_path / "cells.ome.zarr"
    store = parse_url(str(path), mode="w").store
    import zarr

    group = zarr.group(store=store)
    ome_zarr_writer.write_image(data, group, axes="czyx", scale={"c": 1.0, "z": 2.0, "y": 0.25, "x": 0.25},
                                axes_units={"z": "micrometer", "y": "micrometer", "x": "micrometer"},
                                scale_factors=[2], omero={"channels": [
                                    {"label": name, "color": color, "window": {"min": 0, "max": 1000, "start": 0,
                                                                               "end": 1000}}
                                    for name, color in (("DAPI", "0000FF"), ("GFP", "00FF00"))]})
    info = image_info(path)
    assert info.kind == "ome-zarr" and info.axes == "CZYX" and info.shape == data.shape
    assert info.pixel_size == pytest.approx({"Z": 2.0, "Y": 0.25, "X": 0.25})
    assert info.levels == 2
    with use_selection(Selection.from_values("GFP")):
        np.testing.assert_array_equal(read_volume(path), data[1:2])
    with use_selection(Selection.from_values(plane=2)):
        np.testing.assert_array_equal(read_image(path), data[:, 2])
    coarse, coarse_info = read_selected(path, Selection(), 3, level=1)
    assert coarse.shape == (2, 3, 16, 20)
    assert coarse_info.pixel_size["X"] == pytest.approx(0.5)


def test_a_large_miniswhite_imagej_tiff_is_read_lazily_as_shown(tmp_path):
    """predict-large's lazy road inverts a MINISWHITE file as read_image does."""
    from unetkit.data.ome import lazy_source

    shown = np.arange(2 * 5 * 6, dtype=np.uint16).reshape(2, 5, 6) * 100
    tifffile.imwrite(tmp_path / "ij.tif", 65535 - shown, photometric="miniswhite", imagej=True,
                     metadata={"axes": "CYX"})
    view = lazy_source(tmp_path / "ij.tif", 2)
    assert view.shape == (2, 5, 6) and view.dtype == np.uint16
    assert np.array_equal(view[:, 1:4, 2:5], shown[:, 1:4, 2:5])
    assert np.array_equal(read_image(tmp_path / "ij.tif"), shown)


def test_ome_zarr_py_defaults_without_units_are_uncalibrated(tmp_path):
    """ome-zarr-py writes scale 1 and no unit by default: read as 1 µm, outputs claimed PhysicalSizeX 1 µm."""
    pytest.importorskip("zarr")
    ome_zarr_writer = pytest.importorskip("ome_zarr.writer")
    import zarr
    from ome_zarr.io import parse_url

    path = tmp_path / "plain.ome.zarr"
    group = zarr.group(store=parse_url(str(path), mode="w").store)
    ome_zarr_writer.write_image(np.zeros((16, 20), np.uint8), group, axes="yx", scale_factors=[])
    assert image_info(path).pixel_size == {}
    assert pixel_size(path) is None


@pytest.mark.parametrize("options", [{}, {"compression": "zlib", "tile": (16, 16)}], ids=["contiguous", "tiled"])
def test_a_large_plain_miniswhite_tiff_is_read_lazily_as_read_image_reads_it(tmp_path, options):
    """predict-large read a plain MINISWHITE TIFF as stored while predict inverted it."""
    from unetkit.data.ome import lazy_source

    shown = np.arange(32 * 48, dtype=np.uint16).reshape(32, 48)
    tifffile.imwrite(tmp_path / "m.tif", 65535 - shown, photometric="miniswhite", **options)
    view = lazy_source(tmp_path / "m.tif", 2)
    assert view.shape == (1, 32, 48)
    assert np.array_equal(view[:, 5:20, 10:40], shown[None, 5:20, 10:40])
    pages = np.stack([shown, shown // 2, shown // 3])
    tifffile.imwrite(tmp_path / "p.tif", 65535 - pages, photometric="miniswhite", **options)
    assert np.array_equal(lazy_source(tmp_path / "p.tif", 2)[:, 0:32, 0:48], read_image(tmp_path / "p.tif"))
    assert np.array_equal(lazy_source(tmp_path / "p.tif", 3)[:, 0:3, 0:32, 0:48], pages[None])
    tifffile.imwrite(tmp_path / "plain.tif", shown)  # not MINISWHITE: left to open_source's own road
    assert lazy_source(tmp_path / "plain.tif", 2) is None
