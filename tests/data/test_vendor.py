"""Vendor files (.czi, .nd2, .lif) without the ``unetkit[vendor]`` extra: one line naming the fix.

The bioio path itself is tested in ``test_vendor_bioio.py`` (marker ``vendor``, ``make test-vendor``).
"""

from __future__ import annotations

import sys

import pytest

from unetkit.data.io import image_shape, read_image, read_volume
from unetkit.data.ome import image_info, pixel_size
from unetkit.data.vendor import is_vendor_file
from unetkit.errors import InputError


@pytest.fixture
def without_bioio(monkeypatch):
    monkeypatch.setitem(sys.modules, "bioio", None)  # `import bioio` raises ImportError, as without the extra


@pytest.mark.parametrize("suffix", [".czi", ".nd2", ".lif"])
def test_vendor_file_without_the_extra_names_the_extra(tmp_path, without_bioio, suffix):
    path = tmp_path / f"stack{suffix}"
    path.write_bytes(b"\0" * 64)
    message = rf"stack\{suffix}: install unetkit\[vendor\] to read \{suffix} files \(or convert to OME-TIFF\)$"
    for read in (read_image, read_volume, image_info, image_shape):
        with pytest.raises(InputError, match=message):
            read(path)
    assert pixel_size(path) is None  # calibration lookups stay quiet; the read says what to install


def test_vendor_suffixes_are_recognised_case_insensitively(tmp_path):
    assert is_vendor_file(tmp_path / "a.CZI") and is_vendor_file("b.nd2") and is_vendor_file("c.lif")
    assert not is_vendor_file("d.ome.tif") and not is_vendor_file("e.zarr")


def test_predict_on_a_vendor_file_without_the_extra_is_one_line(tmp_path, without_bioio, capsys):
    from unetkit.cli import main

    path = tmp_path / "cells.czi"
    path.write_bytes(b"\0" * 64)
    assert main(["predict", "--model", "nuclei", str(path), "--out", str(tmp_path / "out")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line or "Traceback" in line]
    assert len(errors) == 1 and errors[0].endswith("cells.czi: install unetkit[vendor] to read .czi files "
                                                   "(or convert to OME-TIFF)"), errors
