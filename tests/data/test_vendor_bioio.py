"""The bioio path for vendor files (``unetkit[vendor]``), run by ``make test-vendor`` (marker ``vendor``).

CI's ``make test`` does not install bioio; ``make test-vendor`` installs the extra and bioio-ome-tiff. No
CZI/ND2/LIF writer is at hand, so a real OME-TIFF written by tifffile is read through bioio's OME-TIFF
plugin, under a ``.czi`` name so the suffix routing of the readers is exercised: the results must equal
what :mod:`unetkit.data.ome` reads from the same file with tifffile.
"""

from __future__ import annotations

import shutil

import bioio_ome_tiff
import numpy as np
import pytest
import tifffile

from unetkit.data import vendor
from unetkit.data.axes import Selection, use_selection
from unetkit.data.io import image_shape, read_image, read_volume
from unetkit.data.ome import image_info, pixel_size, read_selected, selected_channel_names
from unetkit.data.volumes import read_meta
from unetkit.errors import InputError

pytestmark = pytest.mark.vendor


@pytest.fixture
def stack(tmp_path):
    """A 2-channel z-stack OME-TIFF (CZYX, 0.25 x 0.5 µm pixels, 2 µm planes) and the same bytes as .czi."""
    data = np.random.default_rng(0).integers(0, 4000, size=(2, 3, 16, 20), dtype=np.uint16)
    ome_path = tmp_path / "stack.ome.tif"
    tifffile.imwrite(ome_path, data, ome=True, photometric="minisblack",
                     metadata={"axes": "CZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.25, "PhysicalSizeZ": 2.0,
                               "Channel": {"Name": ["DAPI", "GFP"]}})
    czi_path = tmp_path / "stack.czi"
    shutil.copy(ome_path, czi_path)
    return ome_path, czi_path, data


@pytest.fixture
def ome_tiff_plugin(monkeypatch):
    """Read '.czi' files with bioio's OME-TIFF reader (the file is an OME-TIFF under that name)."""
    original = vendor.open_vendor
    monkeypatch.setattr(vendor, "open_vendor", lambda path, reader=None: original(path, bioio_ome_tiff.Reader))


def test_bioio_gives_what_tifffile_gives(stack):
    ome_path, _, data = stack
    array, info = vendor.open_vendor(ome_path, bioio_ome_tiff.Reader)
    tiff = image_info(ome_path)
    assert info.kind == "bioio" and info.axes == "TCZYX" and info.shape == (1, *data.shape)
    assert info.pixel_size == pytest.approx(tiff.pixel_size) == {"X": 0.5, "Y": 0.25, "Z": 2.0}
    assert info.channel_names == tiff.channel_names == ["DAPI", "GFP"]
    np.testing.assert_array_equal(np.asarray(array)[0], data)


def test_vendor_suffix_reads_through_bioio_with_selection_and_calibration(stack, ome_tiff_plugin):
    _, czi_path, data = stack
    assert image_info(czi_path).kind == "bioio"
    with use_selection(Selection.from_values("GFP", plane=2)):
        np.testing.assert_array_equal(read_image(czi_path), data[1:2, 2])
        assert selected_channel_names(czi_path, Selection.from_values("GFP")) == ["GFP"]
    np.testing.assert_array_equal(read_volume(czi_path), data)
    np.testing.assert_array_equal(read_selected(czi_path, Selection.from_values("1,0"), 3)[0], data[[1, 0]])
    assert pixel_size(czi_path) == pytest.approx((0.25, 0.5))
    assert pixel_size(czi_path, 3) == pytest.approx((2.0, 0.25, 0.5))
    meta = read_meta(czi_path)
    assert meta.spacing == pytest.approx((2.0, 0.25, 0.5)) and meta.unit == "um"
    assert image_shape(czi_path) == (16, 20)
    with pytest.raises(InputError, match=r"3 planes \(Z\) but the network is 2D; choose one with --plane"):
        read_image(czi_path)


def test_a_file_bioio_cannot_read_is_one_line(tmp_path):
    path = tmp_path / "broken.nd2"
    path.write_bytes(b"not an nd2 file" * 8)
    with pytest.raises(InputError, match=r"broken\.nd2: .*convert"):
        read_image(path)


def test_large_image_source_reads_boxes_of_the_vendor_file(stack, ome_tiff_plugin):
    from unetkit.inference.streaming import open_source

    _, czi_path, data = stack
    with use_selection(Selection.from_values("DAPI", plane=1)):
        source = open_source(czi_path, 2)
        assert source.shape == (1, 16, 20)
        np.testing.assert_array_equal(source[:, 4:9, 3:17], data[0:1, 1, 4:9, 3:17])
